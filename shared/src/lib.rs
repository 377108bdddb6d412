//! Hidden neurons as binary classifiers: a reproduction of "Discovering the mechanics of hidden
//! neurons" (Carbonnelle & De Vleeschouwer).
//!
//! One code path for every burn backend: the [`burn::tensor::Device`] picks wgpu, a CPU backend
//! or wasm at run time.
//!
//! - [`data`]: IDX/MNIST parsing from bytes, seeded batching.
//! - [`model`]: the models and the [`model::Tap`] hook of the tapped forward pass.
//! - [`train`]: one training step, evaluation; [`adam`]: burn's Adam in one pass on flex.
//! - [`recording`]: experiment 1 and 2 (gradient-sign counts, pre-activation snapshots).
//! - [`readback`]: awaited device reads (WebGPU has no blocking ones).
//! - [`percentile`]: exact per-neuron percentiles by streamed selection on the device.
//! - [`stats`]: on-device kernels (quantization, binarization, histograms).
//! - [`experiments`]: experiments 3, 4 and 5.
//! - [`settings`]: the one validation of a run's settings (trainer flags, the page's form).
//! - [`analysis`], [`results`], [`figures`], [`report`]: what a run writes.
//! - [`weights`]: pretrained weights in torchvision's layout (native builds).
//! - [`rotation`]: layer rotation, the cosine distance of each layer's weights to their start.
//! - [`finite`]: NaN and infinity checks on weights and every step's loss.
//! - [`claims`]: the paper's claims as criteria on a run's results (`trainer study`).

pub mod adam;
pub mod analysis;
pub mod backend;
pub mod batch_norm;
pub mod claims;
pub mod conv;
#[cfg(any(feature = "native", feature = "web"))]
pub mod cpu_tensor;
pub mod data;
pub mod eval_ops;
pub mod experiments;
pub mod figures;
pub mod finite;
#[cfg(feature = "native")]
mod flex_slices;
pub mod json;
pub mod model;
pub mod percentile;
pub mod pool;
pub mod readback;
pub mod recording;
pub mod report;
pub mod results;
pub mod rotation;
pub mod run;
pub mod settings;
#[cfg(any(feature = "native", feature = "web"))]
mod simd;
pub mod stats;
pub mod train;
#[cfg(any(feature = "native", feature = "web"))]
mod uninit;
#[cfg(feature = "native")]
pub mod weights;
