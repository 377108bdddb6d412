//! Test-time experiments 3, 4 and 5 on a trained model: two-value quantization, sliding-window
//! binarization with retraining of the later layers, and classes versus categories.

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{Batches, Dataset, Normalization, epoch_order};
use crate::model::{CaptureTap, ReplacePostTap, ReplaceTap, TappedModel, flatten_items};
use crate::stats::{TwoValueQuantizer, binarize_window, percentiles, read_f32, zero_percentile_ranks};
use crate::train::{accuracy_with, adam, correct_count, train_step};

/// Settings of the test-time experiments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Training samples whose pre-activations define percentiles, thresholds and means.
    pub stats_samples: usize,
    /// Percentile ranks of experiment 3.
    pub ranks: Vec<f64>,
    /// Window centres of experiment 4.
    pub centres: Vec<f64>,
    /// Window width in percentile ranks.
    pub window_width: f64,
    /// Training samples used to retrain the layers after a binarized one.
    pub retrain_samples: usize,
    pub retrain_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

impl ExperimentConfig {
    pub fn paper(seed: u64) -> Self {
        Self {
            stats_samples: 10_000,
            ranks: (0..=10).map(|i| i as f64 * 10.0).collect(),
            centres: (1..=19).map(|i| i as f64 * 5.0).collect(),
            window_width: 10.0,
            retrain_samples: 60_000,
            retrain_epochs: 3,
            batch_size: 128,
            learning_rate: 1e-3,
            seed,
        }
    }

    pub fn fast(seed: u64) -> Self {
        Self { stats_samples: 5_000, retrain_samples: 20_000, retrain_epochs: 1, ..Self::paper(seed) }
    }

    /// In a browser tab: every other window centre and a smaller retraining set, so that the
    /// analysis of both MLP layers takes about half a minute (28 s in headless Chromium on two
    /// CPU cores).
    pub fn browser(seed: u64) -> Self {
        Self {
            stats_samples: 2_000,
            retrain_samples: 5_000,
            retrain_epochs: 1,
            centres: (0..10).map(|i| 5.0 + 10.0 * i as f64).collect(),
            ..Self::paper(seed)
        }
    }

    /// Conv layers have a value per position: fewer samples give as many values.
    pub fn cifar_paper(seed: u64) -> Self {
        Self { stats_samples: 2_000, retrain_samples: 10_000, retrain_epochs: 3, ..Self::paper(seed) }
    }

    /// Retraining the conv layers after stage0layer0 dominates the cost on a CPU: every other
    /// window centre (5, 15, ..., 95).
    pub fn cifar_fast(seed: u64) -> Self {
        Self {
            stats_samples: 500,
            retrain_samples: 1_000,
            retrain_epochs: 1,
            centres: (0..10).map(|i| 5.0 + 10.0 * i as f64).collect(),
            ..Self::paper(seed)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankAccuracy {
    pub rank: f64,
    #[serde(with = "crate::json::opt_f64")]
    pub test_accuracy: f64,
    /// Share of the layer's neurons whose two quantized values lie on the same side of 0 (see
    /// [`TwoValueQuantizer::same_side_share`]); absent where not measured (older runs, the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_side_share: Option<f64>,
}

/// The entry of experiment 3's results at `rank`, if that rank ran.
pub fn at_rank(results: &[RankAccuracy], rank: f64) -> Option<&RankAccuracy> {
    results.iter().find(|q| (q.rank - rank).abs() < 1e-9)
}

/// Where experiment 3 puts its two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantizeAt {
    /// The paper's: each pre-activation replaced by its side's mean pre-activation, then the
    /// activation function applied.
    Pre,
    /// Each activation replaced by its side's mean activation (sides still split at the
    /// pre-activation's percentile): what the next layer would see if the neuron really
    /// answered with one of two values.
    Post,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentreAccuracy {
    pub center: f64,
    #[serde(with = "crate::json::opt_f64")]
    pub test_accuracy: f64,
}

/// Pre-activations `[samples * positions, neurons]` of studied layer `layer` for all of `data`,
/// on the model's inner device (dropout off, batch-norm in inference mode).
pub fn capture_pre<M: TappedModel>(model: &M, layer: usize, data: &Dataset, norm: Normalization, device: &Device, batch: usize) -> Tensor<2> {
    capture(model, layer, data, norm, device, batch, false).0
}

/// Pre-activations and, when `with_post`, activations (`[samples * positions, neurons]` each).
fn capture<M: TappedModel>(model: &M, layer: usize, data: &Dataset, norm: Normalization, device: &Device, batch: usize, with_post: bool) -> (Tensor<2>, Option<Tensor<2>>) {
    let valid = model.valid();
    let inner = device.clone().inner();
    let (pre, post): (Vec<Tensor<2>>, Vec<Option<Tensor<2>>>) = (0..data.len())
        .step_by(batch.max(1))
        .map(|start| {
            let (x, _) = data.range_batch(start, start + batch, norm, &inner);
            let tap = CaptureTap::only(vec![layer]);
            let mut tap = if with_post { tap.with_post() } else { tap };
            valid.forward_tapped(x, &mut tap);
            let post = tap.post.as_mut().and_then(|p| p.get_mut(layer)?.take()).map(flatten_items);
            (flatten_items(tap.pre[layer].take().expect("layer captured")), post)
        })
        .unzip();
    let post = post.into_iter().collect::<Option<Vec<_>>>().filter(|_| with_post).map(|p| Tensor::cat(p, 0));
    (Tensor::cat(pre, 0), post)
}

/// Experiment 3: test accuracy with layer `layer` quantized to two values at each rank, before
/// or after the activation function, and each rank's share of neurons whose two values lie on
/// the same side of 0.
#[allow(clippy::too_many_arguments)]
pub fn quantization<M: TappedModel>(
    model: &M,
    layer: usize,
    stats_set: &Dataset,
    test: &Dataset,
    norm: Normalization,
    cfg: &ExperimentConfig,
    at: QuantizeAt,
    device: &Device,
    mut tick: impl FnMut(),
) -> Vec<RankAccuracy> {
    let (z, a) = capture(model, layer, stats_set, norm, device, cfg.batch_size, at == QuantizeAt::Post);
    let thresholds = percentiles(z.clone(), &cfg.ranks); // [ranks, N]
    let valid = model.valid();
    let inner = device.clone().inner();
    cfg.ranks
        .iter()
        .enumerate()
        .map(|(i, &rank)| {
            let t = thresholds.clone().narrow(0, i, 1);
            let pre = TwoValueQuantizer::fit(z.clone(), t.clone());
            // A property of the pre-activation means, whichever variant runs.
            let same_side = read_f32(pre.same_side_share()).first().map(|&s| s as f64);
            let q = match &a {
                Some(a) => TwoValueQuantizer::fit_values(z.clone(), a.clone(), t),
                None => pre,
            };
            let acc = match at {
                QuantizeAt::Pre => accuracy_with(test, norm, &inner, cfg.batch_size, |x| valid.forward_tapped(x, &mut ReplaceTap { layer, f: |z| q.apply(z) })),
                QuantizeAt::Post => accuracy_with(test, norm, &inner, cfg.batch_size, |x| valid.forward_tapped(x, &mut ReplacePostTap::new(layer, |z, _| q.apply(z)))),
            };
            tick();
            RankAccuracy { rank, test_accuracy: acc, same_side_share: same_side }
        })
        .collect()
}

/// Table 1: the zero pre-activation's percentile rank, averaged over the layer's neurons.
pub fn zero_percentile_rank<M: TappedModel>(model: &M, layer: usize, stats_set: &Dataset, norm: Normalization, device: &Device, batch: usize) -> f64 {
    let ranks = zero_percentile_ranks(capture_pre(model, layer, stats_set, norm, device, batch));
    ranks.iter().sum::<f64>() / ranks.len().max(1) as f64
}

/// Experiment 4: binarize layer `layer` with a window of percentile ranks around each centre,
/// retrain freshly initialised later layers on the binary maps, report test accuracy.
#[allow(clippy::too_many_arguments)]
pub fn sliding_window<M: TappedModel>(
    model: &M,
    layer: usize,
    train: &Dataset,
    test: &Dataset,
    norm: Normalization,
    cfg: &ExperimentConfig,
    device: &Device,
    mut tick: impl FnMut(),
) -> Vec<CentreAccuracy> {
    let retrain = train.head(cfg.retrain_samples);
    let z_stats = capture_pre(model, layer, &train.head(cfg.stats_samples), norm, device, cfg.batch_size);
    let z_train = capture_pre(model, layer, &retrain, norm, device, cfg.batch_size);
    let z_test = capture_pre(model, layer, test, norm, device, cfg.batch_size);
    let (lo, hi) = window_thresholds(z_stats, &cfg.centres, cfg.window_width);
    let inner = device.clone().inner();
    let train_labels = labels_tensor(&retrain, &inner);
    cfg.centres
        .iter()
        .enumerate()
        .map(|(i, &center)| {
            let (lo, hi) = (lo.clone().narrow(0, i, 1), hi.clone().narrow(0, i, 1));
            let f_train = window_maps(z_train.clone(), lo.clone(), hi.clone(), retrain.len());
            let f_test = window_maps(z_test.clone(), lo, hi, test.len());
            let seed = cfg.seed.wrapping_add(1000 * layer as u64 + i as u64);
            let acc = retrain_suffix(model, layer, f_train, train_labels.clone(), f_test, test, cfg, seed, device);
            tick();
            CentreAccuracy { center, test_accuracy: acc }
        })
        .collect()
}

/// Per neuron, the lower and upper bound (`[centres, neurons]` each) of the window of percentile
/// ranks `[c - width/2, c + width/2]` around each centre, from the statistics subset's
/// pre-activations `z_stats` (`[items, neurons]`); open-ended at the edges (see [`open_ended`]).
pub fn window_thresholds(z_stats: Tensor<2>, centres: &[f64], width: f64) -> (Tensor<2>, Tensor<2>) {
    let half = width / 2.0;
    let lower: Vec<f64> = centres.iter().map(|&c| c - half).collect();
    let upper: Vec<f64> = centres.iter().map(|&c| c + half).collect();
    let both: Vec<f64> = lower.iter().chain(&upper).copied().collect();
    let t = open_ended(percentiles(z_stats, &both), &both); // [2 * centres, N]
    let k = centres.len();
    (t.clone().narrow(0, 0, k), t.narrow(0, k, k))
}

/// The binary maps fed to the retrained suffix: 1 where a pre-activation lies in its neuron's
/// window `[lo, hi]`, as `[samples, positions * neurons]` from `z` (`[samples * positions,
/// neurons]`, rows sample-major), i.e. position-major with the neuron (channel) fastest: the
/// order [`TappedModel::fresh_suffix`] reads.
pub fn window_maps(z: Tensor<2>, lo: Tensor<2>, hi: Tensor<2>, samples: usize) -> Tensor<2> {
    let [items, n] = z.dims();
    binarize_window(z, lo, hi).reshape([samples, items / samples.max(1) * n])
}

/// Window bounds at or beyond rank 0 or 100 become -inf or +inf: the edge windows hold every value
/// beyond the statistics subset's extremes too (a test value below the subset's minimum is as
/// "low" as the minimum).
pub fn open_ended(thresholds: Tensor<2>, ranks: &[f64]) -> Tensor<2> {
    let [rows, neurons] = thresholds.dims();
    let device = thresholds.device();
    let fill: Vec<f32> = ranks
        .iter()
        .flat_map(|&r| {
            let v = if r <= 0.0 { f32::NEG_INFINITY } else if r >= 100.0 { f32::INFINITY } else { 0.0 };
            std::iter::repeat_n(v, neurons)
        })
        .collect();
    let edge: Vec<bool> = ranks.iter().flat_map(|&r| std::iter::repeat_n(r <= 0.0 || r >= 100.0, neurons)).collect();
    let fill = Tensor::<2>::from_data(TensorData::new(fill, [rows, neurons]), &device);
    let edge = Tensor::<2, Bool>::from_data(TensorData::new(edge, [rows, neurons]), &device);
    thresholds.mask_where(edge, fill)
}

fn labels_tensor(data: &Dataset, device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = data.labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(y, [data.len()]), device)
}

/// Trains `model.fresh_suffix(layer)` on fixed input features and returns its test accuracy.
#[allow(clippy::too_many_arguments)]
fn retrain_suffix<M: TappedModel>(
    model: &M,
    layer: usize,
    f_train: Tensor<2>,
    y_train: Tensor<1, Int>,
    f_test: Tensor<2>,
    test: &Dataset,
    cfg: &ExperimentConfig,
    seed: u64,
    device: &Device,
) -> f64 {
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let mut suffix = model.fresh_suffix(layer, &ad);
    let mut optim = adam();
    let n = f_train.dims()[0];
    let inner = device.clone().inner();
    for epoch in 0..cfg.retrain_epochs {
        for batch in Batches::new(epoch_order(n, seed, epoch), cfg.batch_size) {
            let idx: Vec<i64> = batch.samples.iter().map(|&i| i as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [batch.samples.len()]), &inner);
            let x = f_train.clone().select(0, idx.clone()).autodiff();
            let y = y_train.clone().select(0, idx);
            suffix = train_step(suffix, &mut optim, cfg.learning_rate, x, y, None).0;
        }
    }
    let valid = suffix.valid();
    let y_test = labels_tensor(test, &inner);
    let correct: i64 = correct_count(valid.forward(f_test), y_test).into_scalar();
    correct as f64 / test.len().max(1) as f64
}
