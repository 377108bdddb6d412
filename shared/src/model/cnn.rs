//! The CIFAR-10 CNN of the paper: 4 stages of 3 conv 3x3 layers with batch-norm, max-pooling
//! between stages, global average pooling and a dense classifier. Activation ReLU or none
//! ("linear"). A conv layer's neurons are its channels.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Activation, Init, LayerInfo, NoTap, Tap, TappedModel};

/// Conv layers per stage of the paper's CIFAR CNN.
pub const LAYERS_PER_STAGE: usize = 3;

fn paper_layers_per_stage() -> usize {
    LAYERS_PER_STAGE
}

/// Stage widths of the paper preset's CIFAR CNN: doubling per stage (VGG style).
pub const CIFAR_WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// Shape of the CNN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Input channels and side (CIFAR: 3, 32).
    pub channels: usize,
    pub side: usize,
    /// Channels of each stage.
    pub widths: Vec<usize>,
    pub classes: usize,
    pub activation: Activation,
    #[serde(default)]
    pub init: Init,
    /// Conv layers in each stage (the paper's CNN: 3).
    #[serde(default = "paper_layers_per_stage")]
    pub layers_per_stage: usize,
}

/// One conv layer of a [`CnnConfig`], as planned before anything is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    pub name: String,
    pub c_in: usize,
    pub c_out: usize,
    /// Side of its (square) input and output map.
    pub side: usize,
    /// A 2x2 max-pool precedes it (the first layer of every stage but the first).
    pub pool_before: bool,
}

impl CnnConfig {
    pub fn cifar(activation: Activation, widths: Vec<usize>) -> Self {
        Self { channels: 3, side: 32, widths, classes: 10, activation, init: Init::Burn, layers_per_stage: LAYERS_PER_STAGE }
    }

    /// The page's small MNIST CNN: three conv layers (8, 16, 32 channels at 28, 14 and 7 pixels),
    /// one per stage, so a browser's CPU trains it in about the time of the MLP.
    pub fn mnist_small(activation: Activation) -> Self {
        Self { channels: 1, side: 28, widths: vec![8, 16, 32], classes: 10, activation, init: Init::Burn, layers_per_stage: 1 }
    }

    /// The conv layers in forward order. Layers are named `stage{s}layer{l}` (the paper's CIFAR
    /// names), or `conv{n}` when every stage has a single layer.
    pub fn conv_layers(&self) -> Vec<ConvLayer> {
        let per = self.layers_per_stage.max(1);
        let mut c_in = self.channels;
        let mut side = self.side;
        let mut out = Vec::with_capacity(self.widths.len() * per);
        for (stage, &width) in self.widths.iter().enumerate() {
            for l in 0..per {
                let pool_before = stage > 0 && l == 0;
                if pool_before {
                    side /= 2;
                }
                let base = if per == 1 { format!("conv{}", stage + 1) } else { format!("stage{stage}layer{l}") };
                out.push(ConvLayer { name: format!("{base}-{}", self.activation.suffix()), c_in, c_out: width, side, pool_before });
                c_in = width;
            }
        }
        out
    }

    pub fn with_init(self, init: Init) -> Self {
        Self { init, ..self }
    }

    pub fn init(&self, device: &Device) -> Cnn {
        let plan: Vec<Block> =
            self.conv_layers().into_iter().map(|c| Block { name: c.name, channels: c.c_out, pool_before: c.pool_before }).collect();
        Cnn::build(&plan, self.channels, self.side, false, self.classes, self.activation, self.init, device)
    }
}

#[derive(Clone, Debug)]
struct Block {
    name: String,
    channels: usize,
    pool_before: bool,
}

#[derive(Module, Debug)]
pub struct Cnn {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    pool: MaxPool2d,
    gap: AdaptiveAvgPool2d,
    head: Linear,
    #[module(skip)]
    names: Vec<String>,
    #[module(skip)]
    pool_before: Vec<bool>,
    #[module(skip)]
    activation: Activation,
    /// Channels and side of the input.
    #[module(skip)]
    input: [usize; 2],
    /// Inputs flattened as height, width, channel (a suffix fed with a binarized conv layer)
    /// rather than channel, height, width (images).
    #[module(skip)]
    input_hwc: bool,
    /// How a fresh suffix starts.
    #[module(skip)]
    init: Init,
}

impl Cnn {
    #[allow(clippy::too_many_arguments)]
    fn build(plan: &[Block], channels: usize, side: usize, input_hwc: bool, classes: usize, activation: Activation, init: Init, device: &Device) -> Self {
        let mut c_in = channels;
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for b in plan {
            let cfg = Conv2dConfig::new([c_in, b.channels], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
            convs.push(init.conv(cfg, device));
            norms.push(BatchNormConfig::new(b.channels).init(device));
            c_in = b.channels;
        }
        Cnn {
            convs,
            norms,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            gap: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: init.linear(c_in, classes, device),
            names: plan.iter().map(|b| b.name.clone()).collect(),
            pool_before: plan.iter().map(|b| b.pool_before).collect(),
            activation,
            input: [channels, side],
            input_hwc,
            init,
        }
    }

    fn plan(&self) -> Vec<Block> {
        self.convs
            .iter()
            .zip(&self.names)
            .zip(&self.pool_before)
            .map(|((c, name), &pool_before)| Block { name: name.clone(), channels: c.weight.val().dims()[0], pool_before })
            .collect()
    }

    /// Flattened inputs `[batch, features]` as images `[batch, channels, side, side]`.
    fn image(&self, x: Tensor<2>) -> Tensor<4> {
        let [batch, _] = x.dims();
        let [c, side] = self.input;
        if self.input_hwc {
            x.reshape([batch, side, side, c]).permute([0, 3, 1, 2])
        } else {
            x.reshape([batch, c, side, side])
        }
    }

    /// Logits from conv layer `first`'s input `h` (`[batch, channels, side, side]`) on.
    fn from_conv(&self, first: usize, mut h: Tensor<4>, tap: &mut dyn Tap) -> Tensor<2> {
        for i in first..self.convs.len() {
            h = self.conv_layer(i, h, tap);
        }
        let [b, ch, _, _] = h.dims();
        self.head.forward(self.gap.forward(h).reshape([b, ch])) // [batch, classes]
    }

    /// Conv layer `i` (with the pool before it, if any), its batch-norm and activation.
    fn conv_layer(&self, i: usize, h: Tensor<4>, tap: &mut dyn Tap) -> Tensor<4> {
        if tap.wants(i) {
            let (z, side) = self.pre_of(i, h);
            self.tapped(i, z, side, tap)
        } else {
            let h = if self.pool_before[i] { crate::pool::forward(&self.pool, h) } else { h };
            let z = crate::conv::forward(&self.convs[i], h); // [batch, width, s, s]
            if self.activation == Activation::Relu {
                crate::batch_norm::forward_relu(&self.norms[i], z) // one pass where it trains
            } else {
                self.activation.apply(crate::batch_norm::forward(&self.norms[i], z))
            }
        }
    }

    /// Conv layer `i`'s pre-activations `[batch, side * side, width]` (after its batch-norm) for
    /// its input `h`, and their side.
    fn pre_of(&self, i: usize, h: Tensor<4>) -> (Tensor<3>, usize) {
        let h = if self.pool_before[i] { crate::pool::forward(&self.pool, h) } else { h };
        let z = crate::batch_norm::forward(&self.norms[i], crate::conv::forward(&self.convs[i], h));
        let [b, ch, hh, ww] = z.dims();
        // Row-major before the reshape: on ndarray, reshaping the permuted view copies it slowly.
        (crate::eval_ops::row_major(z.permute([0, 2, 3, 1])).reshape([b, hh * ww, ch]), hh)
    }

    /// Conv layer `i`'s pre-activations `z` (`[batch, side * side, width]`) through the tap, the
    /// activation and the tap again, as the next layer's input `[batch, width, side, side]`.
    fn tapped(&self, i: usize, z: Tensor<3>, side: usize, tap: &mut dyn Tap) -> Tensor<4> {
        let z = tap.pre(i, z);
        let a = tap.post(i, self.activation.apply(z));
        let [b, _, ch] = a.dims();
        a.reshape([b, side, side, ch]).permute([0, 3, 1, 2])
    }

    /// Side of the feature map each conv layer outputs.
    fn sides(&self) -> Vec<usize> {
        let mut side = self.input[1];
        self.pool_before
            .iter()
            .map(|&p| {
                if p {
                    side /= 2;
                }
                side
            })
            .collect()
    }
}

impl TappedModel for Cnn {
    type Suffix = Cnn;

    fn layers(&self) -> Vec<LayerInfo> {
        self.plan()
            .into_iter()
            .zip(self.sides())
            .map(|(b, side)| LayerInfo { name: b.name, neurons: b.channels, positions: side * side })
            .collect()
    }

    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2> {
        let h = self.image(x);
        self.from_conv(0, h, tap)
    }

    fn pre_activations(&self, layer: usize, x: Tensor<2>) -> Option<Tensor<3>> {
        self.convs.get(layer)?;
        let mut h = self.image(x);
        for i in 0..layer {
            h = self.conv_layer(i, h, &mut NoTap);
        }
        Some(self.pre_of(layer, h).0)
    }

    fn forward_from(&self, layer: usize, z: Tensor<3>, tap: &mut dyn Tap) -> Option<Tensor<2>> {
        let side = *self.sides().get(layer)?;
        let h = self.tapped(layer, z, side, tap);
        Some(self.from_conv(layer + 1, h, tap))
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        let mut out: Vec<(String, Tensor<1>)> = self
            .convs
            .iter()
            .zip(&self.names)
            .map(|(c, name)| (crate::claims::layer_base(name).to_string(), c.weight.val().flatten::<1>(0, 3)))
            .collect();
        out.push(("output".into(), self.head.weight.val().flatten::<1>(0, 1)));
        out
    }

    fn fresh_suffix(&self, layer: usize, device: &Device) -> Cnn {
        let plan = self.plan();
        let side = self.sides()[layer];
        let classes = self.head.weight.val().dims()[1];
        Cnn::build(&plan[layer + 1..], plan[layer].channels, side, true, classes, self.activation, self.init, device)
    }
}
