//! What the training worker and the helper workers it starts for an analysis say to each other
//! (a pool of workers: the analysis' units run side by side on the machine's cores, without
//! the cross-origin isolation that WebAssembly threads need). The first message carries the
//! model and the data, so these travel as CBOR bytes, not JSON text.

use hidden_neurons::data::{Dataset, Normalization};
use hidden_neurons::run::{RunSpec, Unit, UnitResult};
use serde::{Deserialize, Serialize};

/// The name a helper is started with (`WorkerOptions.name`): it tells the worker binary to
/// serve its parent worker instead of the page.
pub const HELPER_NAME: &str = "hidden-neurons-analysis-helper";

/// Training worker to helper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HelperInput {
    /// What every unit reads; sent once, before any unit.
    Setup(Box<Setup>),
    /// Run one unit, then answer [`HelperOutput::Done`] or [`HelperOutput::Failed`].
    Unit(Unit),
}

/// The trained model and the data of an analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The run's spec: the network to build and the experiments' settings.
    pub spec: RunSpec,
    pub norm: Normalization,
    /// The trained model's parameters and batch-norm statistics (a burnpack `ModuleRecord`).
    #[serde(with = "serde_bytes")]
    pub model: Vec<u8>,
    /// The first training samples: as many as the statistics or the retraining set takes.
    pub train: Samples,
    pub test: Samples,
}

/// A [`Dataset`] on its way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    pub features: usize,
    #[serde(with = "serde_bytes")]
    pub images: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub labels: Vec<u8>,
}

impl From<Dataset> for Samples {
    fn from(d: Dataset) -> Self {
        Self { features: d.features, images: d.images, labels: d.labels }
    }
}

impl Samples {
    /// The dataset, refused if its parts disagree (a message that is not ours).
    pub fn into_dataset(self) -> Result<Dataset, String> {
        if self.features == 0 || self.images.len() != self.labels.len() * self.features {
            return Err(format!("{} image bytes for {} labels of {} features", self.images.len(), self.labels.len(), self.features));
        }
        Ok(Dataset { features: self.features, images: self.images, labels: self.labels })
    }
}

/// Helper to training worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HelperOutput {
    /// The helper listens (sent once, at its start): it is sent the [`Setup`].
    Ready,
    /// The model and data are in: units may come.
    SetUp,
    /// One experiment of `unit` is done.
    Tick { unit: Unit, what: String },
    Done { unit: Unit, result: UnitResult },
    /// `unit` could not run: the error the analysis as a whole would have ended with. Without a
    /// unit: the helper itself failed (its setup, a message it could not read); it is dropped
    /// and the others do its share.
    Failed { unit: Option<Unit>, message: String },
}

fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR into memory cannot fail");
    out
}

fn from_cbor<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|e| e.to_string())
}

impl HelperInput {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_cbor(self)
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        from_cbor(bytes)
    }
}

impl HelperOutput {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_cbor(self)
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        from_cbor(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hidden_neurons::experiments::RankAccuracy;
    use hidden_neurons::run::Part;

    #[test]
    fn helper_messages_round_trip_and_reject_garbage() {
        let spec = crate::protocol::Settings::default().spec_unchecked();
        let train = Samples { features: 2, images: vec![0, 255, 7, 9], labels: vec![1, 2] };
        let setup = Setup { spec, norm: Normalization { channels: 1, mean: [0.1; 3], std: [0.3; 3] }, model: vec![1, 2, 3], train: train.clone(), test: train };
        let unit = Unit { layer: 1, part: Part::Quantization };
        for m in [HelperInput::Setup(Box::new(setup)), HelperInput::Unit(unit)] {
            assert_eq!(HelperInput::from_bytes(&m.to_bytes()).unwrap(), m);
        }
        let rank = |a: f64| RankAccuracy { rank: 10.0, test_accuracy: a, same_side_share: Some(0.5) };
        assert_eq!(HelperOutput::from_bytes(&HelperOutput::SetUp.to_bytes()).unwrap(), HelperOutput::SetUp);
        let done = HelperOutput::Done { unit, result: UnitResult::Quantization { pre: vec![rank(0.9)], post: vec![rank(0.8)] } };
        assert_eq!(HelperOutput::from_bytes(&done.to_bytes()).unwrap(), done);
        // A missing accuracy (NaN) travels as one: it is not a number to compare equal.
        match HelperOutput::from_bytes(&HelperOutput::Done { unit, result: UnitResult::ZeroRank(f64::NAN) }.to_bytes()).unwrap() {
            HelperOutput::Done { result: UnitResult::ZeroRank(r), .. } => assert!(r.is_nan()),
            other => panic!("{other:?}"),
        }
        assert!(HelperInput::from_bytes(b"not cbor at all").is_err());
        assert!(HelperOutput::from_bytes(&[]).is_err());
        let bad = Samples { features: 3, images: vec![0; 5], labels: vec![1, 2] };
        assert!(bad.into_dataset().unwrap_err().contains("5 image bytes for 2 labels"));
    }
}
