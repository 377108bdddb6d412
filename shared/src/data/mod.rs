//! Data formats and batching. Everything parses from bytes so the web page can use it too.

mod batches;
mod cifar;
mod idx;
#[cfg(feature = "native")]
mod imagenet;
mod mnist;
mod source;

pub use batches::{Batch, Batches, epoch_order};
pub use cifar::{
    CIFAR_BATCH_RECORDS, CIFAR_CHANNELS, CIFAR_MAX_BATCH_BYTES, CIFAR_PIXELS, CIFAR_SIDE, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, augment_into, cifar_from_archive,
    cifar_from_archive_reader, cifar_from_files, load_cifar, parse_cifar_batch,
};
pub use idx::{IdxU8, MAX_DECOMPRESSED_BYTES, MAX_IDX_FILE_BYTES, decoded, maybe_gunzip, parse_idx_u8, read_capped, read_file_capped, read_idx_u8};
#[cfg(feature = "native")]
pub use imagenet::{
    CROP, IMAGENET_MEAN, IMAGENET_STD, ImageBatch, ImageFolder, ImageNetError, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, RESIZE_SHORTER, StreamConfig, SYNSETS, VAL_CSV, discover_splits, imagenet_1k_wnids, preprocess, stream,
};
#[cfg(feature = "native")]
pub use source::ImageSource;
pub use source::{Head, InMemory, Source, SourceError};
pub use mnist::{CLASSES, Dataset, MAX_CHANNELS, MNIST_FILES, MnistBytes, Normalization, Split, load_mnist_dir, mnist_file_roles};

use std::path::PathBuf;

/// What can go wrong reading a dataset. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {reason}")]
    Format { file: String, reason: String },
    #[error("{file}: not valid gzip: {reason}")]
    Gzip { file: String, reason: String },
    #[error("{file}: holds more than {limit} bytes, the most one file may hold here")]
    TooLarge { file: String, limit: u64 },
    #[error("{images} and {labels} disagree: {n_images} images but {n_labels} labels")]
    CountMismatch { images: String, labels: String, n_images: usize, n_labels: usize },
    #[error("{file}: cannot read: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{dir}: none of {candidates:?} found (the four MNIST IDX files, .gz or raw)")]
    Missing { dir: PathBuf, candidates: Vec<String> },
}
