//! A labelled set that an experiment reads in order, batch by batch: an in-memory [`Dataset`], or
//! images decoded from disk as they are needed (ImageNet), so that the experiments serve both.

use burn::tensor::{Device, Int, Tensor};

use super::{Dataset, Normalization};

/// Why a source could not hand over its data (a corrupt image, a vanished file); names the file.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

pub trait Source {
    /// The samples it holds (before any skipped as unusable).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each batch of at most `batch` inputs `[b, features]` and their labels `[b]`,
    /// on `device`, always in the same order.
    fn visit(&self, batch: usize, device: &Device, f: &mut dyn FnMut(Tensor<2>, Tensor<1, Int>)) -> Result<(), SourceError>;
}

/// A [`Dataset`] with the normalization its model was trained with.
pub struct InMemory<'a> {
    pub data: &'a Dataset,
    pub norm: Normalization,
}

impl Source for InMemory<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn visit(&self, batch: usize, device: &Device, f: &mut dyn FnMut(Tensor<2>, Tensor<1, Int>)) -> Result<(), SourceError> {
        for start in (0..self.data.len()).step_by(batch.max(1)) {
            let (x, y) = self.data.range_batch(start, start + batch, self.norm, device);
            f(x, y);
        }
        Ok(())
    }
}

/// The first `n` samples of a source (all of them when `n` is `None`).
pub struct Head<'a> {
    inner: &'a dyn Source,
    n: usize,
}

impl<'a> Head<'a> {
    pub fn first(inner: &'a dyn Source, n: Option<usize>) -> Self {
        Self { inner, n: n.unwrap_or(usize::MAX) }
    }
}

impl Source for Head<'_> {
    fn len(&self) -> usize {
        self.inner.len().min(self.n)
    }

    fn visit(&self, batch: usize, device: &Device, f: &mut dyn FnMut(Tensor<2>, Tensor<1, Int>)) -> Result<(), SourceError> {
        let mut left = self.n;
        self.inner.visit(batch, device, &mut |x, y| {
            let b = y.dims()[0];
            if left >= b {
                left -= b;
                f(x, y);
            } else if left > 0 {
                f(x.slice(0..left), y.slice(0..left));
                left = 0;
            }
        })
    }
}

/// Images of an ImageNet-format folder, decoded in parallel with a bounded prefetch at each
/// visit (see [`super::stream`]); unusable images are skipped and counted when
/// `cfg.skip_bad` is set, an error otherwise.
#[cfg(feature = "native")]
pub struct ImageSource {
    pub folder: super::ImageFolder,
    pub cfg: super::StreamConfig,
    skipped: std::cell::Cell<usize>,
}

#[cfg(feature = "native")]
impl ImageSource {
    pub fn new(folder: super::ImageFolder, cfg: super::StreamConfig) -> Self {
        Self { folder, cfg, skipped: std::cell::Cell::new(0) }
    }

    /// Images skipped as unusable by the last visit.
    pub fn skipped(&self) -> usize {
        self.skipped.get()
    }
}

#[cfg(feature = "native")]
impl Source for ImageSource {
    fn len(&self) -> usize {
        self.folder.len()
    }

    fn visit(&self, batch: usize, device: &Device, f: &mut dyn FnMut(Tensor<2>, Tensor<1, Int>)) -> Result<(), SourceError> {
        let cfg = super::StreamConfig { batch: batch.max(1), ..self.cfg };
        let features = 3 * (cfg.crop * cfg.crop) as usize;
        let mut skipped = 0;
        for b in super::stream(&self.folder, cfg) {
            let b = b?;
            skipped += b.skipped.len();
            let n = b.labels.len();
            if n == 0 {
                continue;
            }
            let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(b.images, [n, features]), device);
            let y: Vec<i64> = b.labels.iter().map(|&l| l as i64).collect();
            f(x, Tensor::from_data(burn::tensor::TensorData::new(y, [n]), device));
        }
        self.skipped.set(skipped);
        Ok(())
    }
}
