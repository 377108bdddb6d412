//! `results.json`: every number a run produces for one model. The same schema is written by the
//! native trainer and exported by the web page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::experiments::{CentreAccuracy, ExperimentConfig, RankAccuracy};
use crate::figures::Histogram;
use crate::recording::RecordingMode;
use crate::train::TrainConfig;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// `mlp-relu`, `mlp-sigmoid`, ...
    pub model: String,
    pub dataset: String,
    pub preset: String,
    pub seed: u64,
    #[serde(with = "crate::json::opt_f64")]
    pub test_accuracy: f64,
    /// How the gradient signs were recorded; `None` for a network not trained here (ResNet50
    /// from pretrained weights) or one studied without signs.
    #[serde(default)]
    pub recording: Option<RecordingSummary>,
    /// Keyed by the paper's layer names.
    pub layers: BTreeMap<String, LayerResults>,
    /// Which burn backend ran, e.g. "flex (CPU)".
    pub backend: String,
    pub architecture: String,
    /// `None`: not trained here (pretrained weights studied as they are).
    #[serde(default)]
    pub train: Option<TrainConfig>,
    pub experiments: ExperimentConfig,
    /// Mean training loss of each epoch.
    #[serde(with = "crate::json::opt_f64s")]
    pub epoch_loss: Vec<f64>,
    /// Test accuracy after each epoch.
    #[serde(with = "crate::json::opt_f64s")]
    pub epoch_test_accuracy: Vec<f64>,
    #[serde(with = "crate::json::opt_f64")]
    pub train_seconds: f64,
    #[serde(with = "crate::json::opt_f64")]
    pub experiment_seconds: f64,
    /// Per weighted layer, its rotation (cosine distance to its initial weights) after each
    /// epoch; empty where not measured (the page).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_rotation: Vec<crate::rotation::LayerRotation>,
    /// The run's fingerprint (see [`crate::run::RunSpec::fingerprint`]; older versions wrote
    /// their settings in one line here): `--resume` keeps a finished model only when it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// Every setting that shaped these numbers, resolved (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::run::RunSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordingSummary {
    pub mode: RecordingMode,
    pub every_batches: usize,
    pub recordings: usize,
    /// Rows of the sign counts: tracked samples (tracked mode) or all training samples (online).
    pub tracked_samples: usize,
    /// How the signs were obtained, in words (dropout, batch-norm, ...).
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerResults {
    pub neurons: usize,
    /// 20 equal bins over [-1, 1] of all (sample, neuron) pairs with a defined average sign.
    pub avg_sign_histogram: Histogram,
    /// Figure 1's neuron and its histogram.
    pub example_neuron: usize,
    pub example_neuron_histogram: Histogram,
    /// Share of defined pairs with |average sign| >= 0.8.
    #[serde(with = "crate::json::opt_f64")]
    pub outer_fraction: f64,
    /// `null` when undefined (a layer without values).
    #[serde(with = "crate::json::opt_f64")]
    pub zero_percentile_rank: f64,
    /// Experiment 3 as the paper ran it: pre-activations quantized.
    pub quantization: Vec<RankAccuracy>,
    /// Experiment 3 after the activation function: each activation replaced by its side's mean
    /// activation. Empty where not run (the page, older runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_quantization: Vec<RankAccuracy>,
    pub sliding_window: Vec<CentreAccuracy>,
    /// Over (neuron, class) pairs: the fraction of the class's samples in the neuron's low
    /// category, 20 bins over [0, 1].
    pub class_low_fraction_histogram: Histogram,
    /// A conv layer's signs counted per position (`--conv-signs positions`), beside the
    /// per-channel ones above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_signs: Option<PositionSigns>,
}

/// Average signs of (sample, position, channel) triples: one sign per activation, as the paper
/// counts each position as an activation of the neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionSigns {
    /// Positions sampled per channel (a fixed, seeded choice per channel).
    pub positions_per_neuron: usize,
    /// 20 equal bins over [-1, 1] of all triples with a defined average sign.
    pub avg_sign_histogram: Histogram,
    /// Share of defined triples with |average sign| >= 0.8.
    #[serde(with = "crate::json::opt_f64")]
    pub outer_fraction: f64,
}

impl Results {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize")
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}
