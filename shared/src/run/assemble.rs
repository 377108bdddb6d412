//! The one place that builds a [`Results`]: from the spec, what training left and what the
//! analysis measured, whichever front end ran them.

use std::collections::BTreeMap;

use crate::analysis::LayerSigns;
use crate::figures::Histogram;
use crate::model::LayerInfo;
use crate::recording::Recorder;
use crate::results::{LayerResults, RecordingSummary, Results};
use crate::rotation::LayerRotation;
use crate::train::TrainConfig;

use super::analyze::LayerAnalysis;
use super::progress::Progress;
use super::spec::RunSpec;

/// What a run produced, for [`results`].
pub struct Outcome<'a> {
    pub spec: &'a RunSpec,
    /// Which burn backend ran, e.g. "flex (CPU)".
    pub backend: &'a str,
    pub test_accuracy: f64,
    /// The studied layers, in forward order.
    pub layers: &'a [LayerInfo],
    /// Per layer (the same order), its sign summary; `None` for a run without recording.
    pub signs: Option<&'a [LayerSigns]>,
    pub recorder: Option<&'a Recorder>,
    /// By layer index; a layer without an entry has no experiment numbers.
    pub analysis: &'a BTreeMap<usize, LayerAnalysis>,
    /// `None`: not trained here.
    pub progress: Option<&'a Progress>,
    /// The weighted layers' names, in the order of each epoch's rotation.
    pub rotation_layers: Vec<String>,
    pub experiment_seconds: f64,
}

pub fn results(o: &Outcome<'_>) -> Results {
    let spec = o.spec;
    let mut layers = BTreeMap::new();
    for (l, info) in o.layers.iter().enumerate() {
        let analysis = o.analysis.get(&l);
        let signs = o.signs.and_then(|s| s.get(l));
        if signs.is_none() && analysis.is_none() {
            continue;
        }
        layers.insert(info.name.clone(), layer_results(info.neurons, signs, analysis));
    }
    let progress = o.progress.cloned().unwrap_or_default();
    let recording = match (o.recorder, &spec.train) {
        (Some(r), Some(t)) => Some(recording_summary(r, t)),
        _ => None,
    };
    Results {
        model: spec.model.id(),
        dataset: spec.data.name.clone(),
        preset: spec.preset.name().into(),
        seed: spec.seed,
        test_accuracy: o.test_accuracy,
        recording,
        layers,
        backend: o.backend.into(),
        architecture: spec.architecture(),
        train: spec.train.clone(),
        experiments: spec.experiments.clone(),
        epoch_loss: progress.epoch_loss.clone(),
        epoch_test_accuracy: progress.epoch_test_accuracy.clone(),
        train_seconds: progress.train_seconds,
        experiment_seconds: o.experiment_seconds,
        layer_rotation: o
            .rotation_layers
            .iter()
            .enumerate()
            .map(|(i, layer)| LayerRotation { layer: layer.clone(), per_epoch: progress.layer_rotation.iter().map(|e| e.get(i).copied().unwrap_or(f64::NAN)).collect() })
            .collect(),
        settings: Some(spec.fingerprint()),
        spec: Some(spec.clone()),
    }
}

fn recording_summary(r: &Recorder, t: &TrainConfig) -> RecordingSummary {
    RecordingSummary { mode: t.mode, every_batches: t.every_batches, recordings: r.recordings, tracked_samples: r.items, note: t.mode.note() }
}

/// A layer's entry; without recorded signs its sign statistics are empty (null in the JSON).
fn layer_results(neurons: usize, signs: Option<&LayerSigns>, analysis: Option<&LayerAnalysis>) -> LayerResults {
    let a = analysis.cloned().unwrap_or(LayerAnalysis { zero_rank: f64::NAN, ..LayerAnalysis::default() });
    let empty = Histogram::empty(-1.0, 1.0, 20);
    LayerResults {
        neurons,
        avg_sign_histogram: signs.map_or(empty.clone(), |s| s.histogram.clone()),
        example_neuron: signs.map_or(0, |s| s.example_neuron),
        example_neuron_histogram: signs.map_or(empty, |s| s.example_histogram.clone()),
        outer_fraction: signs.map_or(f64::NAN, |s| s.outer_fraction),
        zero_percentile_rank: a.zero_rank,
        quantization: a.quantization,
        post_quantization: a.post_quantization,
        sliding_window: a.window,
        class_low_fraction_histogram: signs.map_or(Histogram::empty(0.0, 1.0, 20), |s| s.class_low_fraction.clone()),
        position_signs: signs.and_then(|s| s.position.clone()),
    }
}
