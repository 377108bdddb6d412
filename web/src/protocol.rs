//! What the page and the training worker say to each other. Messages travel as JSON strings
//! through `postMessage`; both sides only ever see these enums.

use hidden_neurons::backend::{BackendChoice, GpuAdapter, decide};
use hidden_neurons::figures::NamedFigure;
use hidden_neurons::model::Activation;
use serde::{Deserialize, Serialize};

/// How to train: the user's controls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub activation: Activation,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Record the tracked set every this many batches.
    pub every_batches: usize,
    pub tracked_samples: usize,
    /// WebGPU or the CPU (see [`plan`]).
    #[serde(default)]
    pub backend: BackendChoice,
}

impl Default for Settings {
    /// One epoch of the paper's MLP with the paper's recording cadence.
    fn default() -> Self {
        Self { activation: Activation::Relu, epochs: 1, batch_size: 128, learning_rate: 1e-3, seed: 1, every_batches: 10, tracked_samples: 1000, backend: BackendChoice::Auto }
    }
}

impl Settings {
    /// The model's name in results.json and the native trainer (`mlp-relu`, `mlp-sigmoid`).
    pub fn model_id(&self) -> String {
        format!("mlp-{}", self.activation.suffix())
    }

    /// Clamps every field into a range the page can train (URLs can say anything).
    pub fn sanitized(mut self) -> Self {
        if self.activation == Activation::None {
            self.activation = Activation::Relu;
        }
        self.epochs = self.epochs.clamp(1, 50);
        self.batch_size = self.batch_size.clamp(1, 4096);
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            self.learning_rate = Settings::default().learning_rate;
        }
        self.every_batches = self.every_batches.clamp(1, 10_000);
        self.tracked_samples = self.tracked_samples.clamp(10, 10_000);
        self
    }
}

/// The CPU backend's name, as the page and results.json show it.
pub const CPU_BACKEND: &str = "ndarray (CPU, WebAssembly)";

/// Where a run trains: burn's wgpu backend on the browser's WebGPU, or ndarray on the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub webgpu: bool,
    /// For the page and results.json.
    pub name: String,
    /// Why, in one line for the user.
    pub note: String,
}

/// The one backend decision, made the same way on the page (to show it before training) and in
/// the worker (to act on it). `adapter` is what `navigator.gpu.requestAdapter()` gave.
pub fn plan(choice: BackendChoice, adapter: Option<&GpuAdapter>) -> Plan {
    let (webgpu, why) = decide(choice, adapter, "backend=", &format!("burn's {CPU_BACKEND} backend"));
    let name = match adapter {
        Some(a) if webgpu => format!("wgpu (WebGPU, {})", a.name),
        _ => CPU_BACKEND.to_string(),
    };
    let note = match (webgpu, adapter) {
        (true, _) => format!("{why}. Training runs on the GPU; the live figures and the analysis read its results back asynchronously and run on the CPU."),
        (false, None) => format!("No WebGPU adapter in this browser ({why})."),
        (false, Some(_)) => format!("WebGPU is there, but {why}."),
    };
    Plan { webgpu, name, note }
}

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
    /// Start training from scratch (a running one is dropped).
    Start { settings: Settings, view: View },
    Pause,
    Resume,
    /// Drop the model and everything recorded.
    Reset,
    /// Look at another layer, neuron or recording: the worker answers with fresh live figures.
    View { view: View },
    /// Run experiments 3 to 5 on the current model (pausing training while they run).
    Analyze,
    /// results.json of the current state, answered with [`WorkerOutput::Results`].
    Export,
    /// Train a fresh model for `steps` batches on `backend` and report the speed (nothing is kept).
    Bench {
        steps: usize,
        batch_size: usize,
        recording: bool,
        #[serde(default)]
        backend: BackendChoice,
    },
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
    DataLoaded { train: usize, test: usize },
    Progress { point: ProgressPoint },
    Live { live: Box<Live> },
    Paused,
    Resumed,
    /// Training ended (all epochs done).
    Trained { test_accuracy: f64, seconds: f64 },
    AnalysisProgress { done: usize, total: usize, what: String },
    /// Figures 3, 4 and 8.
    Analysis { figures: Vec<NamedFigure> },
    Results { json: String },
    BenchResult { backend: String, steps: usize, batch_size: usize, recording: bool, seconds: f64, samples_per_second: f64 },
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
            WorkerInput::Bench { steps: 50, batch_size: 128, recording: true, backend: BackendChoice::Cpu },
        ];
        for m in inputs {
            assert_eq!(WorkerInput::from_json(&m.to_json()).unwrap(), m);
        }
        let out = WorkerOutput::Error { message: "data/mnist: bad magic".into() };
        assert_eq!(WorkerOutput::from_json(&out.to_json()).unwrap(), out);
        assert!(WorkerInput::from_json(r#"{"type":"explode"}"#).is_err());
        let ready = WorkerOutput::Ready { webgpu: Some(GpuAdapter { name: "SwiftShader".into(), api: "WebGPU".into(), software: true }) };
        assert_eq!(WorkerOutput::from_json(&ready.to_json()).unwrap(), ready);
    }

    #[test]
    fn settings_from_before_the_backend_choice_still_read() {
        let mut json: serde_json::Value = serde_json::to_value(Settings::default()).unwrap();
        json.as_object_mut().unwrap().remove("backend");
        let s: Settings = serde_json::from_value(json).unwrap();
        assert_eq!(s.backend, BackendChoice::Auto);
    }

    #[test]
    fn the_plan_names_the_backend_and_says_why() {
        let real = GpuAdapter { name: "NVIDIA H100".into(), api: "WebGPU".into(), software: false };
        let soft = GpuAdapter { name: "SwiftShader".into(), api: "WebGPU".into(), software: true };
        let p = plan(BackendChoice::Auto, Some(&real));
        assert!(p.webgpu && p.name.contains("WebGPU") && p.name.contains("H100"), "{p:?}");
        let p = plan(BackendChoice::Auto, Some(&soft));
        assert!(!p.webgpu && p.name == CPU_BACKEND && p.note.contains("WebGPU") && p.note.contains("software"), "{p:?}");
        let p = plan(BackendChoice::Auto, None);
        assert!(!p.webgpu && p.note.contains("No WebGPU"), "{p:?}");
        assert!(plan(BackendChoice::Wgpu, Some(&soft)).webgpu);
        assert!(!plan(BackendChoice::Cpu, Some(&real)).webgpu);
    }

    #[test]
    fn sanitize_clamps_what_a_url_can_say() {
        let s = Settings { activation: Activation::None, epochs: 0, batch_size: 0, learning_rate: f64::NAN, seed: 3, every_batches: 0, tracked_samples: 1, backend: BackendChoice::Cpu }
            .sanitized();
        assert_eq!(s.activation, Activation::Relu);
        assert_eq!((s.epochs, s.batch_size, s.every_batches, s.tracked_samples), (1, 1, 1, 10));
        assert_eq!(s.learning_rate, 1e-3);
        assert_eq!(s.seed, 3);
    }
}
