//! MNIST-style datasets: four IDX files (train/test images and labels), from bytes or a folder.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::idx::{IdxU8, MAX_DECOMPRESSED_BYTES, MAX_IDX_FILE_BYTES, read_idx_u8};
use super::{DataError, parse_idx_u8};

/// The four files of an MNIST-style folder, in the order train images, train labels, test images,
/// test labels. Each may also be present without the `.gz` suffix.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Number of classes of every dataset this project reads.
pub const CLASSES: usize = 10;

/// Images as bytes (row-major, `features` bytes each) with their labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub features: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Pairs an IDX image file with an IDX label file; names are used in error messages.
    pub fn from_idx(
        images_name: &str,
        images: &[u8],
        labels_name: &str,
        labels: &[u8],
    ) -> Result<Self, DataError> {
        Self::from_parsed(images_name, parse_idx_u8(images_name, images)?, labels_name, parse_idx_u8(labels_name, labels)?)
    }

    /// Pairs parsed image and label files; names are used in error messages.
    pub fn from_parsed(images_name: &str, img: IdxU8, labels_name: &str, lab: IdxU8) -> Result<Self, DataError> {
        if img.dims.len() < 2 {
            return Err(DataError::Format {
                file: images_name.into(),
                reason: format!("image file has dimensions {:?}; expected [count, rows, cols]", img.dims),
            });
        }
        if lab.dims.len() != 1 {
            return Err(DataError::Format {
                file: labels_name.into(),
                reason: format!("label file has dimensions {:?}; expected [count]", lab.dims),
            });
        }
        if img.dims[0] != lab.dims[0] {
            return Err(DataError::CountMismatch {
                images: images_name.into(),
                labels: labels_name.into(),
                n_images: img.dims[0],
                n_labels: lab.dims[0],
            });
        }
        if img.dims[0] == 0 {
            return Err(DataError::Format { file: images_name.into(), reason: "holds no images".into() });
        }
        if let Some(pos) = lab.data.iter().position(|&l| l as usize >= CLASSES) {
            return Err(DataError::Format {
                file: labels_name.into(),
                reason: format!("label {} at index {pos} is not a class 0..{CLASSES}", lab.data[pos]),
            });
        }
        let features = img.dims[1..].iter().product();
        if features == 0 {
            return Err(DataError::Format { file: images_name.into(), reason: "images have zero pixels".into() });
        }
        Ok(Self { features, images: img.data, labels: lab.data })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` samples (or all, if fewer), in place.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n * self.features);
        self.images.shrink_to_fit();
        self.labels.truncate(n);
    }

    /// The first `n` samples (or all, if fewer).
    pub fn head(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            features: self.features,
            images: self.images[..n * self.features].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut images = Vec::with_capacity(indices.len() * self.features);
        for &i in indices {
            images.extend_from_slice(&self.images[i * self.features..(i + 1) * self.features]);
        }
        Self { features: self.features, images, labels: indices.iter().map(|&i| self.labels[i]).collect() }
    }

    /// Per-channel mean and standard deviation of the pixels scaled to [0, 1]; images are stored
    /// channel after channel (CHW), as in the IDX and CIFAR files.
    pub fn pixel_stats(&self, channels: usize) -> Normalization {
        assert!((1..=MAX_CHANNELS).contains(&channels) && self.features % channels == 0);
        let plane = self.features / channels;
        let mut norm = Normalization { channels, mean: [0.0; MAX_CHANNELS], std: [1.0; MAX_CHANNELS] };
        for c in 0..channels {
            let pixels = || {
                self.images
                    .chunks_exact(self.features)
                    .flat_map(move |img| img[c * plane..(c + 1) * plane].iter().map(|&p| p as f64 / 255.0))
            };
            let n = (self.len() * plane).max(1) as f64;
            let mean = pixels().sum::<f64>() / n;
            let var = pixels().map(|p| (p - mean).powi(2)).sum::<f64>() / n;
            norm.mean[c] = mean as f32;
            norm.std[c] = (var.sqrt() as f32).max(1e-6);
        }
        norm
    }

    /// Images `indices` as a normalized `[indices.len(), features]` tensor and their labels.
    pub fn batch(&self, indices: &[usize], norm: Normalization, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let f = self.features;
        let plane = f / norm.channels;
        let mut x = Vec::with_capacity(indices.len() * f);
        for &i in indices {
            let img = &self.images[i * f..(i + 1) * f];
            for c in 0..norm.channels {
                let (m, s) = (norm.mean[c], norm.std[c]);
                x.extend(img[c * plane..(c + 1) * plane].iter().map(|&p| (p as f32 / 255.0 - m) / s));
            }
        }
        self.tensors(x, indices, device)
    }

    /// Like [`Dataset::batch`] for square `channels`-channel images, each randomly cropped from
    /// the image zero-padded by `pad` and flipped left-right with probability 1/2 (the standard
    /// CIFAR augmentation). Deterministic in `rng`.
    pub fn batch_augmented(
        &self,
        indices: &[usize],
        norm: Normalization,
        pad: usize,
        rng: &mut impl rand::Rng,
        device: &Device,
    ) -> (Tensor<2>, Tensor<1, Int>) {
        use rand::RngExt;
        let f = self.features;
        let side = ((f / norm.channels) as f64).sqrt() as usize;
        let mut x = Vec::with_capacity(indices.len() * f);
        for &i in indices {
            let (dx, dy, flip) = (rng.random_range(0..=2 * pad), rng.random_range(0..=2 * pad), rng.random_bool(0.5));
            super::augment_into(&self.images[i * f..(i + 1) * f], norm.channels, side, pad, dx, dy, flip, &norm, &mut x);
        }
        self.tensors(x, indices, device)
    }

    /// Normalized pixels `x` of the samples `indices` and their labels, as a batch.
    fn tensors(&self, x: Vec<f32>, indices: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let y: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        (
            Tensor::from_data(TensorData::new(x, [indices.len(), self.features]), device),
            Tensor::from_data(TensorData::new(y, [indices.len()]), device),
        )
    }

    /// Samples `start..end` as a batch.
    pub fn range_batch(&self, start: usize, end: usize, norm: Normalization, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let idx: Vec<usize> = (start..end.min(self.len())).collect();
        self.batch(&idx, norm, device)
    }
}

/// Most colour channels an image may have.
pub const MAX_CHANNELS: usize = 3;

/// Per-channel affine normalization `(x/255 - mean) / std`, computed on the training images.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub channels: usize,
    pub mean: [f32; MAX_CHANNELS],
    pub std: [f32; MAX_CHANNELS],
}

/// Train and test sets of one dataset, with the normalization taken from the train set.
#[derive(Clone, Debug)]
pub struct Split {
    pub name: String,
    pub train: Dataset,
    pub test: Dataset,
    pub norm: Normalization,
}

impl Split {
    /// Random images and labels (seeded), for benchmarks and tests that need no real data.
    pub fn synthetic(name: &str, train: usize, test: usize, features: usize, channels: usize, seed: u64) -> Self {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut make = |n: usize| Dataset {
            features,
            images: (0..n * features).map(|_| rng.random_range(0..=255u8)).collect(),
            labels: (0..n).map(|_| rng.random_range(0..CLASSES as u8)).collect(),
        };
        let train = make(train);
        let test = make(test);
        let norm = train.pixel_stats(channels);
        Self { name: name.into(), train, test, norm }
    }
}

/// The four files' contents, borrowed; lets the web page parse what it fetched.
pub struct MnistBytes<'a> {
    pub train_images: &'a [u8],
    pub train_labels: &'a [u8],
    pub test_images: &'a [u8],
    pub test_labels: &'a [u8],
}

impl MnistBytes<'_> {
    /// Parses the four files, named in errors by MNIST's file names.
    pub fn parse(&self, name: &str) -> Result<Split, DataError> {
        self.parse_named(MNIST_FILES, name)
    }

    /// Parses the four files; errors name each by `names` (train images, train labels, test
    /// images, test labels: the names a user gave them).
    pub fn parse_named(&self, names: [&str; 4], name: &str) -> Result<Split, DataError> {
        let train = Dataset::from_idx(names[0], self.train_images, names[1], self.train_labels)?;
        let test = Dataset::from_idx(names[2], self.test_images, names[3], self.test_labels)?;
        Split::from_train_test(name, train, test, names[2])
    }
}

impl Split {
    /// A split of single-channel images, normalised by the training set's statistics; the test
    /// images (file `test_images`) must have as many pixels as the training images.
    fn from_train_test(name: &str, train: Dataset, test: Dataset, test_images: &str) -> Result<Split, DataError> {
        if train.features != test.features {
            return Err(DataError::Format {
                file: test_images.into(),
                reason: format!("test images have {} pixels, train images {}", test.features, train.features),
            });
        }
        let norm = train.pixel_stats(1);
        Ok(Split { name: name.into(), train, test, norm })
    }
}

/// Which of `names` is which MNIST file: the indices of the train images, train labels, test
/// images and test labels, told by the usual names (`train-images-idx3-ubyte`, `t10k-labels...`,
/// with or without `.gz`; `test` for `t10k`, `idx3`/`idx1` for images/labels). Errors say which
/// name could not be placed, or which two claim the same place.
pub fn mnist_file_roles(names: &[&str]) -> Result<[usize; 4], String> {
    const ROLES: [&str; 4] = ["training images", "training labels", "test images", "test labels"];
    if names.len() != 4 {
        return Err(format!(
            "an MNIST-format data set is four IDX files (training images and labels, test images and labels); got {} file{}",
            names.len(),
            if names.len() == 1 { "" } else { "s" }
        ));
    }
    let mut roles: [Option<usize>; 4] = [None; 4];
    for (i, name) in names.iter().enumerate() {
        let n = name.to_ascii_lowercase();
        let test = n.contains("t10k") || n.contains("test");
        let train = n.contains("train");
        let labels = n.contains("label") || n.contains("idx1");
        let images = n.contains("image") || n.contains("idx3");
        let role = match (train, test, images, labels) {
            (true, false, true, false) => 0,
            (true, false, false, true) => 1,
            (false, true, true, false) => 2,
            (false, true, false, true) => 3,
            _ => {
                return Err(format!(
                    "{name}: cannot tell which MNIST file this is; name the files like MNIST's (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not)"
                ));
            }
        };
        if let Some(other) = roles[role] {
            return Err(format!("{} and {name} both look like the {}", names[other], ROLES[role]));
        }
        roles[role] = Some(i);
    }
    Ok(roles.map(|r| r.expect("four names, four distinct roles")))
}

fn read_one(dir: &Path, gz_name: &str) -> Result<(String, IdxU8), DataError> {
    let raw_name = gz_name.trim_end_matches(".gz");
    for name in [gz_name, raw_name] {
        let path = dir.join(name);
        if path.is_file() {
            let display = path.display().to_string();
            let file = std::fs::File::open(&path).map_err(|source| DataError::Io { file: path.clone(), source })?;
            let len = file.metadata().map_err(|source| DataError::Io { file: path.clone(), source })?.len();
            if len > MAX_IDX_FILE_BYTES {
                return Err(DataError::TooLarge { file: display, limit: MAX_DECOMPRESSED_BYTES });
            }
            let idx = read_idx_u8(&display, file, MAX_DECOMPRESSED_BYTES)?;
            return Ok((display, idx));
        }
    }
    Err(DataError::Missing { dir: dir.into(), candidates: vec![gz_name.into(), raw_name.into()] })
}

/// Loads an MNIST-style folder (MNIST, Fashion-MNIST, ...): the four IDX files, `.gz` or raw.
pub fn load_mnist_dir(dir: &Path) -> Result<Split, DataError> {
    let files: Vec<(String, IdxU8)> = MNIST_FILES.iter().map(|f| read_one(dir, f)).collect::<Result<_, _>>()?;
    let [(n0, f0), (n1, f1), (n2, f2), (n3, f3)]: [(String, IdxU8); 4] = files.try_into().expect("one entry per MNIST file");
    let train = Dataset::from_parsed(&n0, f0, &n1, f1)?;
    let test = Dataset::from_parsed(&n2, f2, &n3, f3)?;
    let dataset = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "mnist".into());
    Split::from_train_test(&dataset, train, test, &n2)
}
