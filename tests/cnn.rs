//! The CIFAR CNN behind the tapped-forward trait: layer names and shapes, probe gradients against
//! finite differences, per-sample gradients with batch-norm in inference mode, and the suffix
//! retrained by experiment 4.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::data::{Dataset, Normalization};
use hidden_neurons::model::{Activation, Cnn, CnnConfig, ProbeTap, TappedModel, flatten_items};
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet, position_choice};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::Nudge;

const SIDE: usize = 16;

fn tiny(activation: Activation, device: &Device) -> Cnn {
    device.seed(11);
    CnnConfig { channels: 3, side: SIDE, widths: vec![2, 3, 2, 4], classes: 5, activation, init: Default::default(), layers_per_stage: 3 }.init(device)
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

#[test]
fn per_position_signs_are_the_signs_of_each_activation_s_own_derivative() {
    let ad = Device::flex().autodiff();
    // Linear: the tiny ReLU network's narrow early layers pass no gradient at all.
    let model = tiny(Activation::None, &ad);
    let b = 3;
    let data = Dataset {
        features: 3 * SIDE * SIDE,
        images: (0..(b * 3 * SIDE * SIDE) as u64).map(|i| (i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 56) as u8).collect(),
        labels: (0..b as u8).collect(),
    };
    let norm = Normalization { channels: 3, mean: [0.5; 3], std: [0.25; 3] };
    let tracked = TrackedSet::new(&data, (0..b).collect(), norm, 2, &ad);
    let layers = model.layers();
    let mut rec = Recorder::new(RecordingMode::Tracked, layers.clone(), b, b, vec![vec![0]; layers.len()], &ad).with_positions(5, 7);
    rec.certainty_epsilon = 0.0;
    rec.record_tracked(&model, &tracked, 0);

    // By hand: each activation's own derivative, from a probe per (sample, position, channel).
    let frozen = model.valid().fork(&ad);
    let (x, _) = data.range_batch(0, b, norm, &ad);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..b as i64).collect::<Vec<_>>(), [b]), &ad);
    let mut tap = ProbeTap::per_position();
    let grads = CrossEntropyLossConfig::new().init(&ad).forward(frozen.forward_tapped(x, &mut tap), y).backward();
    let choice = position_choice(&layers, 5, 7);
    let (mut plus, mut minus, mut varied) = (0, 0, 0);
    for layer in [0, 5, 11] {
        let (p, n) = (layers[layer].positions, layers[layer].neurons);
        let g = read_f32(tap.position_probes[layer].as_ref().unwrap().grad(&grads).unwrap()); // [b, p, n]
        let (pos, neg, k) = rec.position_counts_of(layer).unwrap();
        assert_eq!(k, 5.min(p), "layer {layer}: positions per channel");
        let (pos, neg) = (read_f32(pos), read_f32(neg));
        assert_eq!(pos.len(), b * k * n);
        for c in 0..n {
            let mut at: Vec<i64> = (0..k).map(|j| choice[layer][j * n + c]).collect();
            at.sort_unstable();
            at.dedup();
            assert_eq!(at.len(), k, "layer {layer}, channel {c}: distinct positions");
        }
        let (cpos, cneg) = rec.counts(layer);
        let (cpos, cneg) = (read_f32(cpos), read_f32(cneg));
        for s in 0..b {
            for c in 0..n {
                let signs: Vec<bool> = (0..k).map(|j| g[(s * p + choice[layer][j * n + c] as usize) * n + c] > 0.0).collect();
                varied += signs.iter().any(|&x| x != signs[0]) as usize;
                for j in 0..k {
                    let v = g[(s * p + choice[layer][j * n + c] as usize) * n + c];
                    let row = (s * k + j) * n + c;
                    assert_eq!((pos[row], neg[row]), ((v > 0.0) as u8 as f32, (v < 0.0) as u8 as f32), "layer {layer} sample {s} channel {c} position #{j}");
                    plus += (v > 0.0) as usize;
                    minus += (v < 0.0) as usize;
                }
                // The per-channel count is the sign of the derivative summed over positions.
                let sum: f32 = (0..p).map(|q| g[(s * p + q) * n + c]).sum();
                if sum.abs() > 1e-6 {
                    assert_eq!((cpos[s * n + c], cneg[s * n + c]), ((sum > 0.0) as u8 as f32, (sum < 0.0) as u8 as f32), "layer {layer} sample {s} channel {c}: channel sign");
                }
            }
        }
    }
    assert!(plus > 10 && minus > 10, "both signs occur among the checked activations ({plus} +, {minus} -)");
    // Signs that differ between a channel's positions, or a wrong position could go unseen.
    assert!(varied > 5, "only {varied} (sample, channel) pairs have signs that vary over positions");
}

#[test]
fn the_pages_mnist_cnn_trains_behind_the_either_model() {
    use hidden_neurons::data::Split;
    use hidden_neurons::experiments::{self, ExperimentConfig, QuantizeAt};
    use hidden_neurons::model::{MlpConfig, MlpOrCnn};
    use hidden_neurons::settings::Footprint;
    use hidden_neurons::train::{adam, train_step};

    let cfg = CnnConfig::mnist_small(Activation::Relu);
    let layers: Vec<(String, usize, usize)> = cfg.conv_layers().into_iter().map(|c| (c.name, c.c_out, c.side)).collect();
    assert_eq!(layers, vec![("conv1-relu".into(), 8, 28), ("conv2-relu".into(), 16, 14), ("conv3-relu".into(), 32, 7)]);
    // Parameters: three 3x3 convs with bias and batch-norm, then the dense head on 32 channels.
    assert_eq!(Footprint::cnn(&cfg).params, (9 * 8 + 24) + (8 * 16 * 9 + 48) + (16 * 32 * 9 + 96) + 32 * 10 + 10);

    let ad = Device::flex().autodiff();
    ad.seed(3);
    let model: MlpOrCnn = cfg.init(&ad).into();
    let info = model.layers();
    assert_eq!(info.iter().map(|l| (l.neurons, l.positions)).collect::<Vec<_>>(), vec![(8, 784), (16, 196), (32, 49)]);
    let split = Split::synthetic("synthetic", 64, 32, 784, 1, 5);
    let mut optim = adam();
    let mut model = model;
    let idx: Vec<usize> = (0..32).collect();
    let mut losses = Vec::new();
    for _ in 0..8 {
        let (x, y) = split.train.batch(&idx, split.norm, &ad);
        let (m, loss, _) = train_step(model, &mut optim, 1e-2, x, y, None);
        model = m;
        losses.push(read_f32(loss)[0]);
    }
    assert!(losses[7] < 0.8 * losses[0], "the CNN does not learn one batch by heart: {losses:?}");
    // Experiment 3 runs on it through the same code as the MLP's (the suffix is built by the enum).
    let inner = model.valid();
    let exp = ExperimentConfig { stats_samples: 32, ..ExperimentConfig::browser(1) };
    let q = experiments::quantization(&inner, 2, &split.train, &split.test, split.norm, &exp, QuantizeAt::Pre, &Device::flex(), || {});
    assert_eq!(q.len(), exp.ranks.len());
    assert!(q.iter().all(|r| (0.0..=1.0).contains(&r.test_accuracy)));

    let mlp: MlpOrCnn = MlpConfig::mnist(Activation::Relu, vec![6, 5]).init(&Device::flex()).into();
    assert_eq!(mlp.layers().iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["dense1-relu", "dense2-relu"]);
}

/// Experiment 3 runs the layers before the quantized one once per batch and only the rest once
/// per rank: starting at a layer's pre-activations must give the whole forward's logits, for any
/// tap, on every studied layer of the CIFAR CNN (ReLU and linear), the page's CNN and an MLP.
#[test]
fn starting_at_a_layer_gives_the_whole_forward() {
    use hidden_neurons::model::{CaptureTap, MlpConfig, MlpOrCnn, ReplacePostTap, ReplaceTap, Tap};
    fn check<M: TappedModel>(what: &str, model: &M, x: Tensor<2>) {
        let plain = read_f32(model.forward(x.clone()));
        for layer in 0..model.layers().len() {
            let mut capture = CaptureTap::only(vec![layer]);
            model.forward_tapped(x.clone(), &mut capture);
            let z = model.pre_activations(layer, x.clone()).unwrap_or_else(|| panic!("{what}: splits at layer {layer}"));
            assert_eq!(read_f32(z.clone().flatten::<1>(0, 2)), read_f32(capture.pre[layer].take().unwrap().flatten::<1>(0, 2)), "{what} layer {layer}: pre-activations");
            let taps: Vec<(&str, Box<dyn Fn() -> Box<dyn Tap>>)> = vec![
                ("none", Box::new(|| Box::new(hidden_neurons::model::NoTap))),
                ("pre", Box::new(move || Box::new(ReplaceTap { layer, f: |z: Tensor<2>| z.mul_scalar(-0.7).add_scalar(0.3) }))),
                ("post", Box::new(move || Box::new(ReplacePostTap::new(layer, |z: Tensor<2>, a: Tensor<2>| a.mul_scalar(1.5) + z.mul_scalar(0.2))))),
            ];
            for (name, tap) in taps {
                let whole = read_f32(model.forward_tapped(x.clone(), tap().as_mut()));
                let from = read_f32(model.forward_from(layer, z.clone(), tap().as_mut()).expect("starts where it splits"));
                for (a, b) in whole.iter().zip(&from) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{what} layer {layer}, tap {name}: logits {a} vs {b}");
                }
                if name != "none" {
                    assert_ne!(whole, plain, "{what} layer {layer}: the {name} tap changes the logits, or this test proves little");
                }
            }
        }
    }
    let device = Device::flex();
    let (x, _) = inputs(6, &device);
    for activation in [Activation::Relu, Activation::None] {
        // Wider and shallower than `tiny`, whose untrained ReLUs leave every sample the same logits.
        device.seed(7);
        let cnn = CnnConfig { channels: 3, side: SIDE, widths: vec![6, 8, 6, 8], classes: 5, activation, init: Default::default(), layers_per_stage: 2 }.init(&device);
        check(&format!("cifar cnn {activation:?}"), &cnn, x.clone());
    }
    device.seed(5);
    let page: MlpOrCnn = CnnConfig::mnist_small(Activation::Relu).init(&device).into();
    let digits = Tensor::<2>::from_data(TensorData::new((0..4 * 784).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect::<Vec<_>>(), [4, 784]), &device);
    check("page cnn", &page, digits.clone());
    let mlp: MlpOrCnn = MlpConfig::mnist(Activation::Sigmoid, vec![7, 6, 5]).init(&device).into();
    check("mlp", &mlp, digits);
}
