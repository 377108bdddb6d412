//! Every analysis experiment gives the same numbers whether the statistics subset's
//! pre-activations are captured at once or, beyond `ExperimentConfig::max_captured_values`,
//! streamed batch by batch (percentiles selected over several passes, quantizer means summed per
//! batch): the zero pre-activation's percentile rank, quantization before and after the
//! activation at every rank, and the sliding window at every centre, on a dense layer and on a
//! conv layer.
//!
//! Tolerances. Both paths pick the same percentile: the sort returns the value at the
//! nearest-rank index, the streamed selection is exact and returns the same value, so thresholds
//! and window bounds are compared bit for bit. A window's binary map then depends on nothing
//! else, and the retrained suffix is seeded: window accuracies are compared exactly. A
//! quantizer's two means are f32 sums in another order (one `sum_dim` over the subset versus one
//! per batch, added up), so they may differ by a few roundings of those sums (the bound is in
//! `side_mean_tolerance`); the test accuracies are counts over samples and are compared exactly: such a difference could
//! only change one if two logits were within a few ulps of each other, which these seeded
//! data sets do not have (an inexact match would show as a difference of at least 1/n). The zero
//! rank counts values below and equal to 0 (integers, exact in f32 at this size): exact too.
//!
//! Non-vacuity: the statistics subset is wrapped in a [`Source`] that counts how often it is
//! visited: the captured path runs it once, the streamed path several times (one pass per
//! selection round, one for the means), so each comparison is known to have compared the two
//! paths; the threshold sits exactly at the layer's value count (`samples * positions *
//! neurons` captures, one fewer streams). And the accuracies must vary across ranks and centres.

use std::cell::Cell;

use burn::tensor::{Device, Int, Tensor};
use hidden_neurons::data::{Dataset, InMemory, Normalization, Source, SourceError};
use hidden_neurons::experiments::{self, CentreAccuracy, ExperimentConfig, QuantizeAt, RankAccuracy};
use hidden_neurons::model::{Activation, CaptureTap, CnnConfig, MlpConfig, TappedModel, flatten_items};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::{TOY_NORM, labelled_by_model, random_draws, toy_samples, train_toy};

/// A source that counts its visits (each visit is one pass over the samples).
struct Counting<'a> {
    inner: InMemory<'a>,
    visits: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(data: &'a Dataset, norm: Normalization) -> Self {
        Self { inner: InMemory { data, norm }, visits: Cell::new(0) }
    }
}

impl Source for Counting<'_> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn visit(&self, batch: usize, device: &Device, f: &mut dyn FnMut(Tensor<2>, Tensor<1, Int>)) -> Result<(), SourceError> {
        self.visits.set(self.visits.get() + 1);
        self.inner.visit(batch, device, f)
    }
}

const SIDE: usize = 8;

/// `n` one-channel `SIDE` x `SIDE` images of three classes (see [`common::half_lit_images`]).
fn images(n: usize, add: usize) -> Dataset {
    common::half_lit_images(n, add, SIDE)
}

/// Pre-activations of `layer` on all of `data` (one forward pass), host rows `[items][neurons]`.
fn pre_by_hand(model: &impl TappedModel, layer: usize, data: &Dataset, device: &Device) -> Vec<Vec<f32>> {
    let (x, _) = data.range_batch(0, data.len(), TOY_NORM, device);
    let mut tap = CaptureTap::only(vec![layer]);
    model.forward_tapped(x, &mut tap);
    let z = flatten_items(tap.pre[layer].take().unwrap());
    let [_, neurons] = z.dims();
    read_f32(z).chunks(neurons).map(|r| r.to_vec()).collect()
}

/// The zero pre-activation's percentile rank by hand: `100 * (#below + #equal / 2) / rows` per
/// neuron, averaged over neurons.
fn zero_rank_by_hand(z: &[Vec<f32>]) -> f64 {
    let (rows, neurons) = (z.len(), z[0].len());
    let per_neuron = (0..neurons).map(|n| {
        let count: f64 = z.iter().map(|r| r[n]).map(|v| if v < 0.0 { 1.0 } else if v == 0.0 { 0.5 } else { 0.0 }).sum();
        100.0 * count / rows as f64
    });
    per_neuron.sum::<f64>() / neurons as f64
}

/// How far the captured and streamed side means (low, high per neuron) of thresholds `t` may
/// differ. Both paths form a side's mean as its f32 sum over its count, the low side's sum as
/// the sum of all minus the high side's; only the order of the additions differs (one reduction
/// over the subset, or one per batch added up). So the side sums agree up to a few roundings of
/// the neuron's total magnitude `sum |z|`: allowed 1e-6 of it (about 8 f32 ulps), divided by the
/// side's count (an empty side takes the other side's mean, hence its count). The low side at a
/// small rank has few samples and the cancellation in `all - high`: its mean may move by several
/// 1e-6 relative, which is why a flat relative tolerance would not do.
fn side_mean_tolerance(z: &[Vec<f32>], t: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let rows = z.len();
    t.iter()
        .enumerate()
        .map(|(n, &t)| {
            let magnitude: f64 = z.iter().map(|r| r[n].abs() as f64).sum();
            let high = z.iter().filter(|r| r[n] >= t).count();
            let low = rows - high;
            let per = |c: usize, other: usize| 1e-6 * magnitude / (if c > 0 { c } else { other }) as f64;
            (per(low, high), per(high, low))
        })
        .unzip()
}

fn not_all_equal(v: &[f64]) -> bool {
    v.iter().any(|&a| a != v[0])
}

/// Runs every experiment on each of `layers`, once with the statistics captured and once
/// streamed, and asserts that every number agrees and that the accuracies vary.
#[allow(clippy::too_many_arguments)]
fn every_experiment_agrees<M: TappedModel>(what: &str, model: &M, layers: &[usize], stats: &Dataset, train: &Dataset, test: &Dataset, base: &ExperimentConfig, device: &Device) {
    let test_source = InMemory { data: test, norm: TOY_NORM };
    let train_source = InMemory { data: train, norm: TOY_NORM };
    for &layer in layers {
        let info = &model.layers()[layer];
        let values = stats.len() * info.positions * info.neurons;
        let captured = ExperimentConfig { max_captured_values: values, ..base.clone() };
        let streamed = ExperimentConfig { max_captured_values: values - 1, ..base.clone() };
        let at = format!("{what} layer {layer} ({}, {values} values)", info.name);

        // Zero rank: always counted batch by batch; one batch holding the whole subset, small
        // batches, and the hand count agree exactly.
        let zero = |batch: usize| experiments::zero_percentile_rank_on(model, layer, &InMemory { data: stats, norm: TOY_NORM }, device, batch).unwrap();
        let (whole, batched, by_hand) = (zero(stats.len()), zero(base.batch_size), zero_rank_by_hand(&pre_by_hand(model, layer, stats, device)));
        assert!(base.batch_size < stats.len(), "{at}: the subset spans several batches");
        assert_eq!(whole, by_hand, "{at}: zero rank in one batch vs by hand");
        assert_eq!(batched, by_hand, "{at}: zero rank in batches of {} vs by hand", base.batch_size);
        assert!(by_hand > 0.0 && by_hand < 100.0, "{at}: a zero rank of {by_hand} would not test much");

        // The quantizers themselves: thresholds bit for bit; side means up to the order of their
        // f32 sums (see `side_mean_tolerance`).
        let fit = |cfg: &ExperimentConfig| {
            let source = Counting::new(stats, TOY_NORM);
            let q = experiments::quantizers(model, layer, &source, cfg, device).unwrap();
            (q, source.visits.get())
        };
        let ((q_captured, v_captured), (q_streamed, v_streamed)) = (fit(&captured), fit(&streamed));
        assert_eq!(v_captured, 1, "{at}: the captured path runs the subset once");
        assert!(v_streamed > 1, "{at}: the streamed path replays the subset ({v_streamed} visits)");
        assert_eq!(q_captured.len(), base.ranks.len());
        let z = pre_by_hand(model, layer, stats, device);
        let mut worst = 0.0f64;
        for (r, (a, b)) in base.ranks.iter().zip(q_captured.into_iter().zip(q_streamed)) {
            let t = read_f32(a.threshold);
            assert_eq!(t, read_f32(b.threshold), "{at}: rank {r}'s thresholds");
            let (low, high) = side_mean_tolerance(&z, &t);
            for (x, y, tol, side) in [(a.low, b.low, low, "low"), (a.high, b.high, high, "high")] {
                for ((x, y), tol) in read_f32(x).into_iter().zip(read_f32(y)).zip(tol) {
                    let d = (x - y).abs() as f64;
                    worst = worst.max(d / tol);
                    assert!(d <= tol, "{at}: rank {r}'s {side} side means {x} vs {y} (allowed {tol:e})");
                }
            }
        }
        println!("{at}: quantizer means differ by at most {worst:.3} of the allowance; statistics visited {v_captured} vs {v_streamed} times");

        // Experiment 3, both variants: every rank's accuracy and same-side share.
        for variant in [QuantizeAt::Pre, QuantizeAt::Post] {
            let run = |cfg: &ExperimentConfig| {
                let source = Counting::new(stats, TOY_NORM);
                let r: Vec<RankAccuracy> = experiments::quantization_on(model, layer, &source, &test_source, cfg, variant, device, || {}).unwrap();
                (r, source.visits.get())
            };
            let ((a, va), (b, vb)) = (run(&captured), run(&streamed));
            // Both variants keep no more than the rule allows: the post-activation one streams too.
            assert_eq!((va, vb > 1), (1, true), "{at}: {variant:?} took the captured path, then the streamed one ({va} vs {vb} visits)");
            assert_eq!(a.len(), base.ranks.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.rank, y.rank);
                assert_eq!(x.test_accuracy, y.test_accuracy, "{at}: {variant:?} accuracy at rank {}", x.rank);
                assert_eq!(x.same_side_share, y.same_side_share, "{at}: {variant:?} same-side share at rank {}", x.rank);
            }
            let accs: Vec<f64> = a.iter().map(|r| r.test_accuracy).collect();
            println!("{at}: {variant:?} accuracies by rank {accs:?}");
            assert!(not_all_equal(&accs), "{at}: {variant:?} accuracies must vary across ranks, or the comparison proves little: {accs:?}");
        }

        // Experiment 4: every centre's accuracy.
        let run = |cfg: &ExperimentConfig| {
            let source = Counting::new(stats, TOY_NORM);
            let r: Vec<CentreAccuracy> = experiments::sliding_window_on(model, layer, &source, &train_source, &test_source, cfg, device, || {}).unwrap();
            (r, source.visits.get())
        };
        let ((a, va), (b, vb)) = (run(&captured), run(&streamed));
        assert_eq!((va, vb > 1), (1, true), "{at}: the window bounds were captured, then streamed ({va} vs {vb} visits)");
        assert_eq!(a.len(), base.centres.len());
        let accs: Vec<f64> = a.iter().map(|c| c.test_accuracy).collect();
        println!("{at}: window accuracies by centre {accs:?} (captured) vs {:?} (streamed)", b.iter().map(|c| c.test_accuracy).collect::<Vec<_>>());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.center, y.center);
            assert_eq!(x.test_accuracy, y.test_accuracy, "{at}: window accuracy at centre {}", x.center);
        }
        assert!(not_all_equal(&accs), "{at}: window accuracies must vary across centres: {accs:?}");
    }
}

/// Ranks 0 and 100 (one-sided quantizers, the extremes' shortcut in the selection) and inner
/// ranks; windows at both open edges and inside.
fn config(seed: u64) -> ExperimentConfig {
    ExperimentConfig {
        ranks: vec![0.0, 10.0, 30.0, 50.0, 70.0, 90.0, 100.0],
        centres: vec![5.0, 25.0, 50.0, 75.0, 95.0],
        window_width: 10.0,
        retrain_epochs: 3,
        batch_size: 7,
        ..ExperimentConfig::paper(seed)
    }
}

#[test]
fn mlp_experiments_streamed_match_captured() {
    let _draws = random_draws();
    let started = std::time::Instant::now();
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(5);
    let mlp = MlpConfig { input: 5, hidden: vec![16, 16], classes: 3, activation: Activation::Relu, dropout: 0.0, first_index: 1, init: Default::default() }.init(&ad);
    let model = train_toy(mlp, &toy_samples(300, 37, 0, 255), 30, 16, &ad);
    let stats = toy_samples(80, 13, 7, 255);
    let train = labelled_by_model(&model, toy_samples(120, 37, 3, 255), &device);
    let test = labelled_by_model(&model, toy_samples(90, 11, 101, 255), &device);
    every_experiment_agrees("mlp", &model, &[0, 1], &stats, &train, &test, &config(3), &device);
    println!("mlp: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn cnn_experiments_streamed_match_captured() {
    let _draws = random_draws();
    let started = std::time::Instant::now();
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(7);
    let cnn = CnnConfig { channels: 1, side: SIDE, widths: vec![3, 4], classes: 3, activation: Activation::Relu, init: Default::default(), layers_per_stage: 1 }.init(&ad);
    let model = train_toy(cnn, &images(96, 0), 8, 16, &ad);
    let stats = images(24, 1);
    let train = labelled_by_model(&model, images(48, 2), &device);
    let test = labelled_by_model(&model, images(40, 3), &device);
    every_experiment_agrees("cnn", &model, &[0, 1], &stats, &train, &test, &config(4), &device);
    println!("cnn: {:.1} s", started.elapsed().as_secs_f64());
}
