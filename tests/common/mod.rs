//! Helpers shared by the integration tests.

use burn::tensor::{Tensor, TensorData};
use hidden_neurons::model::Tap;

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
