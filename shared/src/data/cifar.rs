//! CIFAR-10 in its official binary form: `data_batch_1..5.bin` and `test_batch.bin`, each a run
//! of 10000 records of one label byte and 3072 pixel bytes (the red, green and blue 32x32 planes).
//! Read from the `cifar-10-binary.tar.gz` archive or from the extracted folder.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::idx::{decoded, read_capped, read_file_capped};
use super::mnist::CLASSES;
use super::{DataError, Dataset, Split};

pub const CIFAR_SIDE: usize = 32;
pub const CIFAR_CHANNELS: usize = 3;
pub const CIFAR_PIXELS: usize = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS;
const RECORD: usize = 1 + CIFAR_PIXELS;
/// Records of one official batch file.
pub const CIFAR_BATCH_RECORDS: usize = 10_000;
/// The most bytes one batch file may hold (a full batch); nothing larger is ever read.
pub const CIFAR_MAX_BATCH_BYTES: u64 = (RECORD * CIFAR_BATCH_RECORDS) as u64;

pub const CIFAR_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";

/// Parses one batch file's bytes; `name` is used in errors.
pub fn parse_cifar_batch(name: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    let bad = |reason: String| DataError::Format { file: name.into(), reason };
    if bytes.is_empty() {
        return Err(bad("empty batch file".into()));
    }
    if bytes.len() % RECORD != 0 {
        return Err(bad(format!(
            "{} bytes is not a whole number of {RECORD}-byte records (truncated, or not CIFAR-10 binary: {} records and {} bytes left over)",
            bytes.len(),
            bytes.len() / RECORD,
            bytes.len() % RECORD
        )));
    }
    let n = bytes.len() / RECORD;
    if n > CIFAR_BATCH_RECORDS {
        return Err(bad(format!("{n} records; a CIFAR-10 batch file holds at most {CIFAR_BATCH_RECORDS}")));
    }
    let mut images = Vec::with_capacity(n * CIFAR_PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] as usize >= CLASSES {
            return Err(bad(format!("record {i} has label byte {}; CIFAR-10 labels are 0..9", rec[0])));
        }
        labels.push(rec[0]);
        images.extend_from_slice(&rec[1..]);
    }
    Ok(Dataset { features: CIFAR_PIXELS, images, labels })
}

fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut out = Dataset { features: CIFAR_PIXELS, images: Vec::new(), labels: Vec::new() };
    for p in parts {
        out.images.extend(p.images);
        out.labels.extend(p.labels);
    }
    out
}

/// Builds the split from named batch files (`(name, bytes)`), requiring all six.
pub fn cifar_from_files(source: &str, mut files: Vec<(String, Vec<u8>)>) -> Result<Split, DataError> {
    let mut take = |want: &str| -> Result<Dataset, DataError> {
        let pos = files
            .iter()
            .position(|(name, _)| Path::new(name).file_name().is_some_and(|f| f == want))
            .ok_or_else(|| DataError::Missing { dir: PathBuf::from(source), candidates: vec![want.into()] })?;
        let (name, bytes) = files.swap_remove(pos);
        parse_cifar_batch(&format!("{source}: {name}"), &bytes)
    };
    let train = concat(CIFAR_TRAIN_FILES.iter().map(|f| take(f)).collect::<Result<_, _>>()?);
    let test = take(CIFAR_TEST_FILE)?;
    let norm = train.pixel_stats(CIFAR_CHANNELS);
    Ok(Split { name: "cifar10".into(), train, test, norm })
}

/// Reads the batch files out of a `.tar.gz` archive's bytes.
pub fn cifar_from_archive(source: &str, archive: &[u8]) -> Result<Split, DataError> {
    cifar_from_archive_reader(source, archive)
}

/// Streams the batch files out of a `.tar.gz` (or plain `.tar`) archive, every gzip member: only
/// the six wanted members are kept, each refused before reading when its header claims more than a
/// full batch, and read with that cap (a header can lie). A member named twice is refused.
pub fn cifar_from_archive_reader(source: &str, archive: impl Read) -> Result<Split, DataError> {
    let wanted = |name: &str| {
        let f = Path::new(name).file_name().and_then(|f| f.to_str()).unwrap_or("");
        CIFAR_TRAIN_FILES.contains(&f) || f == CIFAR_TEST_FILE
    };
    let err = |reason: String| DataError::Format { file: source.into(), reason };
    let mut tar = tar::Archive::new(decoded(source, archive)?);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar.entries().map_err(|e| err(format!("not a tar.gz archive: {e}")))? {
        let mut entry = entry.map_err(|e| err(format!("corrupt archive: {e}")))?;
        let name = entry.path().map_err(|e| err(format!("bad entry name: {e}")))?.to_string_lossy().into_owned();
        if !wanted(&name) {
            continue;
        }
        let base = Path::new(&name).file_name().map(|f| f.to_owned());
        if files.iter().any(|(n, _)| Path::new(n).file_name().map(|f| f.to_owned()) == base) {
            return Err(err(format!("{name}: the archive holds this batch file twice")));
        }
        let member = format!("{source}: {name}");
        let declared = entry.header().size().map_err(|e| err(format!("{name}: bad size in header: {e}")))?;
        if declared > CIFAR_MAX_BATCH_BYTES {
            return Err(DataError::TooLarge { file: member, limit: CIFAR_MAX_BATCH_BYTES });
        }
        let bytes = read_capped(&member, &mut entry, CIFAR_MAX_BATCH_BYTES)?;
        files.push((name, bytes));
    }
    cifar_from_files(source, files)
}

/// Streams an archive from disk.
fn read_archive(p: &Path) -> Result<Split, DataError> {
    let file = std::fs::File::open(p).map_err(|source| DataError::Io { file: p.into(), source })?;
    cifar_from_archive_reader(&p.display().to_string(), file)
}

/// Loads CIFAR-10 from a folder holding the batch files (or a `cifar-10-batches-bin/` folder, or
/// the archive), or from the archive's path itself.
pub fn load_cifar(path: &Path) -> Result<Split, DataError> {
    // No batch file is larger than a full batch.
    let read = |p: &Path| read_file_capped(p, CIFAR_MAX_BATCH_BYTES);
    if path.is_file() {
        return read_archive(path);
    }
    for dir in [path.to_path_buf(), path.join("cifar-10-batches-bin")] {
        if dir.join(CIFAR_TEST_FILE).is_file() {
            let mut files = Vec::new();
            for f in CIFAR_TRAIN_FILES.iter().chain([&CIFAR_TEST_FILE]) {
                let p = dir.join(f);
                if !p.is_file() {
                    return Err(DataError::Missing { dir: dir.clone(), candidates: vec![f.to_string()] });
                }
                files.push((f.to_string(), read(&p)?));
            }
            return cifar_from_files(&dir.display().to_string(), files);
        }
    }
    let archive = path.join("cifar-10-binary.tar.gz");
    if archive.is_file() {
        return read_archive(&archive);
    }
    Err(DataError::Missing {
        dir: path.into(),
        candidates: vec!["cifar-10-binary.tar.gz".into(), "cifar-10-batches-bin/".into(), CIFAR_TEST_FILE.into()],
    })
}

/// A random crop of a `side`x`side` CHW image zero-padded by `pad` (padding is the channel
/// mean after normalization, i.e. 0), optionally flipped left-right; writes normalized values.
#[allow(clippy::too_many_arguments)]
pub fn augment_into(
    img: &[u8],
    channels: usize,
    side: usize,
    pad: usize,
    dx: usize,
    dy: usize,
    flip: bool,
    norm: &super::Normalization,
    out: &mut Vec<f32>,
) {
    for c in 0..channels {
        let (m, s) = (norm.mean[c], norm.std[c]);
        let plane = &img[c * side * side..(c + 1) * side * side];
        for y in 0..side {
            for x in 0..side {
                let sx = if flip { side - 1 - x } else { x } as isize + dx as isize - pad as isize;
                let sy = y as isize + dy as isize - pad as isize;
                let v = if sx >= 0 && sy >= 0 && (sx as usize) < side && (sy as usize) < side {
                    (plane[sy as usize * side + sx as usize] as f32 / 255.0 - m) / s
                } else {
                    0.0
                };
                out.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, CIFAR_PIXELS));
        r
    }

    #[test]
    fn parses_records() {
        let bytes = [record(3, 7), record(9, 1)].concat();
        let d = parse_cifar_batch("b", &bytes).unwrap();
        assert_eq!(d.labels, vec![3, 9]);
        assert_eq!(d.images.len(), 2 * CIFAR_PIXELS);
    }

    #[test]
    fn hostile_batches_name_the_file() {
        let bytes = [record(3, 7), record(9, 1)].concat();
        let e = parse_cifar_batch("data_batch_2.bin", &bytes[..bytes.len() - 5]).unwrap_err().to_string();
        assert!(e.contains("data_batch_2.bin") && e.contains("whole number"), "{e}");
        let e = parse_cifar_batch("test_batch.bin", &record(10, 0)).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin") && e.contains("label byte 10"), "{e}");
        let e = cifar_from_files("dir", vec![("data_batch_1.bin".into(), record(1, 1))]).unwrap_err().to_string();
        assert!(e.contains("data_batch_2.bin"), "{e}");
        assert!(cifar_from_archive("x.tar.gz", b"\x1f\x8bgarbage").is_err());
    }

    #[test]
    fn augmentation_shifts_and_flips() {
        let side = 4;
        let img: Vec<u8> = (0..16).collect();
        let norm = super::super::Normalization { channels: 1, mean: [0.0; 3], std: [1.0 / 255.0; 3] };
        // Pixel values come back as (p/255) / (1/255): round away the float error.
        let crop = |dx, dy, flip| {
            let mut out = Vec::new();
            augment_into(&img, 1, side, 1, dx, dy, flip, &norm, &mut out);
            out.iter().map(|v| v.round()).collect::<Vec<f32>>()
        };
        assert_eq!(crop(1, 1, false), img.iter().map(|&v| v as f32).collect::<Vec<_>>(), "centre crop is the image");
        assert_eq!(&crop(1, 1, true)[..4], &[3.0, 2.0, 1.0, 0.0]);
        let shifted = crop(0, 0, false);
        assert_eq!(&shifted[..5], &[0.0, 0.0, 0.0, 0.0, 0.0], "padding row and column");
        assert_eq!(shifted[6], 1.0);
    }
}
