//! Test-time experiments 3, 4 and 5 on a trained model: two-value quantization, sliding-window
//! binarization with retraining of the later layers, and classes versus categories.

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{Batches, Dataset, Head, InMemory, Normalization, Source, SourceError, epoch_order};
use crate::model::{CaptureTap, ReplacePostTap, ReplaceTap, Tap, TappedModel, flatten_items};
use crate::stats::{TwoValueQuantizer, binarize_window, percentiles, read_f32};
use crate::train::{adam, correct_count, train_step};

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
    /// Epochs of that retraining: all of them, or at most this many under [`RetrainStop::HeldOut`].
    pub retrain_epochs: usize,
    /// When the retraining stops.
    #[serde(default, skip_serializing_if = "RetrainStop::is_fixed")]
    pub retrain_stop: RetrainStop,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Most pre-activation values of the statistics subset kept on the device at once; a layer
    /// with more (ResNet50's conv1 on 1000 images: 8 x 10^8) has its percentiles selected and its
    /// quantization means summed batch by batch instead, re-running the subset (same numbers).
    #[serde(default = "default_max_captured_values")]
    pub max_captured_values: usize,
    /// Test samples experiments 3 and 4 evaluate on: the first this many, or all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<usize>,
}

/// When a retrained suffix (or probe) stops training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum RetrainStop {
    /// After exactly `retrain_epochs` epochs (the paper's three on 60 000 MNIST images).
    #[default]
    Epochs,
    /// `held_out` of the retraining set (a share, e.g. 0.1) is set aside; after each epoch on the
    /// rest the suffix's loss on it is measured, training stops once that loss has not improved
    /// for `patience` epochs (or after `retrain_epochs`), and the suffix with the lowest held-out
    /// loss is the one tested. A budget too short for a window's suffix is what this removes.
    HeldOut { held_out: f64, patience: usize },
}

impl RetrainStop {
    /// The presets' rule: a tenth held out, stop after one epoch without improvement.
    pub const HELD_OUT: RetrainStop = RetrainStop::HeldOut { held_out: 0.1, patience: 1 };

    pub fn is_fixed(&self) -> bool {
        *self == RetrainStop::Epochs
    }

    /// Rows of `n` retraining samples set aside (none under a fixed budget; at least one row
    /// trains).
    pub fn held_out_rows(&self, n: usize) -> usize {
        match *self {
            RetrainStop::Epochs => 0,
            RetrainStop::HeldOut { .. } if n < 2 => 0,
            RetrainStop::HeldOut { held_out, .. } => ((n as f64 * held_out).round() as usize).clamp(1, n - 1),
        }
    }
}

fn default_max_captured_values() -> usize {
    crate::percentile::SORT_LIMIT
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
            retrain_stop: RetrainStop::Epochs,
            batch_size: 128,
            learning_rate: 1e-3,
            seed,
            max_captured_values: default_max_captured_values(),
            test_samples: None,
        }
    }

    /// Minutes on a CPU: fewer statistics samples, and each suffix retrained on all 60 000
    /// images until its held-out loss stops improving (at most 6 epochs). A fixed 1 epoch on
    /// 20 000 images (this preset before 2026-12) left the middle windows' suffixes short of
    /// training by 4-6 points, which moved verdicts.
    pub fn fast(seed: u64) -> Self {
        Self { stats_samples: 5_000, retrain_samples: 60_000, retrain_epochs: 6, retrain_stop: RetrainStop::HELD_OUT, ..Self::paper(seed) }
    }

    /// In a browser tab: every other window centre and a smaller retraining set, so that the
    /// analysis of both MLP layers takes about a quarter of a minute (16 s in headless Chromium on two
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

    /// ResNet50 on ImageNet: `stats_samples` images set the percentiles (conv1: 10^3 images are
    /// 8 x 10^8 values, which the streamed selection handles), linear probes train on
    /// `retrain_samples` training images; the test set is the whole validation set unless
    /// limited.
    pub fn resnet_paper(seed: u64) -> Self {
        Self { stats_samples: 1_000, retrain_samples: 10_000, retrain_epochs: 10, batch_size: 64, ..Self::paper(seed) }
    }

    /// Minutes on a CPU on a small folder: few images, every other window centre.
    pub fn resnet_fast(seed: u64) -> Self {
        Self {
            stats_samples: 32,
            retrain_samples: 200,
            retrain_epochs: 20,
            batch_size: 16,
            centres: (0..10).map(|i| 5.0 + 10.0 * i as f64).collect(),
            ..Self::paper(seed)
        }
    }

    /// Conv layers have a value per position: fewer samples give as many values.
    pub fn cifar_paper(seed: u64) -> Self {
        Self { stats_samples: 2_000, retrain_samples: 10_000, retrain_epochs: 3, ..Self::paper(seed) }
    }

    /// The CIFAR `cpu` preset's experiments: percentiles from 2000 training images, every other
    /// window centre, suffixes retrained on 5000 images until their held-out loss stops improving
    /// (at most 6 epochs; retraining the conv suffixes is most of the experiments' cost), the
    /// whole test set.
    pub fn cifar_cpu(seed: u64) -> Self {
        Self { stats_samples: 2_000, retrain_samples: 5_000, retrain_epochs: 6, ..Self::cifar_fast(seed) }
    }

    /// Retraining the conv layers after stage0layer0 dominates the cost on a CPU: every other
    /// window centre (5, 15, ..., 95).
    pub fn cifar_fast(seed: u64) -> Self {
        Self {
            stats_samples: 500,
            retrain_samples: 1_000,
            retrain_epochs: 3,
            retrain_stop: RetrainStop::HELD_OUT,
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
    /// Epochs the tested suffix trained (under [`RetrainStop::HeldOut`], the epoch with the lowest
    /// held-out loss); absent under a fixed budget and in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain_epochs: Option<usize>,
}

/// Pre-activations `[samples * positions, neurons]` of studied layer `layer` for all of `data`,
/// on the model's inner device (dropout off, batch-norm in inference mode).
pub fn capture_pre<M: TappedModel>(model: &M, layer: usize, data: &Dataset, norm: Normalization, device: &Device, batch: usize) -> Tensor<2> {
    in_memory(capture(model, layer, &InMemory { data, norm }, device, batch, false)).0
}

/// An in-memory set cannot fail to hand over its batches.
fn in_memory<T>(r: Result<T, SourceError>) -> T {
    r.unwrap_or_else(|e| unreachable!("an in-memory data set failed: {e}"))
}

/// Pre-activations and, when `with_post`, activations (`[samples * positions, neurons]` each).
fn capture<M: TappedModel>(model: &M, layer: usize, data: &dyn Source, device: &Device, batch: usize, with_post: bool) -> Result<(Tensor<2>, Option<Tensor<2>>), SourceError> {
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    visit_layer(model, layer, data, device, batch, with_post, &mut |z, a| {
        pre.push(z);
        post.extend(a);
    })?;
    if pre.is_empty() {
        return Err(format!("no usable sample to compute statistics on ({} in the set)", data.len()).into());
    }
    let post = (!post.is_empty()).then(|| Tensor::cat(post, 0));
    Ok((Tensor::cat(pre, 0), post))
}

/// Test accuracy of `model` (dropout off) on any [`Source`], over the samples actually visited.
pub fn accuracy_of<M: TappedModel>(model: &M, data: &dyn Source, device: &Device, batch: usize) -> Result<f64, SourceError> {
    let valid = model.valid();
    accuracy_on(data, &device.clone().inner(), batch, |x| valid.forward(x))
}

/// Accuracy of `logits_of` on `data`, counted on the device, over the samples actually visited.
fn accuracy_on(data: &dyn Source, device: &Device, batch: usize, mut logits_of: impl FnMut(Tensor<2>) -> Tensor<2>) -> Result<f64, SourceError> {
    let mut hits = Hits::default();
    data.visit(batch, device, &mut |x, y| hits.add(logits_of(x), y))?;
    Ok(hits.share())
}

/// Correct predictions counted on the device, batch by batch, and the samples they came from.
#[derive(Clone, Default)]
struct Hits {
    correct: Option<Tensor<1, Int>>,
    seen: usize,
}

impl Hits {
    fn add(&mut self, logits: Tensor<2>, labels: Tensor<1, Int>) {
        self.seen += labels.dims()[0];
        let hits = correct_count(logits, labels);
        self.correct = Some(match self.correct.take() {
            Some(c) => c + hits,
            None => hits,
        });
    }

    /// The share of correct predictions (one device read); 0 when nothing was seen.
    fn share(self) -> f64 {
        self.correct.map_or(0.0, |c| c.into_scalar::<i64>() as f64 / self.seen.max(1) as f64)
    }
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
    tick: impl FnMut(),
) -> Vec<RankAccuracy> {
    in_memory(quantization_on(model, layer, &InMemory { data: stats_set, norm }, &InMemory { data: test, norm }, cfg, at, device, tick))
}

/// [`quantization`] on any [`Source`]s.
#[allow(clippy::too_many_arguments)]
pub fn quantization_on<M: TappedModel>(
    model: &M,
    layer: usize,
    stats_set: &dyn Source,
    test: &dyn Source,
    cfg: &ExperimentConfig,
    at: QuantizeAt,
    device: &Device,
    mut tick: impl FnMut(),
) -> Result<Vec<RankAccuracy>, SourceError> {
    let mut out = quantization_variants_on(model, layer, stats_set, test, cfg, &[at], device, |_| tick())?;
    Ok(out.remove(0))
}

/// [`quantization_on`] for several variants (before and after the activation) at once: the
/// statistics subset is captured and fitted once, and each test batch runs the layers before
/// `layer` once for all variants and ranks. One list per variant, in the order of `variants`;
/// `tick(variant)` once per variant and rank.
#[allow(clippy::too_many_arguments)]
pub fn quantization_variants_on<M: TappedModel>(
    model: &M,
    layer: usize,
    stats_set: &dyn Source,
    test: &dyn Source,
    cfg: &ExperimentConfig,
    variants: &[QuantizeAt],
    device: &Device,
    mut tick: impl FnMut(QuantizeAt),
) -> Result<Vec<Vec<RankAccuracy>>, SourceError> {
    let test = &Head::first(test, cfg.test_samples);
    let (fitted, post) = fit_quantizers(model, layer, stats_set, cfg, device, variants.contains(&QuantizeAt::Post))?;
    // A model without a separate activation has only the pre-activation's values to offer.
    let post = post.unwrap_or_else(|| fitted.clone());
    let values = |at: QuantizeAt| match at {
        QuantizeAt::Pre => &fitted,
        QuantizeAt::Post => &post,
    };
    let valid = model.valid();
    let inner = device.clone().inner();
    let ranks = cfg.ranks.len();
    let total = ranks * variants.len();
    let batches = test.len().div_ceil(cfg.batch_size.max(1)).max(1);
    let mut correct = vec![vec![Hits::default(); ranks]; variants.len()];
    let (mut visited, mut ticked) = (0usize, 0usize);
    let mut tick_next = |ticked: &mut usize| {
        tick(variants[*ticked / ranks.max(1)]);
        *ticked += 1;
    };
    test.visit(cfg.batch_size, &inner, &mut |x, y| {
        // Where the model can be split at the layer, the layers before it run once per batch,
        // not once per variant and rank.
        let z = valid.pre_activations(layer, x.clone());
        for (&at, counts) in variants.iter().zip(correct.iter_mut()) {
            for (count, q) in counts.iter_mut().zip(values(at)) {
                let mut tap: Box<dyn Tap + '_> = match at {
                    QuantizeAt::Pre => Box::new(ReplaceTap { layer, f: |z| q.apply(z) }),
                    QuantizeAt::Post => Box::new(ReplacePostTap::new(layer, |z, _| q.apply(z))),
                };
                let logits = z.clone().and_then(|z| valid.forward_from(layer, z, tap.as_mut())).unwrap_or_else(|| valid.forward_tapped(x.clone(), tap.as_mut()));
                count.add(logits, y.clone());
            }
        }
        // One tick per variant and rank, spread over the batches.
        visited += 1;
        while ticked < (total * visited / batches).min(total) {
            tick_next(&mut ticked);
        }
    })?;
    while ticked < total {
        tick_next(&mut ticked);
    }
    // The same-side share is a property of the pre-activation means, whichever variant runs.
    let same_side: Vec<Option<f64>> = fitted.iter().map(|q| read_f32(q.same_side_share()).first().map(|&s| s as f64)).collect();
    Ok(correct
        .into_iter()
        .map(|counts| cfg.ranks.iter().zip(&same_side).zip(counts).map(|((&rank, &same_side_share), c)| RankAccuracy { rank, test_accuracy: c.share(), same_side_share }).collect())
        .collect())
}

/// Experiment 3's quantizers of layer `layer`, one per rank of `cfg`, fitted on `stats_set`:
/// captured at once, or, beyond `cfg.max_captured_values`, with percentiles selected and side
/// means summed batch by batch (the same quantizers, up to the order of the float sums).
pub fn quantizers<M: TappedModel>(model: &M, layer: usize, stats_set: &dyn Source, cfg: &ExperimentConfig, device: &Device) -> Result<Vec<TwoValueQuantizer>, SourceError> {
    Ok(fit_quantizers(model, layer, stats_set, cfg, device, false)?.0)
}

/// [`quantizers`] and, when `with_post` and the model has a separate activation, the
/// post-activation variant's: the same sides, each side's value the mean activation. Captured
/// or streamed by the same rule (the pre-activations' count against `max_captured_values`), so
/// the post variant streams wherever the pre one does; captured, it keeps the activations beside
/// the pre-activations (twice the values).
fn fit_quantizers<M: TappedModel>(
    model: &M,
    layer: usize,
    stats_set: &dyn Source,
    cfg: &ExperimentConfig,
    device: &Device,
    with_post: bool,
) -> Result<(Vec<TwoValueQuantizer>, Option<Vec<TwoValueQuantizer>>), SourceError> {
    if too_many_values(model, layer, stats_set, cfg) {
        let thresholds = streamed_percentiles(model, layer, stats_set, &cfg.ranks, device, cfg.batch_size)?;
        streamed_quantizers(model, layer, stats_set, thresholds, device, cfg.batch_size, with_post)
    } else {
        let (z, a) = capture(model, layer, stats_set, device, cfg.batch_size, with_post)?;
        let thresholds = percentiles(z.clone(), &cfg.ranks); // [ranks, N]
        let post = a.map(|a| TwoValueQuantizer::fit_rows(z.clone(), a, thresholds.clone()));
        Ok((TwoValueQuantizer::fit_rows(z.clone(), z, thresholds), post))
    }
}

/// Table 1: the zero pre-activation's percentile rank, averaged over the layer's neurons.
pub fn zero_percentile_rank<M: TappedModel>(model: &M, layer: usize, stats_set: &Dataset, norm: Normalization, device: &Device, batch: usize) -> f64 {
    in_memory(zero_percentile_rank_on(model, layer, &InMemory { data: stats_set, norm }, device, batch))
}

/// [`zero_percentile_rank`] on any [`Source`]: counted batch by batch, nothing kept.
pub fn zero_percentile_rank_on<M: TappedModel>(model: &M, layer: usize, stats_set: &dyn Source, device: &Device, batch: usize) -> Result<f64, SourceError> {
    let mut counts: Option<(Tensor<2>, usize)> = None;
    visit_pre(model, layer, stats_set, device, batch, &mut |z| {
        let rows = z.dims()[0];
        // below + equal / 2, per neuron
        let c = z.clone().lower_elem(0.0).float().sum_dim(0) + z.equal_elem(0.0).float().sum_dim(0) * 0.5;
        counts = Some(match counts.take() {
            Some((s, n)) => (s + c, n + rows),
            None => (c, rows),
        });
    })?;
    let Some((sum, rows)) = counts else {
        return Err(format!("no usable sample to compute the zero rank on ({} in the set)", stats_set.len()).into());
    };
    let ranks = zero_percentile_ranks_from(read_f32(sum), rows);
    Ok(ranks.iter().sum::<f64>() / ranks.len().max(1) as f64)
}

fn zero_percentile_ranks_from(below_and_half_equal: Vec<f32>, rows: usize) -> Vec<f64> {
    below_and_half_equal.into_iter().map(|c| 100.0 * c as f64 / rows.max(1) as f64).collect()
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
    tick: impl FnMut(),
) -> Vec<CentreAccuracy> {
    let stats = train.head(cfg.stats_samples);
    let retrain = train.head(cfg.retrain_samples);
    let source = |data| InMemory { data, norm };
    in_memory(sliding_window_on(model, layer, &source(&stats), &source(&retrain), &source(test), cfg, device, tick))
}

/// [`sliding_window`] on any [`Source`]s: `stats` sets the windows, the suffix (or probe) is
/// retrained on `retrain` and tested on `test`. A model whose suffix pools positions
/// ([`TappedModel::suffix_pools_positions`]) gets each channel's fraction of positions inside the
/// window, computed batch by batch; the others the whole binary map.
#[allow(clippy::too_many_arguments)]
pub fn sliding_window_on<M: TappedModel>(
    model: &M,
    layer: usize,
    stats: &dyn Source,
    retrain: &dyn Source,
    test: &dyn Source,
    cfg: &ExperimentConfig,
    device: &Device,
    mut tick: impl FnMut(),
) -> Result<Vec<CentreAccuracy>, SourceError> {
    let test = &Head::first(test, cfg.test_samples);
    let (lo, hi) = if too_many_values(model, layer, stats, cfg) {
        let ranks = window_ranks(&cfg.centres, cfg.window_width);
        split_bounds(open_ended(streamed_percentiles(model, layer, stats, &ranks, device, cfg.batch_size)?, &ranks))
    } else {
        window_thresholds(capture(model, layer, stats, device, cfg.batch_size, false)?.0, &cfg.centres, cfg.window_width)
    };
    let retrain_features = WindowFeatures::of(model, layer, retrain, &lo, &hi, cfg, device)?;
    let mut suffixes = Vec::with_capacity(cfg.centres.len());
    for i in 0..cfg.centres.len() {
        let seed = cfg.seed.wrapping_add(1000 * layer as u64 + i as u64);
        suffixes.push(retrain_suffix(model, layer, retrain_features.centre(i, &lo, &hi), retrain_features.labels.clone(), cfg, seed, device));
        tick();
    }
    let accuracies = window_test_accuracy(model, layer, test, &lo, &hi, suffixes.iter().map(|(s, _)| s), cfg, device)?;
    Ok(cfg
        .centres
        .iter()
        .zip(accuracies)
        .zip(&suffixes)
        .map(|((&center, test_accuracy), &(_, retrain_epochs))| CentreAccuracy { center, test_accuracy, retrain_epochs })
        .collect())
}

/// Row `i` of `[centres, neurons]` bounds.
fn bound(t: &Tensor<2>, i: usize) -> Tensor<2> {
    t.clone().narrow(0, i, 1)
}

/// The suffix's input for a batch's pre-activations `z` (`[batch, positions, neurons]`) under
/// window `i`: each channel's share of positions inside the window where the suffix pools
/// positions, the whole binary map otherwise (see [`window_maps`]).
fn batch_window_features(z: Tensor<3>, lo: &Tensor<2>, hi: &Tensor<2>, i: usize, pooled: bool) -> Tensor<2> {
    let [b, positions, neurons] = z.dims();
    let z = z.reshape([b * positions, neurons]);
    if pooled {
        binarize_window(z, bound(lo, i), bound(hi, i)).reshape([b, positions, neurons]).mean_dim(1).reshape([b, neurons])
    } else {
        window_maps(z, bound(lo, i), bound(hi, i), b)
    }
}

/// The retraining set's suffix inputs: per centre where the suffix pools positions (a mean per
/// channel and sample, small), else the pre-activations once, each centre's binary maps made
/// when its suffix trains (ten centres' maps of a conv layer at once would need ten times the
/// memory).
struct WindowFeatures {
    kind: FeatureKind,
    labels: Tensor<1, Int>,
}

enum FeatureKind {
    PerCentre(Vec<Tensor<2>>),
    Pre { z: Tensor<2>, samples: usize },
}

impl WindowFeatures {
    fn of<M: TappedModel>(model: &M, layer: usize, data: &dyn Source, lo: &Tensor<2>, hi: &Tensor<2>, cfg: &ExperimentConfig, device: &Device) -> Result<Self, SourceError> {
        if !model.suffix_pools_positions() {
            let (z, _) = capture(model, layer, data, device, cfg.batch_size, false)?;
            let labels = labels_of(data, device, cfg.batch_size)?;
            let samples = labels.dims()[0];
            return Ok(Self { kind: FeatureKind::Pre { z, samples }, labels });
        }
        let valid = model.valid();
        let inner = device.clone().inner();
        let (mut per_centre, mut labels) = (vec![Vec::new(); cfg.centres.len()], Vec::new());
        data.visit(cfg.batch_size, &inner, &mut |x, y| {
            labels.push(y);
            let z = layer_pre(&valid, layer, x);
            for (i, f) in per_centre.iter_mut().enumerate() {
                f.push(batch_window_features(z.clone(), lo, hi, i, true));
            }
        })?;
        if labels.is_empty() {
            return Err(format!("no usable sample ({} in the set)", data.len()).into());
        }
        Ok(Self { kind: FeatureKind::PerCentre(per_centre.into_iter().map(|f| Tensor::cat(f, 0)).collect()), labels: Tensor::cat(labels, 0) })
    }

    /// Centre `i`'s inputs `[samples, features]`.
    fn centre(&self, i: usize, lo: &Tensor<2>, hi: &Tensor<2>) -> Tensor<2> {
        match &self.kind {
            FeatureKind::PerCentre(f) => f[i].clone(),
            FeatureKind::Pre { z, samples } => window_maps(z.clone(), bound(lo, i), bound(hi, i), *samples),
        }
    }
}

/// Each retrained suffix's accuracy on `test`, in one streamed pass: per batch the layers up to
/// `layer` run once, then every centre's window and suffix (nothing of the test set is kept, so
/// the whole test set fits however large the layer).
#[allow(clippy::too_many_arguments)]
fn window_test_accuracy<'s, M: TappedModel>(
    model: &M,
    layer: usize,
    test: &dyn Source,
    lo: &Tensor<2>,
    hi: &Tensor<2>,
    suffixes: impl Iterator<Item = &'s M::Suffix>,
    cfg: &ExperimentConfig,
    device: &Device,
) -> Result<Vec<f64>, SourceError>
where
    M::Suffix: 's,
{
    let suffixes: Vec<&M::Suffix> = suffixes.collect();
    let pooled = model.suffix_pools_positions();
    let valid = model.valid();
    let mut hits = vec![Hits::default(); suffixes.len()];
    test.visit(cfg.batch_size, &device.clone().inner(), &mut |x, y| {
        let z = layer_pre(&valid, layer, x);
        for (i, (suffix, h)) in suffixes.iter().zip(hits.iter_mut()).enumerate() {
            h.add(suffix.forward(batch_window_features(z.clone(), lo, hi, i, pooled)), y.clone());
        }
    })?;
    if hits.first().is_some_and(|h| h.seen == 0) {
        return Err(format!("no usable test sample ({} in the set)", test.len()).into());
    }
    Ok(hits.into_iter().map(Hits::share).collect())
}

/// Studied layer `layer`'s pre-activations `[batch, positions, neurons]` for `x`, running only
/// the layers up to it where the model can be split there.
fn layer_pre<M: TappedModel>(valid: &M, layer: usize, x: Tensor<2>) -> Tensor<3> {
    valid.pre_activations(layer, x.clone()).unwrap_or_else(|| {
        let mut tap = CaptureTap::only(vec![layer]);
        valid.forward_tapped(x, &mut tap);
        tap.pre[layer].take().expect("layer captured")
    })
}

fn labels_of(data: &dyn Source, device: &Device, batch: usize) -> Result<Tensor<1, Int>, SourceError> {
    let inner = device.clone().inner();
    let mut labels = Vec::new();
    data.visit(batch, &inner, &mut |_, y| labels.push(y))?;
    Ok(Tensor::cat(labels, 0))
}

/// Per neuron, the lower and upper bound (`[centres, neurons]` each) of the window of percentile
/// ranks `[c - width/2, c + width/2]` around each centre, from the statistics subset's
/// pre-activations `z_stats` (`[items, neurons]`); open-ended at the edges (see [`open_ended`]).
pub fn window_thresholds(z_stats: Tensor<2>, centres: &[f64], width: f64) -> (Tensor<2>, Tensor<2>) {
    let both = window_ranks(centres, width);
    split_bounds(open_ended(percentiles(z_stats, &both), &both)) // [2 * centres, N]
}

/// The windows' lower bounds' ranks, then their upper bounds'.
fn window_ranks(centres: &[f64], width: f64) -> Vec<f64> {
    let half = width / 2.0;
    centres.iter().map(|&c| c - half).chain(centres.iter().map(|&c| c + half)).collect()
}

/// `[2k, N]` bounds as (lower `[k, N]`, upper `[k, N]`).
fn split_bounds(t: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let k = t.dims()[0] / 2;
    (t.clone().narrow(0, 0, k), t.narrow(0, k, k))
}

/// Whether the statistics subset's values of `layer` exceed what may be captured at once.
fn too_many_values<M: TappedModel>(model: &M, layer: usize, stats: &dyn Source, cfg: &ExperimentConfig) -> bool {
    let info = &model.layers()[layer];
    stats.len().saturating_mul(info.positions).saturating_mul(info.neurons) > cfg.max_captured_values
}

/// Runs `f` on each batch's pre-activations of `layer` (`[batch * positions, neurons]`).
fn visit_pre<M: TappedModel>(model: &M, layer: usize, data: &dyn Source, device: &Device, batch: usize, f: &mut dyn FnMut(Tensor<2>)) -> Result<(), SourceError> {
    visit_layer(model, layer, data, device, batch, false, &mut |z, _| f(z))
}

/// Runs `f` on each batch's pre-activations of `layer` and, when `with_post` and the model has a
/// separate activation there, its activations (`[batch * positions, neurons]` each).
fn visit_layer<M: TappedModel>(
    model: &M,
    layer: usize,
    data: &dyn Source,
    device: &Device,
    batch: usize,
    with_post: bool,
    f: &mut dyn FnMut(Tensor<2>, Option<Tensor<2>>),
) -> Result<(), SourceError> {
    let valid = model.valid();
    let inner = device.clone().inner();
    data.visit(batch, &inner, &mut |x, _| {
        if !with_post {
            return f(flatten_items(layer_pre(&valid, layer, x)), None);
        }
        let mut tap = CaptureTap::only(vec![layer]).with_post();
        valid.forward_tapped(x, &mut tap);
        let post = tap.post.as_mut().and_then(|p| p.get_mut(layer)?.take()).map(flatten_items);
        f(flatten_items(tap.pre[layer].take().expect("layer captured")), post);
    })
}

/// Percentiles of the statistics subset's pre-activations by the streamed selection: the subset
/// is run through the model once per pass, nothing kept but one batch.
fn streamed_percentiles<M: TappedModel>(model: &M, layer: usize, stats: &dyn Source, ranks: &[f64], device: &Device, batch: usize) -> Result<Tensor<2>, SourceError> {
    let neurons = model.layers()[layer].neurons;
    let inner = device.clone().inner();
    let mut failed = None;
    let t = crate::percentile::percentiles_streamed(ranks, neurons, &inner, |sink| {
        if failed.is_none() {
            failed = visit_pre(model, layer, stats, device, batch, sink).err();
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// One [`TwoValueQuantizer`] per row of `thresholds` (`[ranks, N]`), its side means summed batch
/// by batch over the statistics subset; with `with_post`, also the post-activation variant's
/// (sides split by the pre-activations, means of the activations), from the same pass.
fn streamed_quantizers<M: TappedModel>(
    model: &M,
    layer: usize,
    stats: &dyn Source,
    thresholds: Tensor<2>,
    device: &Device,
    batch: usize,
    with_post: bool,
) -> Result<(Vec<TwoValueQuantizer>, Option<Vec<TwoValueQuantizer>>), SourceError> {
    let (mut pre, mut post) = (None, None);
    visit_layer(model, layer, stats, device, batch, with_post, &mut |z, a| {
        let mut above = None;
        if let Some(a) = a {
            post = Some(SideSums::of(&z, a, &thresholds, &mut above).plus(post.take()));
        }
        pre = Some(SideSums::of(&z, z.clone(), &thresholds, &mut above).plus(pre.take()));
    })?;
    let Some(pre) = pre else {
        return Err(format!("no usable sample to compute statistics on ({} in the set)", stats.len()).into());
    };
    Ok((pre.quantizers(&thresholds), post.map(|p| p.quantizers(&thresholds))))
}

/// Per rank and neuron (`[k, N]` each), summed batch by batch: how many values lie on the high
/// side, their sum, and the sum of all, over `rows` values.
struct SideSums {
    n_high: Tensor<2>,
    sum_high: Tensor<2>,
    sum_all: Tensor<2>,
    rows: usize,
}

impl SideSums {
    /// `values` `[rows, N]` summed by the side of each row of `thresholds` (`[k, N]`) their
    /// pre-activations `z` lie on: on the CPU backends in the one loop of
    /// [`crate::eval_ops::side_sums`], elsewhere through `above` (`[k, rows, N]`, 1 at or above
    /// the threshold), made once per batch and kept for the batch's other values.
    fn of(z: &Tensor<2>, values: Tensor<2>, thresholds: &Tensor<2>, above: &mut Option<Tensor<3>>) -> Self {
        let [k, n] = thresholds.dims();
        let rows = z.dims()[0];
        if let Some((n_high, sum_high, sum_all)) = crate::eval_ops::side_sums(z, &values, thresholds) {
            return Self { n_high, sum_high, sum_all: sum_all.expand([k, n]), rows };
        }
        let above = above
            .get_or_insert_with(|| z.clone().unsqueeze_dim::<3>(0).expand([k, rows, n]).greater_equal(thresholds.clone().unsqueeze_dim::<3>(1).expand([k, rows, n])).float())
            .clone();
        Self {
            n_high: above.clone().sum_dim(1).reshape([k, n]),
            sum_high: (values.clone().unsqueeze_dim::<3>(0).expand([k, rows, n]) * above).sum_dim(1).reshape([k, n]),
            sum_all: values.sum_dim(0).expand([k, n]),
            rows,
        }
    }

    fn plus(self, earlier: Option<Self>) -> Self {
        match earlier {
            None => self,
            Some(e) => Self { n_high: e.n_high + self.n_high, sum_high: e.sum_high + self.sum_high, sum_all: e.sum_all + self.sum_all, rows: e.rows + self.rows },
        }
    }

    fn quantizers(self, thresholds: &Tensor<2>) -> Vec<TwoValueQuantizer> {
        let row = |t: &Tensor<2>, i| t.clone().narrow(0, i, 1);
        (0..thresholds.dims()[0]).map(|i| TwoValueQuantizer::from_sums(row(&self.n_high, i), row(&self.sum_high, i), row(&self.sum_all, i), self.rows, row(thresholds, i))).collect()
    }
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

/// Early stopping on a held-out loss, epoch by epoch.
#[derive(Clone, Debug)]
pub struct EarlyStop {
    patience: usize,
    best: f64,
    stale: usize,
}

/// What one epoch's held-out loss means for the retraining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The lowest so far: keep this epoch's suffix.
    Best,
    /// Not lower (or not a number); go on.
    Worse,
    /// `patience` epochs in a row without a new lowest: stop.
    Stop,
}

impl EarlyStop {
    pub fn new(patience: usize) -> Self {
        Self { patience: patience.max(1), best: f64::INFINITY, stale: 0 }
    }

    pub fn observe(&mut self, loss: f64) -> Observed {
        if loss < self.best {
            self.best = loss;
            self.stale = 0;
            return Observed::Best;
        }
        self.stale += 1;
        if self.stale >= self.patience { Observed::Stop } else { Observed::Worse }
    }
}

/// Trains `model.fresh_suffix(layer)` on fixed input features; returns the suffix to test (under
/// [`RetrainStop::HeldOut`], the one with the lowest held-out loss) and the epochs it trained.
#[allow(clippy::too_many_arguments)]
fn retrain_suffix<M: TappedModel>(
    model: &M,
    layer: usize,
    f_train: Tensor<2>,
    y_train: Tensor<1, Int>,
    cfg: &ExperimentConfig,
    seed: u64,
    device: &Device,
) -> (M::Suffix, Option<usize>) {
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let mut suffix = model.fresh_suffix(layer, &ad);
    let mut optim = adam();
    let n = f_train.dims()[0];
    let held = cfg.retrain_stop.held_out_rows(n);
    let fit = n - held;
    let held_out = (held > 0).then(|| (f_train.clone().narrow(0, fit, held), y_train.clone().narrow(0, fit, held)));
    let inner = device.clone().inner();
    // The suffix with the lowest held-out loss so far, and the epochs it trained.
    let mut best: Option<(usize, M::Suffix)> = None;
    let mut stop = match cfg.retrain_stop {
        RetrainStop::HeldOut { patience, .. } => EarlyStop::new(patience),
        RetrainStop::Epochs => EarlyStop::new(1),
    };
    for epoch in 0..cfg.retrain_epochs {
        for batch in Batches::new(epoch_order(fit, seed, epoch), cfg.batch_size) {
            let idx: Vec<i64> = batch.samples.iter().map(|&i| i as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [batch.samples.len()]), &inner);
            let x = f_train.clone().select(0, idx.clone()).autodiff();
            let y = y_train.clone().select(0, idx);
            suffix = train_step(suffix, &mut optim, cfg.learning_rate, x, y, None).0;
        }
        let Some((x, y)) = &held_out else { continue };
        match stop.observe(mean_loss(&suffix.valid(), x.clone(), y.clone(), cfg.batch_size)) {
            Observed::Best => best = Some((epoch + 1, suffix.valid())),
            Observed::Worse => {}
            Observed::Stop => break,
        }
    }
    match best {
        Some((epochs, kept)) => (kept, Some(epochs)),
        None => (suffix.valid(), None),
    }
}

/// The mean cross-entropy of `model` on `x` (`[samples, features]`), in batches.
fn mean_loss<S: TappedModel>(model: &S, x: Tensor<2>, y: Tensor<1, Int>, batch: usize) -> f64 {
    let n = x.dims()[0];
    let device = x.device();
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut sum = Tensor::<1>::zeros([1], &device);
    for start in (0..n).step_by(batch.max(1)) {
        let len = batch.min(n - start);
        let logits = model.forward(x.clone().narrow(0, start, len));
        sum = sum + ce.forward(logits, y.clone().narrow(0, start, len)).mul_scalar(len as f64);
    }
    let total: f32 = sum.into_scalar();
    total as f64 / n.max(1) as f64
}
