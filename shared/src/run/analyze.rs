//! The per-layer experiments of a trained network, one loop for every model and front end: the
//! zero pre-activation's rank (Table 1), quantization before and after the activation (figure
//! 3), the sliding window (figure 4; linear probes where the model's suffix is one), on data
//! held in memory or streamed from disk.

use std::collections::BTreeMap;

use burn::tensor::Device;

use crate::data::{Dataset, InMemory, Normalization, Source, SourceError};
use crate::experiments::{self, CentreAccuracy, ExperimentConfig, QuantizeAt, RankAccuracy};
use crate::model::TappedModel;

use super::events::{Event, Observer};

/// One layer's experiment results; the lists are empty for a layer whose experiments were not
/// run (only its zero rank was).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerAnalysis {
    pub zero_rank: f64,
    pub quantization: Vec<RankAccuracy>,
    pub post_quantization: Vec<RankAccuracy>,
    pub window: Vec<CentreAccuracy>,
}

/// What the experiments read: `stats` sets percentiles and windows, `retrain` trains the
/// suffixes or probes, `test` scores everything.
pub struct AnalysisData<'a> {
    pub stats: &'a dyn Source,
    pub retrain: &'a dyn Source,
    pub test: &'a dyn Source,
}

/// The in-memory sets of a run on `train` and `test`: the first `stats_samples` and
/// `retrain_samples` training samples.
pub struct InMemorySets {
    stats: Dataset,
    retrain: Dataset,
}

impl InMemorySets {
    pub fn new(train: &Dataset, cfg: &ExperimentConfig) -> Self {
        Self { stats: train.head(cfg.stats_samples), retrain: train.head(cfg.retrain_samples) }
    }

    /// Runs `f` on these sets and `test` as [`AnalysisData`].
    pub fn with<T>(&self, test: &Dataset, norm: Normalization, f: impl FnOnce(&AnalysisData<'_>) -> T) -> T {
        let (stats, retrain, test) = (InMemory { data: &self.stats, norm }, InMemory { data: &self.retrain, norm }, InMemory { data: test, norm });
        f(&AnalysisData { stats: &stats, retrain: &retrain, test: &test })
    }
}

/// The experiments: the zero rank on each of `layers`, quantization (pre and post) and the
/// sliding window on those of them in `experiment_layers`. Each experiment done is an
/// [`Event::Analysis`].
pub fn analyze<M: TappedModel>(
    model: &M,
    data: &AnalysisData<'_>,
    cfg: &ExperimentConfig,
    layers: &[usize],
    experiment_layers: &[usize],
    device: &Device,
    obs: &mut dyn Observer<M>,
) -> Result<BTreeMap<usize, LayerAnalysis>, SourceError> {
    let names = model.layers();
    let per_layer = 1 + 2 * cfg.ranks.len() + cfg.centres.len();
    let total = layers.iter().map(|l| if experiment_layers.contains(l) { per_layer } else { 1 }).sum();
    let mut done = 0;
    let mut tell = |layer: &str, what: &str, done: &mut usize| -> Result<(), SourceError> {
        *done += 1;
        obs.on(&Event::Analysis { done: *done, total, layer, what })
    };
    let mut out = BTreeMap::new();
    for &l in layers {
        let name = names[l].name.as_str();
        let zero_rank = experiments::zero_percentile_rank_on(model, l, data.stats, device, cfg.batch_size)?;
        tell(name, "zero rank", &mut done)?;
        let mut entry = LayerAnalysis { zero_rank, ..LayerAnalysis::default() };
        if experiment_layers.contains(&l) {
            // The ticks cannot fail; an observer's error waits for the experiment's end.
            let mut failed = None;
            let mut tick = |what: &str| {
                if let Err(e) = tell(name, what, &mut done) {
                    failed.get_or_insert(e);
                }
            };
            let variants = [QuantizeAt::Pre, QuantizeAt::Post];
            let what = |at| if at == QuantizeAt::Pre { "quantization" } else { "quantization after the activation" };
            let mut both = experiments::quantization_variants_on(model, l, data.stats, data.test, cfg, &variants, device, |at| tick(what(at)))?;
            entry.post_quantization = both.pop().unwrap_or_default();
            entry.quantization = both.pop().unwrap_or_default();
            entry.window = experiments::sliding_window_on(model, l, data.stats, data.retrain, data.test, cfg, device, || tick("sliding window"))?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        out.insert(l, entry);
    }
    Ok(out)
}
