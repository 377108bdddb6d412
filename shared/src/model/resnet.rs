//! ResNet50 in torchvision's layout (bottleneck blocks, the stride on the 3x3 conv, "v1.5"), so
//! that torchvision's weights load by name ([`crate::weights`]). The studied layers are named as
//! in the paper, which used Keras: `conv1` (after batch-norm, before its ReLU) and each block
//! `2a` ... `5c`, whose neurons are the channels after the skip connection is added, before the
//! block's ReLU.
//!
//! Keras' ResNet50 (the paper's) differs from torchvision's in two ways: it strides the first
//! 1x1 conv of a downsampling block rather than the 3x3 one ("v1"), and its convs carry biases.
//!
//! [`Stem::Cifar`] is the same topology for 32x32 images (a 3x3 stride-1 first conv and no
//! max-pool, as ResNets for CIFAR usually start), so that a residual network can be trained and
//! studied on two CPU cores.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{LayerInfo, Tap, TappedModel};
use crate::{batch_norm, conv};

/// Blocks per stage of ResNet50.
pub const RESNET50_BLOCKS: [usize; 4] = [3, 4, 6, 3];

/// How the network first reduces its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// ImageNet's: a 7x7 stride-2 conv, then a 3x3 stride-2 max-pool (a quarter of the side).
    #[default]
    Imagenet,
    /// CIFAR's: a 3x3 stride-1 conv and no max-pool (32x32 images keep their side).
    Cifar,
}

impl Stem {
    pub fn is_imagenet(&self) -> bool {
        *self == Stem::Imagenet
    }

    /// conv1's kernel side and stride.
    pub fn conv1(self) -> (usize, usize) {
        match self {
            Stem::Imagenet => (7, 2),
            Stem::Cifar => (3, 1),
        }
    }

    /// The stride of the max-pool after conv1 (1: none).
    pub fn pool_stride(self) -> usize {
        match self {
            Stem::Imagenet => 2,
            Stem::Cifar => 1,
        }
    }
}

/// Shape of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Input side (ImageNet evaluation: 224); inputs are 3 channels.
    pub side: usize,
    /// Channels of conv1 and of the first stage's bottleneck (ResNet50: 64); each stage doubles it,
    /// and a block outputs 4 times its bottleneck width.
    pub width: usize,
    pub blocks: Vec<usize>,
    pub classes: usize,
    /// Absent for ImageNet's (older specs and fingerprints have no stem).
    #[serde(default, skip_serializing_if = "Stem::is_imagenet")]
    pub stem: Stem,
}

impl ResNetConfig {
    /// torchvision's `resnet50`.
    pub fn resnet50() -> Self {
        Self { side: 224, width: 64, blocks: RESNET50_BLOCKS.to_vec(), classes: 1000, stem: Stem::Imagenet }
    }

    /// ResNet50's blocks on CIFAR-10: the CIFAR stem and the widths divided by `divisor`
    /// (8: conv1 has 8 channels and the blocks output 32 to 256).
    pub fn cifar(divisor: usize) -> Self {
        Self { side: 32, width: 64 / divisor.clamp(1, 64), blocks: RESNET50_BLOCKS.to_vec(), classes: 10, stem: Stem::Cifar }
    }

    pub fn init(&self, device: &Device) -> ResNet {
        let w = self.width;
        let conv = |c_in: usize, c_out: usize, k: usize, stride: usize| {
            Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
                .with_bias(false)
                .init(device)
        };
        let bn = |c: usize| BatchNormConfig::new(c).init(device);
        let mut c_in = w;
        let mut stages: Vec<Vec<Bottleneck>> = Vec::new();
        for (s, &n) in self.blocks.iter().enumerate() {
            let mid = w << s;
            let out = 4 * mid;
            let blocks = (0..n)
                .map(|b| {
                    let stride = if b == 0 && s > 0 { 2 } else { 1 };
                    let downsample = (b == 0).then(|| Downsample { conv: conv(c_in, out, 1, stride), bn: bn(out) });
                    let block = Bottleneck {
                        conv1: conv(c_in, mid, 1, 1),
                        bn1: bn(mid),
                        conv2: conv(mid, mid, 3, stride),
                        bn2: bn(mid),
                        conv3: conv(mid, out, 1, 1),
                        bn3: bn(out),
                        downsample,
                    };
                    c_in = out;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        let (k, stride) = self.stem.conv1();
        ResNet {
            conv1: conv(3, w, k, stride),
            bn1: bn(w),
            maxpool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(c_in, self.classes).init(device),
            side: self.side,
            stem: self.stem,
        }
    }
}

/// The 1x1 projection of a block's input when its shape changes (torchvision: `downsample.0`,
/// `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    /// The block's output before its ReLU: the residual branch plus the (projected) input.
    fn pre_activation(&self, x: Tensor<4>) -> Tensor<4> {
        let h = batch_norm::forward_relu(&self.bn1, conv::forward(&self.conv1, x.clone()));
        let h = batch_norm::forward_relu(&self.bn2, conv::forward(&self.conv2, h));
        let h = batch_norm::forward(&self.bn3, conv::forward(&self.conv3, h));
        let identity = match &self.downsample {
            Some(d) => batch_norm::forward(&d.bn, conv::forward(&d.conv, x)),
            None => x,
        };
        h + identity
    }
}

/// Field names follow torchvision's state dict (`layer1.0.conv1.weight`, `fc.bias`, ...).
#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    maxpool: MaxPool2d,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
    avgpool: AdaptiveAvgPool2d,
    pub fc: Linear,
    #[module(skip)]
    side: usize,
    #[module(skip)]
    stem: Stem,
}

impl ResNet {
    fn stages(&self) -> [&Vec<Bottleneck>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// Studied layers as (Keras name, channels, side of the feature map).
    fn plan(&self) -> Vec<(String, usize, usize)> {
        let out = |c: &Conv2d| c.weight.val().dims()[0];
        let stride = |c: &Conv2d| c.stride[0];
        // conv1 carries its stride, then the ImageNet stem's max-pool (stride 2); a block's 3x3
        // conv carries its stride.
        let mut side = self.side.div_ceil(stride(&self.conv1));
        let mut plan = vec![("conv1".to_string(), out(&self.conv1), side)];
        if self.stem == Stem::Imagenet {
            side = side.div_ceil(2);
        }
        for (s, stage) in self.stages().iter().enumerate() {
            for (b, block) in stage.iter().enumerate() {
                side = side.div_ceil(stride(&block.conv2));
                plan.push((format!("{}{}", s + 2, (b'a' + b as u8) as char), out(&block.conv3), side));
            }
        }
        plan
    }

    pub fn input_side(&self) -> usize {
        self.side
    }

    /// A studied layer's tap: `[batch, channels, h, w]` in and out, the tap seeing
    /// `[batch, h * w, channels]`.
    fn tapped(i: usize, z: Tensor<4>, tap: &mut dyn Tap) -> Tensor<4> {
        if !tap.wants(i) {
            return burn::tensor::activation::relu(z);
        }
        let [b, ch, hh, ww] = z.dims();
        let z = tap.pre(i, crate::eval_ops::row_major(z.permute([0, 2, 3, 1])).reshape([b, hh * ww, ch]));
        let a = tap.post(i, burn::tensor::activation::relu(z));
        a.reshape([b, hh, ww, ch]).permute([0, 3, 1, 2])
    }
}

impl TappedModel for ResNet {
    type Suffix = LinearProbe;

    fn layers(&self) -> Vec<LayerInfo> {
        self.plan().into_iter().map(|(name, neurons, side)| LayerInfo { name, neurons, positions: side * side }).collect()
    }

    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2> {
        let [batch, _] = x.dims();
        let x = x.reshape([batch, 3, self.side, self.side]);
        let h = Self::tapped(0, batch_norm::forward(&self.bn1, conv::forward(&self.conv1, x)), tap);
        let mut h = match self.stem {
            Stem::Imagenet => self.maxpool.forward(h),
            Stem::Cifar => h,
        };
        let mut i = 1;
        for stage in self.stages() {
            for block in stage {
                h = Self::tapped(i, block.pre_activation(h), tap);
                i += 1;
            }
        }
        let [b, ch, _, _] = h.dims();
        self.fc.forward(self.avgpool.forward(h).reshape([b, ch])) // [batch, classes]
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        let conv = |c: &Conv2d| c.weight.val().flatten::<1>(0, 3);
        let mut out = vec![("conv1".to_string(), conv(&self.conv1))];
        for (s, stage) in self.stages().iter().enumerate() {
            for (b, block) in stage.iter().enumerate() {
                let name = format!("{}{}", s + 2, (b'a' + b as u8) as char);
                for (part, c) in [("1", &block.conv1), ("2", &block.conv2), ("3", &block.conv3)] {
                    out.push((format!("{name}.conv{part}"), conv(c)));
                }
            }
        }
        out.push(("fc".into(), self.fc.weight.val().flatten::<1>(0, 1)));
        out
    }

    /// A linear classifier probe (Alain & Bengio) on the layer: its channels pooled over positions
    /// (for a binarized layer, the fraction of positions inside the window), then a dense layer to
    /// the classes. Retraining ResNet50's later layers is not what the paper did on ImageNet.
    fn fresh_suffix(&self, layer: usize, device: &Device) -> LinearProbe {
        let (_, channels, _) = self.plan()[layer].clone();
        let classes = self.fc.weight.val().dims()[1];
        LinearProbe { linear: LinearConfig::new(channels, classes).init(device), positions: 1, channels }
    }

    /// The probe reads pooled channels: kept per sample, conv1's whole binary map would be
    /// 112 x 112 x 64 values.
    fn suffix_pools_positions(&self) -> bool {
        true
    }
}

/// Channels averaged over positions, then a dense layer; takes `[batch, positions * channels]`
/// (position-major), what experiment 4 feeds a suffix.
#[derive(Module, Debug)]
pub struct LinearProbe {
    pub linear: Linear,
    #[module(skip)]
    positions: usize,
    #[module(skip)]
    channels: usize,
}

impl TappedModel for LinearProbe {
    type Suffix = LinearProbe;

    fn layers(&self) -> Vec<LayerInfo> {
        Vec::new()
    }

    fn forward_tapped(&self, x: Tensor<2>, _tap: &mut dyn Tap) -> Tensor<2> {
        let [b, _] = x.dims();
        let pooled = x.reshape([b, self.positions, self.channels]).mean_dim(1).reshape([b, self.channels]);
        self.linear.forward(pooled)
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        vec![("probe".into(), self.linear.weight.val().flatten::<1>(0, 1))]
    }

    fn fresh_suffix(&self, _layer: usize, device: &Device) -> LinearProbe {
        let [channels, classes] = self.linear.weight.val().dims();
        LinearProbe { linear: LinearConfig::new(channels, classes).init(device), positions: self.positions, channels }
    }
}
