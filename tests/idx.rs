//! The IDX parser and MNIST loader on valid and hostile inputs.

use std::path::PathBuf;

use hidden_neurons::data::{DataError, Dataset, MNIST_FILES, load_mnist_dir, parse_idx_u8};

#[path = "common/mod.rs"]
mod common;
use common::{gz, idx};

fn format_reason(r: Result<impl std::fmt::Debug, DataError>) -> String {
    match r {
        Err(DataError::Format { file, reason }) => {
            assert_eq!(file, "f.idx", "the error names the file");
            reason
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn parses_raw_and_gzip_alike() {
    let raw = idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let a = parse_idx_u8("f.idx", &raw).unwrap();
    let b = parse_idx_u8("f.idx", &gz(&raw)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.dims, vec![2, 2, 3]);
    assert_eq!(a.data[11], 12);
}

#[test]
fn bad_magic_is_refused() {
    let mut raw = idx(&[1], &[0]);
    raw[0] = 7;
    assert!(format_reason(parse_idx_u8("f.idx", &raw)).contains("magic"));
}

#[test]
fn wrong_element_type_is_refused() {
    let mut raw = idx(&[1], &[0]);
    raw[2] = 0x0D; // float
    assert!(format_reason(parse_idx_u8("f.idx", &raw)).contains("unsigned byte"));
}

#[test]
fn truncated_header_and_data_are_refused() {
    assert!(format_reason(parse_idx_u8("f.idx", &[0, 0])).contains("too short"));
    let raw = idx(&[10, 10], &[0; 50]);
    assert!(format_reason(parse_idx_u8("f.idx", &raw[..6])).contains("truncated header"));
    assert!(format_reason(parse_idx_u8("f.idx", &raw)).contains("truncated"));
}

#[test]
fn trailing_bytes_are_refused() {
    let raw = idx(&[2], &[1, 2, 3]);
    assert!(format_reason(parse_idx_u8("f.idx", &raw)).contains("trailing"));
}

#[test]
fn huge_declared_dimensions_fail_without_allocating() {
    // 4e9 x 4e9 x 4e9 bytes declared, 10 present: must be a quick error, not an allocation.
    let raw = idx(&[u32::MAX, u32::MAX, u32::MAX], &[0; 10]);
    let reason = format_reason(parse_idx_u8("f.idx", &raw));
    assert!(reason.contains("overflow") || reason.contains("limit"), "{reason}");
    let raw = idx(&[60_000, 28, 28], &[0; 100]);
    assert!(format_reason(parse_idx_u8("f.idx", &raw)).contains("truncated"));
}

#[test]
fn corrupt_gzip_is_refused() {
    let mut z = gz(&idx(&[4], &[1, 2, 3, 4]));
    let n = z.len();
    z.truncate(n / 2);
    match parse_idx_u8("f.idx.gz", &z) {
        Err(DataError::Gzip { file, .. }) => assert_eq!(file, "f.idx.gz"),
        other => panic!("expected a gzip error, got {other:?}"),
    }
}

#[test]
fn image_label_count_mismatch_is_refused() {
    let images = idx(&[3, 2, 2], &[0; 12]);
    let labels = idx(&[2], &[1, 2]);
    match Dataset::from_idx("img", &images, "lab", &labels) {
        Err(DataError::CountMismatch { n_images: 3, n_labels: 2, .. }) => {}
        other => panic!("expected a count mismatch, got {other:?}"),
    }
}

#[test]
fn out_of_range_label_is_refused() {
    let images = idx(&[2, 2, 2], &[0; 8]);
    let labels = idx(&[2], &[1, 12]);
    let err = Dataset::from_idx("img", &images, "lab", &labels).unwrap_err().to_string();
    assert!(err.contains("lab") && err.contains("12"), "{err}");
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-idx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn missing_files_are_named() {
    let dir = scratch_dir("missing");
    let err = load_mnist_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn folder_of_raw_files_loads() {
    let dir = scratch_dir("raw");
    let imgs = idx(&[3, 2, 2], &[0, 255, 0, 255, 10, 20, 30, 40, 1, 2, 3, 4]);
    let labs = idx(&[3], &[0, 1, 9]);
    for (i, name) in MNIST_FILES.iter().enumerate() {
        let raw_name = name.trim_end_matches(".gz");
        std::fs::write(dir.join(raw_name), if i % 2 == 0 { &imgs } else { &labs }).unwrap();
    }
    let split = load_mnist_dir(&dir).unwrap();
    assert_eq!(split.train.len(), 3);
    assert_eq!(split.test.features, 4);
    assert_eq!(split.train.labels, vec![0, 1, 9]);
}

#[test]
fn the_repos_mnist_is_complete() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let split = load_mnist_dir(&dir).unwrap();
    assert_eq!((split.train.len(), split.test.len(), split.train.features), (60_000, 10_000, 784));
    assert!(split.norm.mean[0] > 0.1 && split.norm.mean[0] < 0.15, "{:?}", split.norm);
}

#[test]
fn dropped_files_are_told_apart_by_name() {
    use hidden_neurons::data::mnist_file_roles;
    // Any order, .gz or not, Fashion-MNIST's and MNIST's names alike.
    let names = ["t10k-labels-idx1-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "TRAIN-labels-idx1-ubyte"];
    assert_eq!(mnist_file_roles(&names).unwrap(), [1, 3, 2, 0]);
    let named = ["my-test-images.idx", "my-train-labels.idx", "my-train-images.idx", "my-test-labels.idx"];
    assert_eq!(mnist_file_roles(&named).unwrap(), [2, 1, 0, 3]);

    let three = mnist_file_roles(&names[..3]).unwrap_err();
    assert!(three.contains("got 3 files"), "{three}");
    let unknown = mnist_file_roles(&["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "photo.png"]).unwrap_err();
    assert!(unknown.starts_with("photo.png: cannot tell"), "{unknown}");
    let twice = mnist_file_roles(&["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]).unwrap_err();
    assert!(twice.contains("train-images-idx3-ubyte and train-images-idx3-ubyte.gz both look like the training images"), "{twice}");
}

#[test]
fn errors_name_the_users_own_files() {
    use hidden_neurons::data::MnistBytes;
    let images = idx(&[2, 2, 2], &[0; 8]);
    let labels = idx(&[2], &[1, 2]);
    let bad_labels = idx(&[2], &[1, 12]);
    let names = ["a-train-img", "a-train-lab", "a-test-img", "a-test-lab"];
    let ok = MnistBytes { train_images: &images, train_labels: &labels, test_images: &images, test_labels: &labels };
    let split = ok.parse_named(names, "own").unwrap();
    assert_eq!((split.name.as_str(), split.train.len(), split.train.features), ("own", 2, 4));
    let bad = MnistBytes { test_labels: &bad_labels, ..ok };
    match bad.parse_named(names, "own") {
        Err(DataError::Format { file, reason }) => {
            assert_eq!(file, "a-test-lab");
            assert!(reason.contains("label 12"), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    let small = idx(&[2, 3, 3], &[0; 18]);
    let mismatch = MnistBytes { test_images: &small, ..ok };
    match mismatch.parse_named(names, "own") {
        Err(DataError::Format { file, reason }) => assert_eq!((file.as_str(), reason.as_str()), ("a-test-img", "test images have 9 pixels, train images 4")),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn image_size_against_the_model() {
    use hidden_neurons::settings::{MNIST_TAKES, check_image_values};
    assert!(check_image_values(784, 784, MNIST_TAKES).is_ok());
    assert_eq!(check_image_values(1024, 784, MNIST_TAKES).unwrap_err(), format!("its images have 1024 values each (32x32); {MNIST_TAKES}"));
    assert_eq!(check_image_values(10, 784, MNIST_TAKES).unwrap_err(), format!("its images have 10 values each; {MNIST_TAKES}"));
}
