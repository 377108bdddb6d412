//! Helpers shared by the integration tests.

// Each test binary uses a part of these.
#![allow(dead_code)]

use std::io::Write;

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::data::{Dataset, Normalization};
use hidden_neurons::model::{Activation, Mlp, MlpConfig, Tap};

/// A 5-3 classification MLP with hidden widths 4 and 6, seeded, no dropout.
pub fn tiny_model(activation: Activation, device: &Device) -> Mlp {
    device.seed(3);
    MlpConfig { input: 5, hidden: vec![4, 6], classes: 3, activation, dropout: 0.0, first_index: 1, init: Default::default() }.init(device)
}

/// `n` samples of 5 features for [`tiny_model`], labels cycling through the 3 classes.
pub fn toy_dataset(n: usize) -> Dataset {
    Dataset {
        features: 5,
        images: (0..n * 5).map(|i| ((i * 37) % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
    }
}

/// The normalization used with [`toy_dataset`].
pub const TOY_NORM: Normalization = Normalization { channels: 1, mean: [0.5; 3], std: [0.3; 3] };

/// Adds `by` to the activation of (sample, neuron) of one studied layer, at every position (the
/// probe of a conv channel is shared by its positions): the finite-difference counterpart of
/// the gradient probe.
pub struct Nudge {
    pub layer: usize,
    pub sample: usize,
    pub neuron: usize,
    pub by: f32,
}

impl Tap for Nudge {
    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        if layer != self.layer {
            return a;
        }
        let [b, p, n] = a.dims();
        let mut delta = vec![0.0f32; b * p * n];
        for pos in 0..p {
            delta[(self.sample * p + pos) * n + self.neuron] = self.by;
        }
        let delta = Tensor::from_data(TensorData::new(delta, [b, p, n]), &a.device());
        a + delta
    }
}

/// An IDX file of unsigned bytes with dimensions `dims` and payload `data` (not checked against
/// each other: tests build broken ones too).
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// `bytes` gzip-compressed (one member).
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
