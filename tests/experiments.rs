//! The test-time experiments against hand computations: each test here would fail if its
//! experiment computed the wrong thing (thresholds from the test set, windows in the wrong order,
//! closed edge windows, a wrong certainty boundary, zero signs put in a category).

use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::data::Dataset;
use hidden_neurons::experiments::{self, ExperimentConfig, open_ended, window_maps, window_thresholds};
use hidden_neurons::model::{Activation, CaptureTap, CnnConfig, ReplacePostTap, ReplaceTap, TappedModel, flatten_items};
use hidden_neurons::recording::uncertain_mask;
use hidden_neurons::stats::{class_low_fractions, read_f32, reference};

#[path = "common/mod.rs"]
mod common;
use common::{TOY_NORM, argmax, labelled_by_model, random_draws, tiny_model, toy_samples, trained_toy_mlp};

/// Host copy of `[rows, cols]`.
fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, cols] = t.dims();
    read_f32(t).chunks(cols).map(|r| r.to_vec()).collect()
}

/// Pre-activations of `layer` for all of `data`, on the host, one row per sample.
fn captured(model: &impl TappedModel, layer: usize, data: &Dataset, device: &Device) -> Vec<Vec<f32>> {
    let (x, _) = data.range_batch(0, data.len(), TOY_NORM, device);
    let mut tap = CaptureTap::only(vec![layer]);
    model.forward_tapped(x, &mut tap);
    rows(flatten_items(tap.pre[layer].take().unwrap()))
}

/// Experiment 3 by hand: thresholds and means from `stats`, each test pre-activation replaced on
/// the host, the rest of the forward pass unchanged, accuracy counted by hand.
fn quantized_accuracy_by_hand(model: &impl TappedModel, layer: usize, stats: &Dataset, test: &Dataset, rank: f64, device: &Device) -> f64 {
    let z = captured(model, layer, stats, device);
    let neurons = z[0].len();
    let thresholds: Vec<f32> = (0..neurons).map(|n| reference::percentile(&z, n, rank)).collect();
    let (x, _) = test.range_batch(0, test.len(), TOY_NORM, device);
    let replace = |t: Tensor<2>| {
        let q: Vec<f32> = rows(t)
            .iter()
            .flat_map(|row| row.iter().enumerate().map(|(n, &v)| reference::quantize(&z, n, thresholds[n], v)).collect::<Vec<_>>())
            .collect();
        Tensor::<2>::from_data(TensorData::new(q, [test.len(), neurons]), device)
    };
    accuracy_of(&rows(model.forward_tapped(x, &mut ReplaceTap { layer, f: replace })), &test.labels)
}

/// Share of `logits` rows whose largest entry is the label, counted by hand.
fn accuracy_of(logits: &[Vec<f32>], labels: &[u8]) -> f64 {
    logits.iter().zip(labels).filter(|&(l, &y)| argmax(l) == y as usize).count() as f64 / labels.len() as f64
}

#[test]
fn quantization_is_a_forward_pass_with_statistics_from_the_statistics_subset() {
    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let stats = toy_samples(80, 37, 0, 96);
    let test = labelled_by_model(&model, toy_samples(120, 11, 101, 255), &device);
    let cfg = ExperimentConfig { ranks: vec![10.0, 30.0, 50.0, 70.0, 90.0], batch_size: 7, ..ExperimentConfig::paper(1) };
    for layer in [0, 1] {
        let got = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, experiments::QuantizeAt::Pre, &device, || {});
        let from_stats: Vec<f64> = cfg.ranks.iter().map(|&r| quantized_accuracy_by_hand(&model, layer, &stats, &test, r, &device)).collect();
        let from_test: Vec<f64> = cfg.ranks.iter().map(|&r| quantized_accuracy_by_hand(&model, layer, &test, &test, r, &device)).collect();
        let got: Vec<f64> = got.iter().map(|r| r.test_accuracy).collect();
        assert_eq!(got, from_stats, "layer {layer}: the experiment's accuracies are a hand forward pass's");
        // Statistics too many to keep: percentiles selected and means summed batch by batch.
        let streamed = ExperimentConfig { max_captured_values: 0, ..cfg.clone() };
        let got = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &streamed, experiments::QuantizeAt::Pre, &device, || {});
        assert_eq!(got.iter().map(|r| r.test_accuracy).collect::<Vec<_>>(), from_stats, "layer {layer}, streamed statistics");
        let source = hidden_neurons::data::InMemory { data: &stats, norm: TOY_NORM };
        let fit = |c: &ExperimentConfig| experiments::quantizers(&model, layer, &source, c, &device).unwrap();
        for (a, b) in fit(&cfg).into_iter().zip(fit(&streamed)) {
            assert_eq!(read_f32(a.threshold), read_f32(b.threshold), "layer {layer}: thresholds");
            for (x, y) in [(a.low, b.low), (a.high, b.high)] {
                for (x, y) in read_f32(x).into_iter().zip(read_f32(y)) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + x.abs()), "layer {layer}: side means {x} vs {y}");
                }
            }
        }
        // The two fits must tell apart, or the line above could not catch test-set statistics.
        assert_ne!(from_stats, from_test, "layer {layer}: statistics from the test set would give other numbers");
        // A test subset (the page's CNN) is the first N test samples, cut inside a batch here.
        let head = test.head(45);
        let by_hand: Vec<f64> = cfg.ranks.iter().map(|&r| quantized_accuracy_by_hand(&model, layer, &stats, &head, r, &device)).collect();
        let limited = ExperimentConfig { test_samples: Some(45), ..cfg.clone() };
        let got = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &limited, experiments::QuantizeAt::Pre, &device, || {});
        assert_eq!(got.iter().map(|r| r.test_accuracy).collect::<Vec<_>>(), by_hand, "layer {layer}: the first 45 test samples");
        assert_ne!(by_hand, from_stats, "layer {layer}: the subset must change the numbers for this to test it");
    }
}

/// The post-activation variant by hand: sides split at the pre-activation's percentile of
/// `stats`, each test activation (ReLU) replaced by the mean ReLU activation of its side.
fn post_quantized_by_hand(model: &impl TappedModel, layer: usize, stats: &Dataset, test: &Dataset, rank: f64, device: &Device) -> (f64, f64) {
    let z = captured(model, layer, stats, device);
    let neurons = z[0].len();
    let thresholds: Vec<f32> = (0..neurons).map(|n| reference::percentile(&z, n, rank)).collect();
    let side_means = |n: usize, f: &dyn Fn(f32) -> f32| {
        let (hi, lo): (Vec<f32>, Vec<f32>) = z.iter().map(|r| r[n]).partition(|&v| v >= thresholds[n]);
        let mean = |v: &[f32]| v.iter().map(|&x| f(x) as f64).sum::<f64>() / v.len() as f64;
        match (hi.is_empty(), lo.is_empty()) {
            (false, false) => (mean(&lo), mean(&hi)),
            (true, _) => (mean(&lo), mean(&lo)),
            (_, true) => (mean(&hi), mean(&hi)),
        }
    };
    let relu_means: Vec<(f64, f64)> = (0..neurons).map(|n| side_means(n, &|v| v.max(0.0))).collect();
    let same_side = (0..neurons)
        .filter(|&n| {
            let (lo, hi) = side_means(n, &|v| v);
            (lo as f32 > 0.0) == (hi as f32 > 0.0)
        })
        .count() as f64
        / neurons as f64;
    let (x, _) = test.range_batch(0, test.len(), TOY_NORM, device);
    let replace = |zt: Tensor<2>, _a: Tensor<2>| {
        let q: Vec<f32> = rows(zt)
            .iter()
            .flat_map(|row| row.iter().enumerate().map(|(n, &v)| if v >= thresholds[n] { relu_means[n].1 as f32 } else { relu_means[n].0 as f32 }).collect::<Vec<_>>())
            .collect();
        Tensor::<2>::from_data(TensorData::new(q, [test.len(), neurons]), device)
    };
    (accuracy_of(&rows(model.forward_tapped(x, &mut ReplacePostTap::new(layer, replace))), &test.labels), same_side)
}

#[test]
fn post_activation_quantization_replaces_activations_by_their_side_s_mean_activation() {
    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let stats = toy_samples(80, 13, 7, 255);
    let test = labelled_by_model(&model, toy_samples(120, 11, 101, 255), &device);
    let cfg = ExperimentConfig { ranks: vec![10.0, 30.0, 50.0, 70.0, 90.0], batch_size: 7, ..ExperimentConfig::paper(1) };
    let mut differ = false;
    for layer in [0, 1] {
        let post = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, experiments::QuantizeAt::Post, &device, || {});
        let pre = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, experiments::QuantizeAt::Pre, &device, || {});
        for (i, &r) in cfg.ranks.iter().enumerate() {
            let (acc, same_side) = post_quantized_by_hand(&model, layer, &stats, &test, r, &device);
            assert_eq!(post[i].test_accuracy, acc, "layer {layer}, rank {r}: accuracy");
            // The share is a property of the pre-activation means, whichever variant ran.
            for got in [&post[i], &pre[i]] {
                assert!((got.same_side_share.unwrap() - same_side).abs() < 1e-6, "layer {layer}, rank {r}: same-side share {:?} != {same_side}", got.same_side_share);
            }
        }
        let accs = |v: &[experiments::RankAccuracy]| v.iter().map(|r| r.test_accuracy).collect::<Vec<_>>();
        differ |= accs(&post) != accs(&pre);
    }
    assert!(differ, "the two variants must differ somewhere, or this test could not tell them apart");
}

#[test]
fn window_maps_are_the_window_indicator_in_the_order_the_suffix_reads() {
    let _draws = random_draws();
    let device = Device::flex();
    // MLP: one position, the maps are the indicator of each neuron's window.
    let model = tiny_model(Activation::Sigmoid, &device);
    let stats = toy_samples(50, 37, 0, 255);
    let test = toy_samples(20, 11, 101, 255);
    let z_stats = captured(&model, 1, &stats, &device);
    let z_test = captured(&model, 1, &test, &device);
    let to_t = |z: &Vec<Vec<f32>>| Tensor::<2>::from_data(TensorData::new(z.concat(), [z.len(), z[0].len()]), &device);
    let centres = [5.0, 45.0, 95.0];
    let (lo, hi) = window_thresholds(to_t(&z_stats), &centres, 10.0);
    for (i, &c) in centres.iter().enumerate() {
        let (l, h) = (read_f32(lo.clone().narrow(0, i, 1)), read_f32(hi.clone().narrow(0, i, 1)));
        let maps = rows(window_maps(to_t(&z_test), lo.clone().narrow(0, i, 1), hi.clone().narrow(0, i, 1), test.len()));
        for (s, row) in z_test.iter().enumerate() {
            for (n, &v) in row.iter().enumerate() {
                let lo_n = if c - 5.0 <= 0.0 { f32::NEG_INFINITY } else { reference::percentile(&z_stats, n, c - 5.0) };
                let hi_n = if c + 5.0 >= 100.0 { f32::INFINITY } else { reference::percentile(&z_stats, n, c + 5.0) };
                assert_eq!((l[n], h[n]), (lo_n, hi_n), "centre {c}, neuron {n}: bounds");
                assert_eq!(maps[s][n], reference::window(v, lo_n, hi_n), "centre {c}, sample {s}, neuron {n}");
            }
        }
    }

    // CNN: one row per sample, position-major with the channel fastest. A map with a single 1
    // moves the suffix's first pre-activations only around that position, for that channel.
    let cnn = CnnConfig { channels: 3, side: 16, widths: vec![2, 3, 2, 4], classes: 5, activation: Activation::Relu, init: Default::default(), layers_per_stage: 3 }.init(&device);
    let layer = 0; // stage0layer0: 2 channels of 16x16; the next conv keeps the side.
    let info = &cnn.layers()[layer];
    let suffix = cnn.fresh_suffix(layer, &device);
    let first_pre = |map: Vec<f32>| {
        let x = Tensor::<2>::from_data(TensorData::new(map, [1, info.positions * info.neurons]), &device);
        let mut tap = CaptureTap::only(vec![0]);
        suffix.forward_tapped(x, &mut tap);
        rows(flatten_items(tap.pre[0].take().unwrap())) // [positions, channels]
    };
    // The maps of a conv layer: sample after sample, each position-major with the channel fastest.
    let images = Dataset { features: 3 * 16 * 16, images: (0..2 * 768).map(|i| ((i * 29) % 256) as u8).collect(), labels: vec![0, 1] };
    let (x, _) = images.range_batch(0, 2, TOY_NORM, &device);
    let mut tap = CaptureTap::only(vec![layer]);
    cnn.forward_tapped(x, &mut tap);
    let z = flatten_items(tap.pre[layer].take().unwrap()); // [2 * positions, channels]
    let (lo, hi) = window_thresholds(z.clone(), &[35.0], 10.0);
    let (lo_h, hi_h) = (read_f32(lo.clone()), read_f32(hi.clone()));
    let z_h = rows(z.clone());
    let maps = rows(window_maps(z, lo, hi, 2));
    for s in 0..2 {
        for p in 0..info.positions {
            for c in 0..info.neurons {
                let v = z_h[s * info.positions + p][c];
                assert_eq!(maps[s][p * info.neurons + c], reference::window(v, lo_h[c], hi_h[c]), "sample {s}, position {p}, channel {c}");
            }
        }
    }
    let base = first_pre(vec![0.0; info.positions * info.neurons]);
    let (y, x, c) = (5usize, 9usize, 1usize);
    let mut one = vec![0.0; info.positions * info.neurons];
    one[(y * 16 + x) * info.neurons + c] = 1.0;
    let moved = first_pre(one);
    let mut changed = Vec::new();
    for (p, (a, b)) in moved.iter().zip(&base).enumerate() {
        if a.iter().zip(b).any(|(u, v)| (u - v).abs() > 1e-6) {
            changed.push((p / 16, p % 16));
        }
    }
    assert!(!changed.is_empty(), "the single 1 reaches the suffix");
    for (py, px) in &changed {
        assert!(py.abs_diff(y) <= 1 && px.abs_diff(x) <= 1, "a 3x3 conv moves only the neighbours of ({y}, {x}), not ({py}, {px})");
    }

    // The suffix is freshly initialised: fed the model's own activations it does not reproduce
    // the model's logits, as it would with the trained weights.
    let mlp = tiny_model(Activation::Relu, &device);
    let (xs, _) = test.range_batch(0, test.len(), TOY_NORM, &device);
    let mut tap = CaptureTap::only(vec![0]);
    let logits = rows(mlp.forward_tapped(xs, &mut tap));
    let act = flatten_items(tap.pre[0].take().unwrap()).clamp_min(0.0);
    let fresh = rows(mlp.fresh_suffix(0, &device).forward(act));
    assert_ne!(logits, fresh);
}

#[test]
fn edge_windows_are_open_ended() {
    let device = Device::flex();
    let z = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1]), &device);
    let t = read_f32(open_ended(Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 4.0], [3, 1]), &device), &[0.0, 50.0, 100.0]));
    assert_eq!(t, vec![f32::NEG_INFINITY, 2.0, f32::INFINITY]);
    let (lo, hi) = window_thresholds(z, &[5.0, 95.0], 10.0);
    let below_min = Tensor::<2>::from_data(TensorData::new(vec![-100.0f32, 1.0, 2.5], [3, 1]), &device);
    let above_max = Tensor::<2>::from_data(TensorData::new(vec![100.0f32, 4.0, 2.5], [3, 1]), &device);
    let low = read_f32(window_maps(below_min, lo.clone().narrow(0, 0, 1), hi.clone().narrow(0, 0, 1), 3));
    assert_eq!(low, vec![1.0, 1.0, 0.0], "c = 5 holds values below the statistics' minimum");
    let high = read_f32(window_maps(above_max, lo.narrow(0, 1, 1), hi.narrow(0, 1, 1), 3));
    assert_eq!(high, vec![1.0, 1.0, 0.0], "c = 95 holds values above the statistics' maximum");
}

#[test]
fn certainty_rule_behaves_like_keras_clip() {
    let device = Device::flex();
    let mask = |logits: Vec<f32>, classes: usize, label: i64, eps: f32| {
        let l = Tensor::<2>::from_data(TensorData::new(logits, [1, classes]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![label], [1]), &device);
        read_f32(uncertain_mask(l, y, eps))[0]
    };
    assert_eq!(mask(vec![40.0, 0.0, 0.0], 3, 0, 1e-7), 0.0, "a large margin: probability 1 in f32, an exact zero gradient");
    assert_eq!(mask(vec![2.0, 0.0, 0.0], 3, 0, 1e-7), 1.0, "a small margin keeps its gradient");
    assert_eq!(mask(vec![0.0, 40.0, 0.0], 3, 0, 1e-7), 1.0, "certainly wrong is not certain");
    assert_eq!(mask(vec![40.0, 0.0, 0.0], 3, 0, 0.0), 1.0, "epsilon 0 turns the rule off");
    // The boundary: p = 0.5 exactly with epsilon 0.5 sits on Keras' clip bound, where the clip
    // still passes the gradient; just above it, it does not.
    assert_eq!(mask(vec![0.0, 0.0], 2, 0, 0.5), 1.0, "p = 1 - epsilon keeps its gradient");
    assert_eq!(mask(vec![0.01, 0.0], 2, 0, 0.5), 0.0, "p > 1 - epsilon is an exact zero");
}

#[test]
fn a_zero_average_sign_is_in_neither_category() {
    let device = Device::flex();
    // Class 0: one pair at exactly 0, one low (positive); class 1: one high, one at 0.
    let avg = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.5, -0.5, 0.0], [4, 1]), &device);
    let defined = avg.clone().abs().lower_elem(2.0);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1], [4]), &device);
    let f = class_low_fractions(avg, defined, labels, 3);
    assert_eq!(f[0], vec![Some(1.0)], "the zero pair is not counted as high");
    assert_eq!(f[1], vec![Some(0.0)]);
    assert_eq!(f[2], vec![None]);
}

/// Experiment 4 with statistics streamed (percentiles selected batch by batch, never captured)
/// gives the captured path's numbers, for a dense layer and for ResNet's pooled probe.
#[test]
fn sliding_window_with_streamed_statistics_matches_the_captured_path() {
    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let train = toy_samples(90, 37, 0, 96);
    let test = labelled_by_model(&model, toy_samples(60, 11, 101, 255), &device);
    let cfg = ExperimentConfig { centres: vec![5.0, 45.0, 95.0], stats_samples: 50, retrain_samples: 90, retrain_epochs: 2, batch_size: 16, ..ExperimentConfig::paper(3) };
    let streamed = ExperimentConfig { max_captured_values: 0, ..cfg.clone() };
    let run = |c: &ExperimentConfig| experiments::sliding_window(&model, 1, &train, &test, TOY_NORM, c, &device, || {});
    assert_eq!(run(&cfg), run(&streamed));

    use hidden_neurons::data::{InMemory, Normalization};
    let norm = Normalization { channels: 3, mean: [0.5; 3], std: [0.3; 3] };
    use hidden_neurons::model::{ResNetConfig, Stem};
    device.seed(4);
    let resnet = ResNetConfig { side: 32, width: 2, blocks: vec![1, 1, 1, 1], classes: 3, stem: Stem::Imagenet }.init(&device.clone().autodiff());
    let images = |n: usize, add: usize| Dataset {
        features: 3 * 32 * 32,
        images: (0..n * 3 * 32 * 32).map(|i| ((i * 31 + add * 7 + i / 97) % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
    };
    let (tr, te) = (images(24, 0), images(12, 5));
    let (tr, te) = (InMemory { data: &tr, norm }, InMemory { data: &te, norm });
    let cfg = ExperimentConfig { centres: vec![5.0, 55.0], retrain_epochs: 2, batch_size: 8, ..ExperimentConfig::paper(3) };
    let streamed = ExperimentConfig { max_captured_values: 0, ..cfg.clone() };
    for layer in [0, 3] {
        let run = |c: &ExperimentConfig| experiments::sliding_window_on(&resnet, layer, &tr, &tr, &te, c, &device, || {}).unwrap();
        assert_eq!(run(&cfg), run(&streamed), "resnet layer {layer}");
    }
}

#[test]
fn held_out_retraining_stops_when_the_held_out_loss_does() {
    use experiments::{EarlyStop, Observed::*, RetrainStop};
    let mut rule = EarlyStop::new(1);
    assert_eq!([1.0, 0.8, 0.9].map(|l| rule.observe(l)), [Best, Best, Stop]);
    let mut rule = EarlyStop::new(2);
    assert_eq!([1.0, 0.8, 0.9, 0.7, f64::NAN, 0.75].map(|l| rule.observe(l)), [Best, Best, Worse, Best, Worse, Stop]);
    // A tenth set aside, at least one row on each side.
    assert_eq!([90, 2, 1, 0].map(|n| RetrainStop::HELD_OUT.held_out_rows(n)), [9, 1, 0, 0]);
    assert_eq!(RetrainStop::Epochs.held_out_rows(90), 0);

    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let train = toy_samples(90, 37, 0, 96);
    let test = labelled_by_model(&model, toy_samples(60, 11, 101, 255), &device);
    let fixed = ExperimentConfig { centres: vec![5.0, 45.0, 95.0], stats_samples: 50, retrain_samples: 90, retrain_epochs: 200, batch_size: 16, ..ExperimentConfig::paper(3) };
    let held = ExperimentConfig { retrain_stop: RetrainStop::HELD_OUT, ..fixed.clone() };
    let run = |c: &ExperimentConfig| experiments::sliding_window(&model, 0, &train, &test, TOY_NORM, c, &device, || {});
    assert!(run(&fixed).iter().all(|c| c.retrain_epochs.is_none()), "a fixed budget trains all its epochs");
    let kept: Vec<usize> = run(&held).iter().map(|c| c.retrain_epochs.expect("the kept epoch")).collect();
    assert!(kept.iter().all(|&k| (1..=200).contains(&k)), "{kept:?}");
    assert!(kept.iter().any(|&k| k < 200), "81 rows overfit long before 200 epochs: {kept:?}");
}

/// The MLP without its split: every forward runs the whole network.
#[derive(burn::module::Module, Debug)]
struct Unsplit {
    inner: hidden_neurons::model::Mlp,
}

impl TappedModel for Unsplit {
    type Suffix = hidden_neurons::model::Mlp;

    fn layers(&self) -> Vec<hidden_neurons::model::LayerInfo> {
        self.inner.layers()
    }

    fn forward_tapped(&self, x: Tensor<2>, tap: &mut dyn hidden_neurons::model::Tap) -> Tensor<2> {
        self.inner.forward_tapped(x, tap)
    }

    fn weight_layers(&self) -> Vec<(String, Tensor<1>)> {
        self.inner.weight_layers()
    }

    fn fresh_suffix(&self, layer: usize, device: &Device) -> hidden_neurons::model::Mlp {
        self.inner.fresh_suffix(layer, device)
    }
}

/// Experiment 3 starts at the quantized layer where the model can (`forward_from`) and runs the
/// whole network where it cannot: both give the same accuracies, before and after the activation,
/// and one progress tick per rank, also when the test set ends in a short batch and there are
/// more ranks than batches.
#[test]
fn quantization_starting_at_the_layer_equals_the_whole_forward_and_ticks_once_per_rank() {
    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let unsplit = Unsplit { inner: model.clone() };
    assert!(unsplit.pre_activations(0, Tensor::zeros([1, 5], &device)).is_none(), "the wrapper has no split");
    let stats = toy_samples(80, 13, 7, 255);
    let test = labelled_by_model(&model, toy_samples(123, 11, 101, 255), &device);
    let cfg = ExperimentConfig { ranks: (0..=10).map(|i| i as f64 * 10.0).collect(), batch_size: 16, ..ExperimentConfig::paper(1) };
    for at in [experiments::QuantizeAt::Pre, experiments::QuantizeAt::Post] {
        for layer in [0, 1] {
            let mut ticks = (0, 0);
            let split = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, at, &device, || ticks.0 += 1);
            let whole = experiments::quantization(&unsplit, layer, &stats, &test, TOY_NORM, &cfg, at, &device, || ticks.1 += 1);
            assert_eq!(ticks, (cfg.ranks.len(), cfg.ranks.len()), "{at:?} layer {layer}: one tick per rank (123 test samples in 8 batches of at most 16)");
            assert_eq!(split, whole, "{at:?} layer {layer}: split and whole forwards");
            let accs: Vec<f64> = split.iter().map(|r| r.test_accuracy).collect();
            assert!(accs.iter().any(|&a| a != accs[0]), "{at:?} layer {layer}: accuracies vary across ranks: {accs:?}");
        }
    }
}

/// Both quantization variants in one pass (what the analysis runs) give each variant's own
/// results, and tick once per variant and rank, the variants in order.
#[test]
fn quantization_variants_in_one_pass_equal_each_variant_alone() {
    use experiments::QuantizeAt::{Post, Pre};
    let _draws = random_draws();
    let device = Device::flex();
    let model = trained_toy_mlp(Activation::Relu, &device);
    let stats = toy_samples(80, 13, 7, 255);
    let test = labelled_by_model(&model, toy_samples(120, 11, 101, 255), &device);
    let (stats, test) = (hidden_neurons::data::InMemory { data: &stats, norm: TOY_NORM }, hidden_neurons::data::InMemory { data: &test, norm: TOY_NORM });
    let cfg = ExperimentConfig { ranks: vec![10.0, 50.0, 90.0], batch_size: 7, ..ExperimentConfig::paper(1) };
    let mut variants_differ = false;
    for layer in [0, 1] {
        let mut ticks = Vec::new();
        let both = experiments::quantization_variants_on(&model, layer, &stats, &test, &cfg, &[Pre, Post], &device, |at| ticks.push(at)).unwrap();
        assert_eq!(ticks, [Pre, Pre, Pre, Post, Post, Post], "layer {layer}: ticks");
        variants_differ |= both[0].iter().zip(&both[1]).any(|(a, b)| a.test_accuracy != b.test_accuracy);
        let alone = |at| experiments::quantization_on(&model, layer, &stats, &test, &cfg, at, &device, || {}).unwrap();
        assert_eq!(both, [alone(Pre), alone(Post)], "layer {layer}");
    }
    assert!(variants_differ, "the variants must differ somewhere, or the comparison proves little");
}
