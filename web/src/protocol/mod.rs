//! What the page and the training worker say to each other. Messages travel as JSON strings
//! through `postMessage`; both sides only ever see these enums.

mod helper;
mod plan;
mod page_settings;

use hidden_neurons::backend::{BackendChoice, GpuAdapter};
use hidden_neurons::figures::NamedFigure;
use serde::{Deserialize, Serialize};

pub use helper::{HELPER_NAME, HelperInput, HelperOutput, Samples, Setup};
pub use plan::{CPU_BACKEND, Plan, plan};
pub use page_settings::*;

/// What the figures look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Index of the studied layer (0 = dense1).
    pub layer: usize,
    pub neuron: usize,
    /// Which recording figure 2's distribution panel shows; `None` follows the latest.
    pub recording: Option<usize>,
}

/// Page to worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerInput {
    /// Load a data set (dropping any run): the worker answers `DataLoaded` or `DataFailed`.
    Load { source: DataSource },
    /// Start training from scratch (a running one is dropped).
    Start { settings: Settings, view: View },
    Pause,
    Resume,
    /// Drop the model and everything recorded.
    Reset,
    /// Look at another layer, neuron or recording: the worker answers with fresh live figures.
    View { view: View },
    /// Run experiments 3 to 5 on the current model (pausing training while they run), on
    /// `workers` helper workers side by side (`None`: as many as the browser reports cores, up
    /// to [`MAX_WORKERS`]; 1 or fewer: in the training worker alone).
    Analyze {
        #[serde(default)]
        workers: Option<usize>,
    },
    /// results.json of the current state, answered with [`WorkerOutput::Results`].
    Export,
    /// Train a fresh `model` (ReLU) for `steps` batches on `backend` and report the speed
    /// (nothing is kept).
    Bench {
        steps: usize,
        batch_size: usize,
        recording: bool,
        #[serde(default)]
        backend: BackendChoice,
        #[serde(default)]
        model: ModelKind,
    },
}

/// Most helper workers an analysis starts. Each holds its own copy of the model, the data and
/// the largest unit's working set (on a phone with 8 cores, memory runs out before cores do),
/// and beyond three the CNN's costliest unit (conv1's quantization, about a third of its
/// analysis) bounds the time anyway.
pub const MAX_WORKERS: usize = 3;

/// Where the worker finds a data set's four IDX files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// Served by the page's origin under MNIST's file names.
    Served { data: DataChoice },
    /// Files the user gave the page: each file's own name and an object URL the worker can
    /// fetch (`URL.createObjectURL`), in any order.
    Files { files: Vec<(String, String)> },
}

impl DataSource {
    pub fn choice(&self) -> DataChoice {
        match self {
            DataSource::Served { data } => *data,
            DataSource::Files { .. } => DataChoice::Own,
        }
    }
}

/// One point of the training curves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressPoint {
    pub step: u64,
    pub total_steps: u64,
    /// Fractional epoch (1.0 = one pass over the training set).
    pub epoch: f64,
    /// Mean training loss since the previous point.
    pub loss: f64,
    /// Training accuracy of the batches since the previous point.
    pub train_accuracy: f64,
    /// Set at the end of each epoch.
    pub test_accuracy: Option<f64>,
    /// Training throughput since the previous point (recordings included, evaluation excluded).
    pub samples_per_second: f64,
    /// Layer rotation: per weighted layer, the cosine distance of its weights to their start.
    #[serde(default)]
    pub rotation: Vec<(String, f64)>,
}

/// Figures that grow while the network trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub step: u64,
    pub recordings: usize,
    pub view: View,
    /// Names and widths of the studied layers.
    pub layers: Vec<(String, usize)>,
    /// Tracked samples (rows of the sign counts).
    pub tracked: usize,
    /// (sample, neuron) pairs of the viewed layer with a defined average sign (at least one
    /// nonzero gradient), i.e. what figure 5's counts sum to.
    pub defined_pairs: u64,
    /// Figure 1: the viewed neuron.
    pub fig1: NamedFigure,
    /// Figure 5: the viewed layer.
    pub fig5: NamedFigure,
    /// Figure 2: the viewed neuron's pre-activations over training, when it is traced.
    pub fig2: Option<NamedFigure>,
    /// The viewed neuron's pre-activations at the scrubbed recording, split by category.
    pub fig2_at: Option<NamedFigure>,
    /// Neurons of the viewed layer whose pre-activations are traced (figure 2 exists for them).
    pub traced: Vec<usize>,
    /// Per neuron of the viewed layer: the share of its defined samples with |avg sign| >= 0.8.
    pub neuron_outer_fraction: Vec<f64>,
}

/// Worker to page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerOutput {
    /// The worker runs and listens; `webgpu` is the browser's WebGPU adapter, if any.
    Ready { webgpu: Option<GpuAdapter> },
    /// The backend a run started on ([`plan`]'s, or the CPU when WebGPU failed to start).
    Backend { name: String, note: String },
    /// A data set is loaded and checked; `name` says which (own files: their names).
    DataLoaded { data: DataChoice, name: String, train: usize, test: usize },
    /// The data set could not be loaded or does not fit the page's models. `kept`: the worker
    /// still holds the data it had (and its run goes on), as after a bad drop of own files;
    /// otherwise the page stays without data until another one loads.
    DataFailed {
        data: DataChoice,
        message: String,
        #[serde(default)]
        kept: bool,
    },
    Progress { point: ProgressPoint },
    Live { live: Box<Live> },
    Paused,
    Resumed,
    /// Training ended (all epochs done).
    Trained { test_accuracy: f64, seconds: f64 },
    AnalysisProgress { done: usize, total: usize, what: String },
    /// Figures 3, 4 and 8; `workers`: the helper workers that ran experiments (0: the training
    /// worker ran them all), `seconds` the experiments took.
    Analysis {
        figures: Vec<NamedFigure>,
        #[serde(default)]
        workers: usize,
        #[serde(default)]
        seconds: f64,
    },
    Results { json: String },
    BenchResult { backend: String, model: String, steps: usize, batch_size: usize, recording: bool, seconds: f64, samples_per_second: f64 },
    Reset,
    /// Something went wrong; the text is shown to the user as is.
    Error { message: String },
    /// The run hit an error it cannot go on from (a diverged loss, a lost GPU device): it is
    /// over, and the page says why.
    Stopped { message: String },
}

impl WorkerInput {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages serialize")
    }
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

impl WorkerOutput {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages serialize")
    }
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_reject_garbage() {
        let inputs = [
            WorkerInput::Start { settings: Settings::default(), view: View { layer: 1, neuron: 7, recording: Some(3) } },
            WorkerInput::Pause,
            WorkerInput::Analyze { workers: Some(2) },
            WorkerInput::Bench { steps: 50, batch_size: 128, recording: true, backend: BackendChoice::Cpu, model: ModelKind::Cnn },
        ];
        for m in inputs {
            assert_eq!(WorkerInput::from_json(&m.to_json()).unwrap(), m);
        }
        let out = WorkerOutput::Error { message: "data/mnist: bad magic".into() };
        assert_eq!(WorkerOutput::from_json(&out.to_json()).unwrap(), out);
        assert!(WorkerInput::from_json(r#"{"type":"explode"}"#).is_err());
        // What `window.hnSend` scripts written before the pool still send.
        assert_eq!(WorkerInput::from_json(r#"{"type":"analyze"}"#).unwrap(), WorkerInput::Analyze { workers: None });
        let ready = WorkerOutput::Ready { webgpu: Some(GpuAdapter { name: "SwiftShader".into(), api: "WebGPU".into(), software: true }) };
        assert_eq!(WorkerOutput::from_json(&ready.to_json()).unwrap(), ready);
    }
}
