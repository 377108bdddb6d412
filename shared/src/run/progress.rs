//! Where a run stands between epochs: what a checkpoint stores beside the weights, the optimizer
//! and the recorder, and what a resumed session picks up.

use serde::{Deserialize, Serialize};

/// Where a run stands after a completed epoch: what a checkpoint stores beside the weights, the
/// optimizer and the recorder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training steps completed.
    pub step: u64,
    // Kept bit for bit through the file: a resumed run's results equal an uninterrupted run's.
    #[serde(with = "crate::json::exact::many")]
    pub epoch_loss: Vec<f64>,
    #[serde(with = "crate::json::exact::many")]
    pub epoch_test_accuracy: Vec<f64>,
    #[serde(with = "crate::json::exact::one")]
    pub train_seconds: f64,
    /// Per epoch, each weighted layer's rotation (see [`crate::rotation`]).
    #[serde(default, with = "crate::json::exact::rows")]
    pub layer_rotation: Vec<Vec<f64>>,
    /// The spec's training fingerprint ([`crate::run::RunSpec::training_fingerprint`]): resuming with other
    /// training settings is refused; other experiment settings are not.
    pub fingerprint: String,
    /// Which of two alternating sets of part files holds this checkpoint (the writer's concern).
    #[serde(default)]
    pub slot: u8,
}
