//! Models and the "tapped forward" that every studied model implements.
//!
//! A [`Tap`] sees each studied layer's pre-activation and activation as `[batch, positions,
//! neurons]` tensors and may return a replacement. That one hook serves every experiment: adding
//! a zero probe to the activation yields dLoss/dActivation per sample and neuron (experiment 1),
//! keeping the pre-activations records them (experiment 2), and replacing them quantizes or
//! binarizes a layer (experiments 3 and 4). Dense layers have one position; a convolutional
//! layer's neurons are its channels and each spatial position is one more activation of each.

mod cnn;
mod either;
mod mlp;
mod resnet;
mod taps;

pub use cnn::{CIFAR_WIDTHS, Cnn, CnnConfig, ConvLayer, LAYERS_PER_STAGE};
pub use either::MlpOrCnn;
pub use mlp::{MNIST_WIDTHS, Mlp, MlpConfig};
pub use resnet::{Bottleneck, Downsample, LinearProbe, RESNET50_BLOCKS, ResNet, ResNetConfig, Stem};
pub use taps::{CaptureTap, NoTap, ProbeTap, ReplacePostTap, ReplaceTap, flatten_items};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// How weights and biases start. The paper used Keras and does not say more; `Keras` is what its
/// `Dense` and `Conv2D` layers do by default, `Burn` is burn's default (our first choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// burn's defaults: Kaiming-uniform weights (gain 1/sqrt(3)), biases drawn from the same law.
    #[default]
    Burn,
    /// Keras' defaults: Glorot-uniform weights (limit sqrt(6 / (fan_in + fan_out)), a conv's fans
    /// counting its kernel positions), zero biases.
    Keras,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Burn => "burn",
            Init::Keras => "keras",
        }
    }

    /// A dense layer started this way.
    pub(crate) fn linear(self, d_in: usize, d_out: usize, device: &Device) -> burn::nn::Linear {
        let mut cfg = burn::nn::LinearConfig::new(d_in, d_out);
        if let Some(w) = self.weights() {
            cfg = cfg.with_initializer(w);
        }
        let mut linear = cfg.init(device);
        linear.bias = self.bias(linear.bias);
        linear
    }

    /// A conv layer of `cfg`'s shape started this way.
    pub(crate) fn conv(self, mut cfg: burn::nn::conv::Conv2dConfig, device: &Device) -> burn::nn::conv::Conv2d {
        if let Some(w) = self.weights() {
            cfg = cfg.with_initializer(w);
        }
        let mut conv = cfg.init(device);
        conv.bias = self.bias(conv.bias);
        conv
    }

    /// The weight initializer; `None` keeps burn's.
    fn weights(self) -> Option<burn::nn::Initializer> {
        match self {
            Init::Burn => None,
            Init::Keras => Some(burn::nn::Initializer::XavierUniform { gain: 1.0 }),
        }
    }

    /// A freshly initialised bias as this scheme wants it.
    fn bias(self, bias: Option<burn::module::Param<Tensor<1>>>) -> Option<burn::module::Param<Tensor<1>>> {
        match self {
            Init::Burn => bias,
            Init::Keras => bias.map(|b| b.map(|t| t.zeros_like())),
        }
    }
}

/// The activation function of a model's studied layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    /// No non-linearity ("linear" networks).
    None,
}

impl Activation {
    pub fn apply<const D: usize>(self, z: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => burn::tensor::activation::relu(z),
            Activation::Sigmoid => burn::tensor::activation::sigmoid(z),
            Activation::None => z,
        }
    }

    /// The suffix of the paper's layer names: `dense2-relu`, `stage3layer2-linear`.
    pub fn suffix(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::None => "linear",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relu" => Ok(Self::Relu),
            "sigmoid" => Ok(Self::Sigmoid),
            "none" | "linear" => Ok(Self::None),
            other => Err(format!("unknown activation '{other}' (relu, sigmoid, none)")),
        }
    }
}

/// A studied layer: its paper name, its number of neurons and of positions per sample (1 for a
/// dense layer, height x width for a convolutional one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub name: String,
    pub neurons: usize,
    pub positions: usize,
}

/// Sees (and may replace) each studied layer's values during a forward pass.
pub trait Tap {
    /// Whether this tap looks at layer `layer` at all; lets models skip reshaping otherwise.
    fn wants(&self, _layer: usize) -> bool {
        true
    }
    /// The pre-activation `[batch, positions, neurons]` of studied layer `layer`; returns what
    /// the activation function is applied to.
    fn pre(&mut self, _layer: usize, z: Tensor<3>) -> Tensor<3> {
        z
    }
    /// The activation `[batch, positions, neurons]` of studied layer `layer`; returns what the
    /// next layer receives.
    fn post(&mut self, _layer: usize, a: Tensor<3>) -> Tensor<3> {
        a
    }
}

/// A model whose studied layers can be tapped.
pub trait TappedModel: Module + Sized {
    /// Studied layers in forward order.
    fn layers(&self) -> Vec<LayerInfo>;

    /// Logits `[batch, classes]` for flattened inputs `[batch, features]`.
    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2>;

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_tapped(x, &mut NoTap)
    }

    /// Studied layer `layer`'s pre-activations `[batch, positions, neurons]` for inputs `x`,
    /// running only the layers up to it; `None` where the model cannot be split there. With
    /// [`TappedModel::forward_from`], an experiment that changes one layer runs the layers before
    /// it once per batch, not once per variant.
    fn pre_activations(&self, _layer: usize, _x: Tensor<2>) -> Option<Tensor<3>> {
        None
    }

    /// Logits from studied layer `layer`'s pre-activations `z` (as
    /// [`TappedModel::pre_activations`] gives them), `tap` seeing layer `layer` and the layers
    /// after it: `forward_from(l, pre_activations(l, x), tap)` is `forward_tapped(x, tap)` for a
    /// tap that changes nothing before `l` (in evaluation mode; in training, a layer the tap does
    /// not want may take a fused path there). `None` where the model cannot start there.
    fn forward_from(&self, _layer: usize, _z: Tensor<3>, _tap: &mut dyn Tap) -> Option<Tensor<2>> {
        None
    }

    /// Each weighted layer's weights (biases left out), flattened, by layer name (the studied
    /// layers' names without the activation suffix, then the output layer): what layer rotation
    /// compares with their initial values.
    fn weight_layers(&self) -> Vec<(String, Tensor<1>)>;

    /// What [`TappedModel::fresh_suffix`] builds.
    type Suffix: TappedModel;

    /// A freshly initialised copy of the layers after studied layer `layer`, taking that layer's
    /// (binarized) output as its input, flattened per sample as `[positions * neurons]`
    /// (position-major), or `[neurons]` where [`TappedModel::suffix_pools_positions`]: what
    /// experiment 4 retrains.
    fn fresh_suffix(&self, layer: usize, device: &Device) -> Self::Suffix;

    /// Whether experiment 4's suffix reads each channel's mean over positions (a linear probe)
    /// rather than the whole map: then only that mean is computed and kept per sample.
    fn suffix_pools_positions(&self) -> bool {
        false
    }
}
