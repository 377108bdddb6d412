//! The MNIST multi-layer perceptron of the paper: dense hidden layers, dropout 0.5, softmax
//! output (the softmax lives in the cross-entropy loss).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Activation, Init, LayerInfo, Tap, TappedModel};

/// Hidden widths of the paper preset's MNIST MLP.
pub const MNIST_WIDTHS: [usize; 2] = [512, 512];

/// Widths and activation of an MLP. The paper does not state its widths; 512-512 (the classic
/// Keras MNIST MLP) is our documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
    pub activation: Activation,
    pub dropout: f64,
    /// Index of the first hidden layer in the paper's naming (`dense{first_index}`); a suffix
    /// retrained after `dense1` starts at `dense2`.
    pub first_index: usize,
    #[serde(default)]
    pub init: Init,
}

impl MlpConfig {
    pub fn mnist(activation: Activation, hidden: Vec<usize>) -> Self {
        Self { input: crate::settings::MNIST_VALUES, hidden, classes: 10, activation, dropout: 0.5, first_index: 1, init: Init::Burn }
    }

    pub fn with_init(self, init: Init) -> Self {
        Self { init, ..self }
    }

    pub fn init(&self, device: &Device) -> Mlp {
        let mut widths = vec![self.input];
        widths.extend(&self.hidden);
        let hidden = widths.windows(2).map(|w| self.init.linear(w[0], w[1], device)).collect();
        let last = *widths.last().unwrap();
        Mlp {
            hidden,
            out: self.init.linear(last, self.classes, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            first_index: self.first_index,
            init: self.init,
        }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    out: Linear,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    first_index: usize,
    /// How a fresh suffix starts.
    #[module(skip)]
    init: Init,
}

impl Mlp {
    pub fn activation(&self) -> Activation {
        self.activation
    }

    fn width(linear: &Linear) -> [usize; 2] {
        linear.weight.val().dims()
    }

    /// Logits from hidden layer `layer`'s pre-activation `z` (`[batch, width_layer]`) on.
    fn from_layer(&self, layer: usize, mut z: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2> {
        let mut i = layer;
        loop {
            let a = if tap.wants(i) {
                let z = tap.pre(i, z.unsqueeze_dim(1)); // [batch, 1, width_i]
                tap.post(i, self.activation.apply(z)).squeeze_dim(1)
            } else {
                self.activation.apply(z)
            };
            let h = self.dropout.forward(a);
            i += 1;
            match self.hidden.get(i) {
                Some(linear) => z = linear.forward(h), // [batch, width_i]
                None => return self.out.forward(h),    // [batch, classes]
            }
        }
    }
}

impl TappedModel for Mlp {
    type Suffix = Mlp;

    fn layers(&self) -> Vec<LayerInfo> {
        self.hidden
            .iter()
            .enumerate()
            .map(|(i, l)| LayerInfo {
                name: format!("dense{}-{}", i + self.first_index, self.activation.suffix()),
                neurons: Self::width(l)[1],
                positions: 1,
            })
            .collect()
    }

    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2> {
        match self.hidden.first() {
            Some(first) => self.from_layer(0, first.forward(x), tap),
            None => self.out.forward(x),
        }
    }

    fn pre_activations(&self, layer: usize, x: Tensor<2>) -> Option<Tensor<3>> {
        let mut z = self.hidden.get(layer).map(|_| self.hidden[0].forward(x))?; // [batch, width_0]
        for linear in &self.hidden[1..=layer] {
            z = linear.forward(self.dropout.forward(self.activation.apply(z)));
        }
        Some(z.unsqueeze_dim(1)) // [batch, 1, width_layer]
    }

    fn forward_from(&self, layer: usize, z: Tensor<3>, tap: &mut dyn Tap) -> Option<Tensor<2>> {
        self.hidden.get(layer)?;
        Some(self.from_layer(layer, z.squeeze_dim(1), tap))
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        let flat = |l: &Linear| l.weight.val().flatten::<1>(0, 1);
        let mut out: Vec<(String, Tensor<1>)> = self.hidden.iter().enumerate().map(|(i, l)| (format!("dense{}", i + self.first_index), flat(l))).collect();
        out.push(("output".into(), flat(&self.out)));
        out
    }

    fn fresh_suffix(&self, layer: usize, device: &Device) -> Mlp {
        let widths: Vec<usize> = self.hidden.iter().map(|l| Self::width(l)[1]).collect();
        MlpConfig {
            input: widths[layer],
            hidden: widths[layer + 1..].to_vec(),
            classes: Self::width(&self.out)[1],
            activation: self.activation,
            dropout: self.dropout.prob,
            first_index: self.first_index + layer + 1,
            init: self.init,
        }
        .init(device)
    }
}
