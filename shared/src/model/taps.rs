//! The taps the experiments use.

use burn::tensor::Tensor;

use super::Tap;

/// Leaves the forward pass untouched.
pub struct NoTap;
impl Tap for NoTap {
    fn wants(&self, _layer: usize) -> bool {
        false
    }
}

/// `[batch, positions, neurons]` to `[batch * positions, neurons]`: one row per activation.
pub fn flatten_items(t: Tensor<3>) -> Tensor<2> {
    let [b, p, n] = t.dims();
    t.reshape([b * p, n])
}

fn slot<T>(v: &mut Vec<Option<T>>, layer: usize) -> &mut Option<T> {
    if v.len() <= layer {
        v.resize_with(layer + 1, || None);
    }
    &mut v[layer]
}

/// Adds a zero leaf tensor `[batch, neurons]` that requires a gradient to each studied layer's
/// activation (broadcast over positions), so that after `backward` its gradient is
/// dLoss/dActivation per sample and neuron (summed over positions); also keeps the detached
/// pre-activations `[batch, positions, neurons]`.
#[derive(Default)]
pub struct ProbeTap {
    pub probes: Vec<Option<Tensor<2>>>,
    pub pre: Vec<Option<Tensor<3>>>,
}

impl Tap for ProbeTap {
    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        *slot(&mut self.pre, layer) = Some(z.clone().detach());
        z
    }

    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        let [b, _, n] = a.dims();
        let probe = Tensor::<2>::zeros([b, n], &a.device()).require_grad();
        *slot(&mut self.probes, layer) = Some(probe.clone());
        a + probe.unsqueeze_dim::<3>(1)
    }
}

/// Keeps the (detached) pre-activations `[batch, positions, neurons]` of the layers asked for
/// (all when `layers` is empty).
#[derive(Default)]
pub struct CaptureTap {
    pub layers: Vec<usize>,
    pub pre: Vec<Option<Tensor<3>>>,
}

impl CaptureTap {
    pub fn only(layers: Vec<usize>) -> Self {
        Self { layers, pre: Vec::new() }
    }
}

impl Tap for CaptureTap {
    fn wants(&self, layer: usize) -> bool {
        self.layers.is_empty() || self.layers.contains(&layer)
    }

    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        if self.wants(layer) {
            *slot(&mut self.pre, layer) = Some(z.clone().detach());
        }
        z
    }
}

/// Replaces one layer's pre-activation with `f(z)`, `z` flattened to `[batch * positions, neurons]`.
pub struct ReplaceTap<F: FnMut(Tensor<2>) -> Tensor<2>> {
    pub layer: usize,
    pub f: F,
}

impl<F: FnMut(Tensor<2>) -> Tensor<2>> Tap for ReplaceTap<F> {
    fn wants(&self, layer: usize) -> bool {
        layer == self.layer
    }

    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        if layer != self.layer {
            return z;
        }
        let dims = z.dims();
        (self.f)(flatten_items(z)).reshape(dims)
    }
}
