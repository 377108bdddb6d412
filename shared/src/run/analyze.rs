//! The per-layer experiments of a trained network, one loop for every model and front end: the
//! zero pre-activation's rank (Table 1), quantization before and after the activation (figure
//! 3), the sliding window (figure 4; linear probes where the model's suffix is one), on data
//! held in memory or streamed from disk.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

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

/// One experiment of one layer: the piece of an analysis that a pool of workers shares out.
/// Each is computed from the model and the data alone (its retraining seeds come from the
/// layer and the window centre), so the pieces give the same results in any order and on any
/// worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unit {
    pub layer: usize,
    pub part: Part,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Table 1's zero rank.
    ZeroRank,
    /// Two-value quantization before and after the activation (figure 3).
    Quantization,
    /// The sliding window (figure 4).
    Window,
}

/// What a [`Unit`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitResult {
    ZeroRank(#[serde(with = "crate::json::opt_f64")] f64),
    Quantization { pre: Vec<RankAccuracy>, post: Vec<RankAccuracy> },
    Window(Vec<CentreAccuracy>),
}

impl Unit {
    /// Progress ticks this unit makes: one per experiment done (a rank of one variant, a
    /// window centre).
    pub fn ticks(&self, cfg: &ExperimentConfig) -> usize {
        match self.part {
            Part::ZeroRank => 1,
            Part::Quantization => 2 * cfg.ranks.len(),
            Part::Window => cfg.centres.len(),
        }
    }
}

/// The analysis of `layers` as units, layer by layer: the zero rank of each, quantization and
/// the window on those of them in `experiment_layers`.
pub fn units(layers: &[usize], experiment_layers: &[usize]) -> Vec<Unit> {
    let mut out = Vec::new();
    for &layer in layers {
        out.push(Unit { layer, part: Part::ZeroRank });
        if experiment_layers.contains(&layer) {
            out.push(Unit { layer, part: Part::Quantization });
            out.push(Unit { layer, part: Part::Window });
        }
    }
    out
}

/// `units` in the order a pool should hand them out: the costliest first, so that the last to
/// finish is a short one. The experiments of an earlier layer run more of the network after it
/// (every test pass and retraining goes through the rest), quantization makes twice the test
/// passes of the window, and a zero rank is one pass over the statistics set's first layers.
pub fn costliest_first(units: &[Unit]) -> Vec<Unit> {
    let mut out = units.to_vec();
    out.sort_by_key(|u| (u.part == Part::ZeroRank, u.layer, u.part != Part::Quantization));
    out
}

/// Runs one unit; `tick` is told each experiment as it is done (`what` it was).
pub fn analyze_unit<M: TappedModel>(
    model: &M,
    data: &AnalysisData<'_>,
    cfg: &ExperimentConfig,
    unit: Unit,
    device: &Device,
    tick: &mut dyn FnMut(&str),
) -> Result<UnitResult, SourceError> {
    let l = unit.layer;
    Ok(match unit.part {
        Part::ZeroRank => {
            let rank = experiments::zero_percentile_rank_on(model, l, data.stats, device, cfg.batch_size)?;
            tick("zero rank");
            UnitResult::ZeroRank(rank)
        }
        Part::Quantization => {
            let variants = [QuantizeAt::Pre, QuantizeAt::Post];
            let what = |at| if at == QuantizeAt::Pre { "quantization" } else { "quantization after the activation" };
            let mut both = experiments::quantization_variants_on(model, l, data.stats, data.test, cfg, &variants, device, |at| tick(what(at)))?;
            let post = both.pop().unwrap_or_default();
            UnitResult::Quantization { pre: both.pop().unwrap_or_default(), post }
        }
        Part::Window => UnitResult::Window(experiments::sliding_window_on(model, l, data.stats, data.retrain, data.test, cfg, device, || tick("sliding window"))?),
    })
}

/// The units' results as each layer's analysis (a layer whose experiments did not run has empty
/// lists).
pub fn merge(results: impl IntoIterator<Item = (Unit, UnitResult)>) -> BTreeMap<usize, LayerAnalysis> {
    let mut out: BTreeMap<usize, LayerAnalysis> = BTreeMap::new();
    for (unit, result) in results {
        let entry = out.entry(unit.layer).or_default();
        match result {
            UnitResult::ZeroRank(r) => entry.zero_rank = r,
            UnitResult::Quantization { pre, post } => {
                entry.quantization = pre;
                entry.post_quantization = post;
            }
            UnitResult::Window(w) => entry.window = w,
        }
    }
    out
}

/// The experiments: the zero rank on each of `layers`, quantization (pre and post) and the
/// sliding window on those of them in `experiment_layers`, one [`Unit`] after another. Each
/// experiment done is an [`Event::Analysis`].
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
    let units = units(layers, experiment_layers);
    let total = units.iter().map(|u| u.ticks(cfg)).sum();
    let mut done = 0;
    let mut results = Vec::with_capacity(units.len());
    for unit in units {
        let layer = names[unit.layer].name.as_str();
        // The ticks cannot fail; an observer's error waits for the unit's end.
        let mut failed = None;
        let result = analyze_unit(model, data, cfg, unit, device, &mut |what| {
            done += 1;
            if let Err(e) = obs.on(&Event::Analysis { done, total, layer, what }) {
                failed.get_or_insert(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        results.push((unit, result));
    }
    Ok(merge(results))
}
