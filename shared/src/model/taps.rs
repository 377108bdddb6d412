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
///
/// With `per_position`, a layer with several positions (a conv layer) gets a probe
/// `[batch, positions, neurons]` instead, in `position_probes`: its gradient is dLoss/dActivation
/// per sample, position and neuron, whose sum over positions is the per-channel one.
#[derive(Default)]
pub struct ProbeTap {
    pub probes: Vec<Option<Tensor<2>>>,
    pub pre: Vec<Option<Tensor<3>>>,
    pub per_position: bool,
    pub position_probes: Vec<Option<Tensor<3>>>,
}

impl ProbeTap {
    pub fn per_position() -> Self {
        Self { per_position: true, ..Self::default() }
    }
}

impl Tap for ProbeTap {
    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        *slot(&mut self.pre, layer) = Some(z.clone().detach());
        z
    }

    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        let [b, p, n] = a.dims();
        if self.per_position && p > 1 {
            let probe = Tensor::<3>::zeros([b, p, n], &a.device()).require_grad();
            *slot(&mut self.position_probes, layer) = Some(probe.clone());
            return a + probe;
        }
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
    /// The activations too, when asked for ([`CaptureTap::with_post`]).
    pub post: Option<Vec<Option<Tensor<3>>>>,
}

impl CaptureTap {
    pub fn only(layers: Vec<usize>) -> Self {
        Self { layers, pre: Vec::new(), post: None }
    }

    /// Also keeps the activations.
    pub fn with_post(mut self) -> Self {
        self.post = Some(Vec::new());
        self
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

    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        if let Some(post) = self.post.as_mut().filter(|_| self.layers.is_empty() || self.layers.contains(&layer)) {
            *slot(post, layer) = Some(a.clone().detach());
        }
        a
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

/// Replaces one layer's activation with `f(z, a)`, both flattened to `[batch * positions,
/// neurons]`: `z` the pre-activation, `a` the activation (the post-activation quantization decides
/// each value's side on `z` and replaces `a`).
pub struct ReplacePostTap<F: FnMut(Tensor<2>, Tensor<2>) -> Tensor<2>> {
    pub layer: usize,
    pub f: F,
    z: Option<Tensor<2>>,
}

impl<F: FnMut(Tensor<2>, Tensor<2>) -> Tensor<2>> ReplacePostTap<F> {
    pub fn new(layer: usize, f: F) -> Self {
        Self { layer, f, z: None }
    }
}

impl<F: FnMut(Tensor<2>, Tensor<2>) -> Tensor<2>> Tap for ReplacePostTap<F> {
    fn wants(&self, layer: usize) -> bool {
        layer == self.layer
    }

    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        if layer == self.layer {
            self.z = Some(flatten_items(z.clone()));
        }
        z
    }

    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        let Some(z) = self.z.take().filter(|_| layer == self.layer) else { return a };
        let dims = a.dims();
        (self.f)(z, flatten_items(a)).reshape(dims)
    }
}
