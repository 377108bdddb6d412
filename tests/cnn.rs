//! The CIFAR CNN behind the tapped-forward trait: layer names and shapes, probe gradients against
//! finite differences, per-sample gradients with batch-norm in inference mode, and the suffix
//! retrained by experiment 4.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::model::{Activation, Cnn, CnnConfig, ProbeTap, TappedModel, flatten_items};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::Nudge;

const SIDE: usize = 16;

fn tiny(activation: Activation, device: &Device) -> Cnn {
    device.seed(11);
    CnnConfig { channels: 3, side: SIDE, widths: vec![2, 3, 2, 4], classes: 5, activation, init: Default::default() }.init(device)
}

fn inputs(batch: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let n = batch * 3 * SIDE * SIDE;
    let x: Vec<f32> = (0..n).map(|i| (((i * 37) % 101) as f32 - 50.0) / 40.0).collect();
    let y: Vec<i64> = (0..batch as i64).map(|i| i % 5).collect();
    (Tensor::from_data(TensorData::new(x, [batch, 3 * SIDE * SIDE]), device), Tensor::from_data(TensorData::new(y, [batch]), device))
}

#[test]
fn layers_are_named_and_shaped_like_the_paper() {
    let model = tiny(Activation::Relu, &Device::flex());
    let layers = model.layers();
    assert_eq!(layers.len(), 12);
    assert_eq!(layers[0].name, "stage0layer0-relu");
    assert_eq!(layers[11].name, "stage3layer2-relu");
    assert_eq!((layers[0].neurons, layers[0].positions), (2, 256));
    assert_eq!((layers[3].neurons, layers[3].positions), (3, 64));
    assert_eq!((layers[11].neurons, layers[11].positions), (4, 4));
    let linear = tiny(Activation::None, &Device::flex());
    assert_eq!(linear.layers()[5].name, "stage1layer2-linear");

    let mut tap = ProbeTap::default();
    let (x, _) = inputs(2, &Device::flex().autodiff());
    let ad = Device::flex().autodiff();
    let logits = tiny(Activation::Relu, &ad).forward_tapped(x, &mut tap);
    assert_eq!(logits.dims(), [2, 5]);
    assert_eq!(tap.pre[4].as_ref().unwrap().dims(), [2, 64, 3]);
    assert_eq!(tap.probes[11].as_ref().unwrap().dims(), [2, 4]);
}

#[test]
fn conv_probe_gradient_matches_finite_differences() {
    for activation in [Activation::None, Activation::Relu] {
        probe_gradient_matches_finite_differences(activation);
    }
}

fn probe_gradient_matches_finite_differences(activation: Activation) {
    let ad = Device::flex().autodiff();
    // Inference-mode batch-norm (what recording uses) on the autodiff device.
    let model = tiny(activation, &ad).valid().fork(&ad);
    let (x, y) = inputs(2, &ad);
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let mut tap = ProbeTap::default();
    let loss = ce.forward(model.forward_tapped(x.clone(), &mut tap), y.clone());
    let grads = loss.backward();
    let plain = model.valid();
    let (xp, yp) = (x.inner(), y.inner());
    let loss_at = |mut n: Nudge| read_f32(ce.forward(plain.forward_tapped(xp.clone(), &mut n), yp.clone()))[0];
    let eps = 1e-2;
    let mut largest = 0.0f32;
    for layer in [0, 5, 11] {
        let g = read_f32(tap.probes[layer].as_ref().unwrap().grad(&grads).unwrap());
        let neurons = model.layers()[layer].neurons;
        for sample in 0..2 {
            for neuron in 0..neurons {
                let fd = (loss_at(Nudge { layer, sample, neuron, by: eps }) - loss_at(Nudge { layer, sample, neuron, by: -eps })) / (2.0 * eps);
                let ad = g[sample * neurons + neuron];
                assert!((fd - ad).abs() < 1e-3 + 1e-2 * ad.abs(), "{activation:?} layer {layer} [{sample},{neuron}]: AD {ad} vs FD {fd}");
                largest = largest.max(ad.abs());
            }
        }
    }
    // Gradients near zero would pass any comparison: the checked ones must be well above the
    // tolerance.
    assert!(largest > 0.05, "{activation:?}: the largest checked gradient is only {largest}");
}

#[test]
fn inference_mode_batch_norm_keeps_sample_gradients_apart() {
    let ad = Device::flex().autodiff();
    let training = tiny(Activation::None, &ad);
    let model = training.valid().fork(&ad);
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let grad_of = |model: &Cnn, x: Tensor<2>, y: Tensor<1, Int>| {
        let mut tap = ProbeTap::default();
        let grads = ce.forward(model.forward_tapped(x, &mut tap), y).backward();
        read_f32(tap.probes[6].as_ref().unwrap().grad(&grads).unwrap())
    };
    let (x, y) = inputs(2, &ad);
    let changed = x.clone().slice_assign([1..2, 0..3 * SIDE * SIDE], Tensor::ones([1, 3 * SIDE * SIDE], &ad));
    let n = model.layers()[6].neurons;
    let a = grad_of(&model, x.clone(), y.clone());
    let b = grad_of(&model, changed.clone(), y.clone());
    assert_eq!(&a[..n], &b[..n], "inference mode: sample 0 does not see sample 1");
    assert_ne!(&a[n..], &b[n..]);
    // Training-mode batch-norm (batch statistics) couples them: why recording avoids it.
    let a = grad_of(&training, x, y.clone());
    let b = grad_of(&training, changed, y);
    assert_ne!(&a[..n], &b[..n], "training mode: batch statistics couple the samples");
}

#[test]
fn suffix_takes_a_binarized_layer_per_sample() {
    let device = Device::flex();
    let model = tiny(Activation::Relu, &device);
    for layer in [0, 2, 5, 11] {
        let info = &model.layers()[layer];
        let suffix = model.fresh_suffix(layer, &device);
        assert_eq!(suffix.layers().len(), 11 - layer);
        let x = Tensor::<2>::ones([3, info.positions * info.neurons], &device);
        assert_eq!(suffix.forward(x).dims(), [3, 5], "after layer {layer}");
    }
    // A captured layer flattened per sample is exactly what the suffix reads.
    let mut tap = hidden_neurons::model::CaptureTap::only(vec![2]);
    let (x, _) = inputs(2, &device);
    model.forward_tapped(x, &mut tap);
    let z = flatten_items(tap.pre[2].take().unwrap());
    assert_eq!(z.dims(), [2 * 256, 2]);
}
