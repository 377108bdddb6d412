//! A model whose family is chosen at run time (the page trains either the MLP or the small CNN
//! with the same session code).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{Cnn, LayerInfo, Mlp, Tap, TappedModel};

#[derive(Module, Debug)]
pub enum MlpOrCnn {
    Mlp(Mlp),
    Cnn(Cnn),
}

impl TappedModel for MlpOrCnn {
    type Suffix = MlpOrCnn;

    fn layers(&self) -> Vec<LayerInfo> {
        match self {
            Self::Mlp(m) => m.layers(),
            Self::Cnn(m) => m.layers(),
        }
    }

    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn Tap) -> Tensor<2> {
        match self {
            Self::Mlp(m) => m.forward_tapped(x, tap),
            Self::Cnn(m) => m.forward_tapped(x, tap),
        }
    }

    fn pre_activations(&self, layer: usize, x: Tensor<2>) -> Option<Tensor<3>> {
        match self {
            Self::Mlp(m) => m.pre_activations(layer, x),
            Self::Cnn(m) => m.pre_activations(layer, x),
        }
    }

    fn forward_from(&self, layer: usize, z: Tensor<3>, tap: &mut dyn Tap) -> Option<Tensor<2>> {
        match self {
            Self::Mlp(m) => m.forward_from(layer, z, tap),
            Self::Cnn(m) => m.forward_from(layer, z, tap),
        }
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        match self {
            Self::Mlp(m) => m.weight_layers(),
            Self::Cnn(m) => m.weight_layers(),
        }
    }

    fn fresh_suffix(&self, layer: usize, device: &Device) -> MlpOrCnn {
        match self {
            Self::Mlp(m) => Self::Mlp(m.fresh_suffix(layer, device)),
            Self::Cnn(m) => Self::Cnn(m.fresh_suffix(layer, device)),
        }
    }

    fn suffix_pools_positions(&self) -> bool {
        match self {
            Self::Mlp(m) => m.suffix_pools_positions(),
            Self::Cnn(m) => m.suffix_pools_positions(),
        }
    }
}

impl From<Mlp> for MlpOrCnn {
    fn from(m: Mlp) -> Self {
        Self::Mlp(m)
    }
}

impl From<Cnn> for MlpOrCnn {
    fn from(m: Cnn) -> Self {
        Self::Cnn(m)
    }
}
