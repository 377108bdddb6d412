//! Experiment 3's post-activation variant (`QuantizeAt::Post`) end to end, against a computation
//! from scratch on the host: the layer's pre-activations and activations recorded by a tap of
//! this file, the two values fitted in plain Rust (each neuron's nearest-rank percentile of its
//! pre-activations sets the sides, each side's value is the mean activation of the statistics
//! samples on that side; an empty side takes the other side's mean), each test activation
//! replaced by a second tap of this file, the rest of the network run as is, the accuracy counted
//! by hand. Nothing of the library's percentile, quantizer or replacement code is used, so a
//! post variant fitted on the pre-activations, or applied at the pre-activation tap, or fitted on
//! the test set, gives other numbers.
//!
//! Two models: a ReLU MLP (pre- and post-activation differ wherever a pre-activation is
//! negative) and a sigmoid MLP. The sigmoid one is needed to catch replacement values injected at
//! the pre-activation tap: the ReLU of a mean of ReLU outputs is that mean, so under ReLU that
//! mistake changes nothing.
//!
//! Accuracies are compared exactly: they are counts over the test set; the host means are f64
//! rounded to f32 while the library's are f32 quotients, a difference of an ulp or so, which
//! could change a prediction only if two logits were within a few ulps, and these seeded data do
//! not have such a tie (a mismatch would be at least 1/n).

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::data::Dataset;
use hidden_neurons::experiments::{self, ExperimentConfig, QuantizeAt, RankAccuracy};
use hidden_neurons::model::{Activation, Mlp, Tap, TappedModel};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::{TOY_NORM, argmax, labelled_by_model, random_draws, toy_samples, trained_toy_mlp};

/// Share of samples whose largest logit is their label.
fn accuracy(logits: Tensor<2>, labels: &[u8]) -> f64 {
    let [_, classes] = logits.dims();
    let hits = read_f32(logits).chunks(classes).zip(labels).filter(|&(l, &y)| argmax(l) == y as usize).count();
    hits as f64 / labels.len() as f64
}

/// Records one layer's pre-activation and activation, row-major `[items, neurons]` on the host.
struct Record {
    layer: usize,
    pre: Vec<f32>,
    post: Vec<f32>,
    neurons: usize,
}

impl Tap for Record {
    fn wants(&self, layer: usize) -> bool {
        layer == self.layer
    }
    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        if layer == self.layer {
            self.neurons = z.dims()[2];
            self.pre = read_f32(z.clone());
        }
        z
    }
    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        if layer == self.layer {
            self.post = read_f32(a.clone());
        }
        a
    }
}

/// One layer's values on all of `data`, in one forward pass.
fn record(model: &Mlp, layer: usize, data: &Dataset, device: &Device) -> Record {
    let (x, _) = data.range_batch(0, data.len(), TOY_NORM, device);
    let mut tap = Record { layer, pre: Vec::new(), post: Vec::new(), neurons: 0 };
    model.forward_tapped(x, &mut tap);
    assert_eq!(tap.pre.len(), data.len() * tap.neurons);
    assert_eq!(tap.post.len(), tap.pre.len());
    tap
}

/// Per neuron: the threshold and the low and high values.
struct HostQuantizer {
    threshold: Vec<f32>,
    low: Vec<f32>,
    high: Vec<f32>,
}

/// Fits the post-activation quantizer at percentile rank `rank` from the recorded statistics: the
/// threshold is the value at sorted index `floor(rank / 100 * (S - 1) + 0.5)` of the neuron's `S`
/// pre-activations ("nearest rank"); a sample is on the high side when its pre-activation is at
/// or above it; each side's value is the f64 mean of its samples' activations.
fn fit_post(stats: &Record, rank: f64) -> HostQuantizer {
    let n = stats.neurons;
    let rows = stats.pre.len() / n;
    let mut q = HostQuantizer { threshold: Vec::new(), low: Vec::new(), high: Vec::new() };
    for neuron in 0..n {
        let z: Vec<f32> = (0..rows).map(|r| stats.pre[r * n + neuron]).collect();
        let a: Vec<f32> = (0..rows).map(|r| stats.post[r * n + neuron]).collect();
        let mut sorted = z.clone();
        sorted.sort_by(f32::total_cmp);
        let index = ((rank / 100.0 * (rows - 1) as f64 + 0.5).floor() as usize).min(rows - 1);
        let t = sorted[index];
        let (mut high, mut low) = ((0.0f64, 0usize), (0.0f64, 0usize));
        for (&zi, &ai) in z.iter().zip(&a) {
            let side = if zi >= t { &mut high } else { &mut low };
            side.0 += ai as f64;
            side.1 += 1;
        }
        let mean = |(s, c): (f64, usize)| s / c as f64;
        let (h, l) = match (high.1, low.1) {
            (0, _) => (mean(low), mean(low)),
            (_, 0) => (mean(high), mean(high)),
            _ => (mean(high), mean(low)),
        };
        q.threshold.push(t);
        q.high.push(h as f32);
        q.low.push(l as f32);
    }
    q
}

/// Replaces one layer's activation, side chosen by the pre-activation seen just before.
struct ReplaceActivation<'a> {
    layer: usize,
    q: &'a HostQuantizer,
    z: Option<Vec<f32>>,
}

impl Tap for ReplaceActivation<'_> {
    fn wants(&self, layer: usize) -> bool {
        layer == self.layer
    }
    fn pre(&mut self, layer: usize, z: Tensor<3>) -> Tensor<3> {
        if layer == self.layer {
            self.z = Some(read_f32(z.clone()));
        }
        z
    }
    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        if layer != self.layer {
            return a;
        }
        let dims = a.dims();
        let z = self.z.take().expect("the pre-activation comes first");
        let n = dims[2];
        let q: Vec<f32> = z.iter().enumerate().map(|(i, &v)| if v >= self.q.threshold[i % n] { self.q.high[i % n] } else { self.q.low[i % n] }).collect();
        Tensor::from_data(TensorData::new(q, dims), &a.device())
    }
}

/// Test accuracy with `layer`'s activations replaced by `q`'s values.
fn quantized_accuracy(model: &Mlp, layer: usize, q: &HostQuantizer, test: &Dataset, device: &Device) -> f64 {
    let (x, _) = test.range_batch(0, test.len(), TOY_NORM, device);
    accuracy(model.forward_tapped(x, &mut ReplaceActivation { layer, q, z: None }), &test.labels)
}

fn accuracies(v: &[RankAccuracy]) -> Vec<f64> {
    v.iter().map(|r| r.test_accuracy).collect()
}

/// The library's post-activation accuracies equal the host computation's at every rank of both
/// layers, differ from the pre-activation variant's somewhere, and the host values are the
/// activation of the pre-activations (so the test exercises an activation that changes values).
fn post_matches_host(activation: Activation) {
    let _draws = random_draws();
    let started = std::time::Instant::now();
    let device = Device::flex();
    let model = trained_toy_mlp(activation, &device);
    let stats = toy_samples(80, 13, 7, 255);
    let test = labelled_by_model(&model, toy_samples(120, 11, 101, 255), &device);
    let cfg = ExperimentConfig { ranks: vec![0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 100.0], batch_size: 7, ..ExperimentConfig::paper(1) };
    let mut post_differs_from_pre = false;
    for layer in [0, 1] {
        let recorded = record(&model, layer, &stats, &device);
        // The activation really is the activation function of the pre-activation, and changes it.
        let f = |z: f32| match activation {
            Activation::Relu => z.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Activation::None => z,
        };
        for (&z, &a) in recorded.pre.iter().zip(&recorded.post) {
            assert!((f(z) - a).abs() <= 1e-6, "layer {layer}: activation {a} of {z}");
        }
        let changed = recorded.pre.iter().zip(&recorded.post).filter(|(z, a)| z != a).count();
        assert!(changed * 10 >= recorded.pre.len(), "layer {layer}: only {changed} of {} values change under the activation", recorded.pre.len());

        let post = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, QuantizeAt::Post, &device, || {});
        let pre = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &cfg, QuantizeAt::Pre, &device, || {});
        let by_hand: Vec<f64> = cfg.ranks.iter().map(|&r| quantized_accuracy(&model, layer, &fit_post(&recorded, r), &test, &device)).collect();
        println!("{activation:?} layer {layer}: post {:?}, by hand {by_hand:?}, pre {:?}", accuracies(&post), accuracies(&pre));
        assert_eq!(post.iter().map(|r| r.rank).collect::<Vec<_>>(), cfg.ranks);
        assert_eq!(accuracies(&post), by_hand, "{activation:?} layer {layer}: post-activation accuracies by rank {:?}", cfg.ranks);
        assert!(by_hand.iter().any(|&a| a != by_hand[0]), "{activation:?} layer {layer}: accuracies vary across ranks");
        // Statistics too many to keep at once: the sides' activation means summed batch by batch.
        let streamed = ExperimentConfig { max_captured_values: 0, ..cfg.clone() };
        let post_streamed = experiments::quantization(&model, layer, &stats, &test, TOY_NORM, &streamed, QuantizeAt::Post, &device, || {});
        assert_eq!(accuracies(&post_streamed), by_hand, "{activation:?} layer {layer}: streamed post-activation accuracies by rank {:?}", cfg.ranks);
        post_differs_from_pre |= accuracies(&post) != accuracies(&pre);
    }
    assert!(post_differs_from_pre, "{activation:?}: post and pre variants must differ at some rank");
    println!("{activation:?}: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn post_quantization_of_a_relu_mlp_matches_a_host_computation() {
    post_matches_host(Activation::Relu);
}

#[test]
fn post_quantization_of_a_sigmoid_mlp_matches_a_host_computation() {
    post_matches_host(Activation::Sigmoid);
}
