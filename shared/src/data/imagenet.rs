//! ImageNet (ILSVRC2012) as folders of JPEGs: discovery in torchvision's layout, the standard
//! evaluation preprocessing, and batches that stream from disk, decoded in parallel with a bounded
//! prefetch, so that memory never holds more than a few batches (the 50 000 validation images are
//! 30 GB as f32).
//!
//! Layouts: `DIR/<wnid>/*.JPEG` (the training set, or `val/` after the usual `valprep.sh`), class
//! index = position of the wnid in sorted order, as torchvision's `ImageFolder`; or a flat folder
//! of images with a CSV naming each one's wnid (`LOC_val_solution.csv`: `ImageId,PredictionString`,
//! the string's first word the wnid).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use image::imageops::FilterType;

/// ImageNet's per-channel mean and standard deviation (RGB, on [0, 1] values).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Evaluation preprocessing: shorter side resized to this (bilinear), then a centred square crop.
pub const RESIZE_SHORTER: u32 = 256;
pub const CROP: u32 = 224;
/// The largest image file read (ImageNet's largest is about 15 MB).
pub const MAX_IMAGE_BYTES: u64 = 64 << 20;
/// The largest side decoded (ImageNet's largest images are under 5000 pixels a side).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

const EXTENSIONS: [&str; 5] = ["jpeg", "jpg", "png", "bmp", "webp"];

/// What can go wrong; each names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum ImageNetError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error("{path}, line {line}: {reason}")]
    Csv { path: PathBuf, line: usize, reason: String },
    #[error("{path}: not a usable image: {reason} (--skip-bad-images counts such files and goes on)")]
    BadImage { path: PathBuf, reason: String },
}

/// The CSV torchvision's flat validation folder comes with (Kaggle's ILSVRC2012 layout).
pub const VAL_CSV: &str = "LOC_val_solution.csv";
/// The 1000 wnids with their descriptions, in the same layout: when present, class indices are
/// places in it (as pretrained weights number them), whichever classes the folders hold.
pub const SYNSETS: &str = "LOC_synset_mapping.txt";

/// `root/train/<wnid>/` and `root/val/`, the latter with class folders or flat with its CSV.
/// Classes are numbered by [`SYNSETS`] where there is one, else by ImageNet-1k's wnid list where
/// the weights have 1000 classes and every folder is one of its wnids (`by_1k_wnids` says so),
/// else in the folders' name order.
pub fn discover_splits(root: &Path, limit: Option<usize>, weight_classes: Option<usize>) -> Result<(ImageFolder, ImageFolder, bool), ImageNetError> {
    let mut train = ImageFolder::discover(&root.join("train"), limit)?;
    let synsets = root.join(SYNSETS);
    let mut by_1k_wnids = false;
    if synsets.is_file() {
        train = train.relabel(ImageFolder::synsets(&synsets)?, &synsets)?;
    } else if weight_classes == Some(1000) && train.classes_are_imagenet_1k() {
        by_1k_wnids = true;
        train = train.relabel(imagenet_1k_wnids(), &root.join("train"))?;
    }
    let val_dir = root.join("val");
    let has_class_folders = std::fs::read_dir(&val_dir).map_err(io(&val_dir))?.filter_map(|e| e.ok()).any(|e| e.path().is_dir());
    let val = if has_class_folders {
        let val = ImageFolder::discover(&val_dir, limit)?;
        if val.classes == train.classes { val } else { val.relabel(train.classes.clone(), &val_dir)? }
    } else {
        let csv = [root.join(VAL_CSV), val_dir.join(VAL_CSV)].into_iter().find(|p| p.is_file()).ok_or_else(|| ImageNetError::Layout {
            path: val_dir.clone(),
            reason: format!("flat (no class folders), and no {VAL_CSV} beside it or in {} to label its images", root.display()),
        })?;
        ImageFolder::flat(&val_dir, &csv, Some(train.classes.clone()), limit)?
    };
    Ok((train, val, by_1k_wnids))
}

/// ImageNet-1k's 1000 wnids, sorted (n01440764 tench ... n15075141 toilet tissue).
const IMAGENET_1K_WNIDS: &str = include_str!("imagenet_1k_wnids.txt");

/// ImageNet-1k's 1000 wnids in sorted order: class `i` of torchvision's and Keras' pretrained
/// 1000-class weights is the `i`-th.
pub fn imagenet_1k_wnids() -> Vec<String> {
    IMAGENET_1K_WNIDS.lines().map(str::to_string).collect()
}

/// The images of a split and their class indices.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolder {
    /// The wnids, sorted: class `i` is `classes[i]`.
    pub classes: Vec<String>,
    pub items: Vec<(PathBuf, usize)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageNetError + '_ {
    move |source| ImageNetError::Io { path: path.to_path_buf(), source }
}

fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Image files of `dir`, sorted by name.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>, ImageNetError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map_err(io(dir))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_image(p)).collect();
    files.sort();
    Ok(files)
}

impl ImageFolder {
    /// `root/<wnid>/*`, at most `limit` images per class (the first in name order).
    pub fn discover(root: &Path, limit: Option<usize>) -> Result<Self, ImageNetError> {
        let mut classes: Vec<PathBuf> = std::fs::read_dir(root).map_err(io(root))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        classes.sort();
        if classes.is_empty() {
            return Err(ImageNetError::Layout { path: root.into(), reason: "no class folders (expected <wnid>/ folders of images, or a flat folder with a CSV of labels)".into() });
        }
        let mut items = Vec::new();
        for (label, dir) in classes.iter().enumerate() {
            let files = images_in(dir)?;
            items.extend(files.into_iter().take(limit.unwrap_or(usize::MAX)).map(|f| (f, label)));
        }
        if items.is_empty() {
            return Err(ImageNetError::Layout { path: root.into(), reason: "the class folders hold no images (.JPEG, .jpg, .png)".into() });
        }
        let classes = classes.iter().map(|d| d.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        Ok(Self { classes, items })
    }

    /// A flat folder of images labelled by `csv` (`ImageId,PredictionString`). Classes are
    /// `classes` when given (e.g. the training folder's), else the CSV's wnids, sorted.
    pub fn flat(dir: &Path, csv: &Path, classes: Option<Vec<String>>, limit: Option<usize>) -> Result<Self, ImageNetError> {
        let bytes = crate::data::read_file_capped(csv, 64 << 20).map_err(|e| ImageNetError::Layout { path: csv.into(), reason: e.to_string() })?;
        let text = String::from_utf8(bytes).map_err(|_| ImageNetError::Layout { path: csv.into(), reason: "not UTF-8 text".into() })?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || (i == 0 && line.starts_with("ImageId")) {
                continue;
            }
            let csv_err = |reason: &str| ImageNetError::Csv { path: csv.into(), line: i + 1, reason: reason.into() };
            let (id, rest) = line.split_once(',').ok_or_else(|| csv_err("expected ImageId,PredictionString"))?;
            let wnid = rest.split_whitespace().next().ok_or_else(|| csv_err("no wnid after the image id"))?;
            if id.is_empty() || id.contains('/') || id.contains("..") {
                return Err(csv_err("not an image id"));
            }
            rows.push((id.to_string(), wnid.to_string()));
        }
        let classes = classes.unwrap_or_else(|| rows.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect());
        let files = images_in(dir)?;
        let by_stem: std::collections::HashMap<String, PathBuf> = files.into_iter().filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p))).collect();
        let mut per_class = vec![0usize; classes.len()];
        let mut items = Vec::new();
        rows.sort();
        for (id, wnid) in rows {
            let label = classes.binary_search(&wnid).map_err(|_| ImageNetError::Layout { path: csv.into(), reason: format!("{id}: wnid {wnid} is not one of the {} classes", classes.len()) })?;
            let path = by_stem.get(&id).ok_or_else(|| ImageNetError::Layout { path: dir.into(), reason: format!("{id}, listed in {}, is not there", csv.display()) })?;
            if per_class[label] < limit.unwrap_or(usize::MAX) {
                per_class[label] += 1;
                items.push((path.clone(), label));
            }
        }
        Ok(Self { classes, items })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The same images labelled by their wnid's place in `classes` (sorted), e.g. ImageNet's 1000
    /// wnids for a folder holding some of its classes, so that labels match pretrained weights'
    /// outputs. A wnid missing from `classes` is an error naming it and `source`.
    pub fn relabel(self, classes: Vec<String>, source: &Path) -> Result<Self, ImageNetError> {
        let mut map = Vec::with_capacity(self.classes.len());
        for wnid in &self.classes {
            let i = classes.binary_search(wnid).map_err(|_| ImageNetError::Layout { path: source.into(), reason: format!("class {wnid} of the folder is not one of its {} wnids", classes.len()) })?;
            map.push(i);
        }
        let items = self.items.into_iter().map(|(p, l)| (p, map[l])).collect();
        Ok(Self { classes, items })
    }

    /// Whether every class folder is named by one of ImageNet-1k's wnids.
    pub fn classes_are_imagenet_1k(&self) -> bool {
        let all = imagenet_1k_wnids();
        self.classes.iter().all(|c| all.binary_search(c).is_ok())
    }

    /// The wnids of a synset list (`LOC_synset_mapping.txt`: one `wnid description` per line),
    /// sorted.
    pub fn synsets(path: &Path) -> Result<Vec<String>, ImageNetError> {
        let bytes = crate::data::read_file_capped(path, 16 << 20).map_err(|e| ImageNetError::Layout { path: path.into(), reason: e.to_string() })?;
        let text = String::from_utf8(bytes).map_err(|_| ImageNetError::Layout { path: path.into(), reason: "not UTF-8 text".into() })?;
        let mut wnids: Vec<String> = text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
        wnids.sort();
        let n = wnids.len();
        wnids.dedup();
        if wnids.is_empty() || wnids.len() != n {
            return Err(ImageNetError::Layout { path: path.into(), reason: format!("{n} lines, {} distinct wnids: expected one wnid per line", wnids.len()) });
        }
        Ok(wnids)
    }

    /// `n` of its images (all if fewer), drawn by a seeded shuffle so that every class is
    /// represented in proportion, in a fixed order.
    pub fn sample(&self, n: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut items = self.items.clone();
        items.shuffle(&mut rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed));
        items.truncate(n);
        Self { classes: self.classes.clone(), items }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Decodes an image of any supported format (by content, not by name: ImageNet has PNGs and CMYK
/// JPEGs named `.JPEG`), resizes its shorter side to `resize` (bilinear, antialiased), crops the
/// centred `crop` x `crop` square and normalizes it: `[3, crop, crop]` channel-major.
pub fn preprocess(bytes: &[u8], resize: u32, crop: u32) -> Result<Vec<f32>, String> {
    let mut reader = image::io::Reader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    // A decoder that panics on hostile bytes must not take the run down with it.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode())).map_err(|_| "the decoder gave up on it".to_string())?;
    let rgb = decoded.map_err(|e| e.to_string())?.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err("an empty image".into());
    }
    // Shorter side to `resize` (at least `crop`, so that images smaller than the crop are scaled up).
    let target = resize.max(crop);
    let (nw, nh) = if w <= h { (target, ((h as u64 * target as u64) / w as u64).max(target as u64) as u32) } else { (((w as u64 * target as u64) / h as u64).max(target as u64) as u32, target) };
    let resized = image::imageops::resize(&rgb, nw, nh, FilterType::Triangle);
    let (x0, y0) = ((nw - crop) / 2, (nh - crop) / 2);
    let plane = (crop * crop) as usize;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..crop {
        for x in 0..crop {
            let p = resized.get_pixel(x0 + x, y0 + y);
            for c in 0..3 {
                out[c * plane + (y * crop + x) as usize] = (p[c] as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
    }
    Ok(out)
}

/// One streamed batch: `images` is `[labels.len(), 3 * crop * crop]`, row-major.
#[derive(Debug)]
pub struct ImageBatch {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// Unusable files skipped in this batch (only with `skip_bad`).
    pub skipped: Vec<PathBuf>,
}

/// How batches are read.
#[derive(Clone, Copy, Debug)]
pub struct StreamConfig {
    pub batch: usize,
    /// Batches decoded ahead of the one being used.
    pub prefetch: usize,
    /// Decoding threads (0: all cores).
    pub threads: usize,
    /// Count and leave out unusable images instead of stopping at the first.
    pub skip_bad: bool,
    pub resize: u32,
    pub crop: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { batch: 64, prefetch: 2, threads: 0, skip_bad: false, resize: RESIZE_SHORTER, crop: CROP }
    }
}

/// Batches of `folder` in order, decoded on a background thread (each batch's images in parallel)
/// and handed over through a channel of `prefetch` batches: memory holds at most
/// `prefetch + 2` batches whatever the folder's size. The first error ends the stream.
pub fn stream(folder: &ImageFolder, cfg: StreamConfig) -> impl Iterator<Item = Result<ImageBatch, ImageNetError>> {
    let (tx, rx) = mpsc::sync_channel(cfg.prefetch.max(1));
    let items = folder.items.clone();
    let threads = if cfg.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { cfg.threads };
    std::thread::spawn(move || {
        for chunk in items.chunks(cfg.batch.max(1)) {
            let batch = decode_batch(chunk, threads, cfg);
            let stop = batch.is_err();
            if tx.send(batch).is_err() || stop {
                return;
            }
        }
    });
    rx.into_iter()
}

fn decode_batch(chunk: &[(PathBuf, usize)], threads: usize, cfg: StreamConfig) -> Result<ImageBatch, ImageNetError> {
    let per = chunk.len().div_ceil(threads.max(1)).max(1);
    let decoded: Vec<Result<Vec<f32>, ImageNetError>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .map(|part| (part, s.spawn(move || part.iter().map(|(path, _)| load_one(path, cfg)).collect::<Vec<_>>())))
            .collect();
        // One result per image, whatever happens to a thread, so that images and labels stay paired.
        handles
            .into_iter()
            .flat_map(|(part, h)| {
                h.join().unwrap_or_else(|_| part.iter().map(|(path, _)| Err(ImageNetError::BadImage { path: path.clone(), reason: "its decoding thread failed".into() })).collect())
            })
            .collect()
    });
    let mut out = ImageBatch { images: Vec::with_capacity(chunk.len() * 3 * (cfg.crop * cfg.crop) as usize), labels: Vec::new(), skipped: Vec::new() };
    for ((path, label), image) in chunk.iter().zip(decoded) {
        match image {
            Ok(v) => {
                out.images.extend(v);
                out.labels.push(*label);
            }
            Err(e @ ImageNetError::BadImage { .. }) if !cfg.skip_bad => return Err(e),
            Err(ImageNetError::BadImage { .. }) => out.skipped.push(path.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn load_one(path: &Path, cfg: StreamConfig) -> Result<Vec<f32>, ImageNetError> {
    let bytes = crate::data::read_file_capped(path, MAX_IMAGE_BYTES).map_err(|e| match e {
        crate::data::DataError::Io { source, .. } => ImageNetError::Io { path: path.into(), source },
        other => ImageNetError::BadImage { path: path.into(), reason: other.to_string() },
    })?;
    preprocess(&bytes, cfg.resize, cfg.crop).map_err(|reason| ImageNetError::BadImage { path: path.into(), reason })
}
