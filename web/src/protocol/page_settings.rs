//! The page's training settings (the form's values, as the URL keeps them) and the page's own
//! limits inside the shared ones: what a browser tab trains in reasonable time and memory.

use hidden_neurons::backend::BackendChoice;
use hidden_neurons::experiments::ExperimentConfig;
use hidden_neurons::model::{Activation, CnnConfig, MNIST_WIDTHS, MlpConfig, MlpOrCnn};
use hidden_neurons::run::{Family, ModelId, Overrides, Preset, RunSpec};
use hidden_neurons::settings::{self, Footprint, Setting, SettingError};
use hidden_neurons::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Neurons per layer whose pre-activations are traced for figure 2 (memory: tracked x traced x
/// 4 bytes per layer and recording).
pub const TRACED: usize = hidden_neurons::run::spec::BROWSER_TRACED;
/// MNIST's training and test images (the page trains and evaluates on all of them).
pub const MNIST_TRAIN: usize = 60_000;
pub const MNIST_TEST: usize = 10_000;

/// The page's own ceilings, inside the shared ones of [`hidden_neurons::settings`]: what a
/// browser tab trains in reasonable time and memory.
pub const PAGE_MAX_EPOCHS: usize = 50;
pub const PAGE_MAX_BATCH: usize = 4096;
pub const PAGE_MAX_LEARNING_RATE: f64 = 1.0;
pub const PAGE_MAX_EVERY: usize = 10_000;
/// Fewer tracked samples make figures 1 and 5 meaningless.
pub const PAGE_MIN_TRACKED: usize = 10;
pub const PAGE_MAX_TRACKED: usize = 10_000;
/// What a run may take of the worker's WebAssembly memory (4 GiB at most, MNIST and burn's own
/// buffers besides).
pub const PAGE_MEMORY: u64 = 2 << 30;
/// Most steps of one benchmark.
pub const MAX_BENCH_STEPS: usize = 10_000;

/// Which network the page trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The paper's MLP 784-512-512-10 with dropout.
    #[default]
    Mlp,
    /// A small CNN: three conv 3x3 layers with batch-norm ([`CnnConfig::mnist_small`]).
    Cnn,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [ModelKind::Mlp, ModelKind::Cnn];

    /// In the URL (`model=`) and results.json's model name.
    pub fn id(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.id() == s)
    }

    /// Studied layers (the URL's `layer=` is one of them).
    pub fn layers(self) -> usize {
        match self {
            ModelKind::Mlp => MNIST_WIDTHS.len(),
            ModelKind::Cnn => CnnConfig::mnist_small(Activation::Relu).conv_layers().len(),
        }
    }

    /// In the form.
    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Mlp => "MLP 784-512-512-10 (the paper's)",
            ModelKind::Cnn => "CNN, 3 conv layers (8-16-32)",
        }
    }
}

/// Which data a run trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataChoice {
    #[default]
    Mnist,
    /// Fetched on demand from the page's own origin.
    FashionMnist,
    /// Four IDX files the user drops onto the page (nothing leaves the browser).
    Own,
}

impl DataChoice {
    pub const ALL: [DataChoice; 3] = [DataChoice::Mnist, DataChoice::FashionMnist, DataChoice::Own];

    /// In the URL (`data=`).
    pub fn id(self) -> &'static str {
        match self {
            DataChoice::Mnist => "mnist",
            DataChoice::FashionMnist => "fashion-mnist",
            DataChoice::Own => "own",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.id() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            DataChoice::Mnist => "MNIST",
            DataChoice::FashionMnist => "Fashion-MNIST",
            DataChoice::Own => "your own IDX files",
        }
    }

    /// Where the page serves it (the four files under MNIST's names); `None` for own files.
    pub fn served_dir(self) -> Option<&'static str> {
        match self {
            DataChoice::Mnist => Some("data/mnist"),
            DataChoice::FashionMnist => Some("data/fashion-mnist"),
            DataChoice::Own => None,
        }
    }
}

/// How to train: the user's controls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub model: ModelKind,
    /// Which data set the run trains on (the worker loads it before a run starts).
    #[serde(default)]
    pub data: DataChoice,
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
        Self { model: ModelKind::Mlp, data: DataChoice::Mnist, activation: Activation::Relu, epochs: 1, batch_size: 128, learning_rate: 1e-3, seed: 1, every_batches: 10, tracked_samples: 1000, backend: BackendChoice::Auto }
    }
}

impl Settings {
    /// The model in the page's URL (`mlp-relu`, `cnn-sigmoid`); results.json names the network
    /// by its id in the run pipeline (`mnist-cnn-sigmoid`).
    pub fn model_id(&self) -> String {
        format!("{}-{}", self.model.id(), self.activation.suffix())
    }

    /// The network these settings train, freshly initialised on `device`.
    pub fn build_model(&self, device: &burn::tensor::Device) -> MlpOrCnn {
        self.spec_unchecked().network.mlp_or_cnn(device).expect("the page trains MLPs and CNNs")
    }

    pub fn mlp_config(&self) -> MlpConfig {
        MlpConfig::mnist(self.activation, MNIST_WIDTHS.to_vec())
    }

    pub fn cnn_config(&self) -> CnnConfig {
        CnnConfig::mnist_small(self.activation)
    }

    /// The studied layers' names and widths, before a model exists.
    pub fn layer_names(&self) -> Vec<(String, usize)> {
        match self.model {
            ModelKind::Mlp => {
                let c = self.mlp_config();
                c.hidden.iter().enumerate().map(|(i, &w)| (format!("dense{}-{}", i + c.first_index, self.activation.suffix()), w)).collect()
            }
            ModelKind::Cnn => self.cnn_config().conv_layers().into_iter().map(|c| (c.name, c.c_out)).collect(),
        }
    }

    /// The architecture in words, for results.json and the report.
    pub fn architecture(&self) -> String {
        self.spec_unchecked().architecture()
    }

    /// The run these settings describe: the `browser` preset of the shared run pipeline with the
    /// form's values (tracked recording, figure 2's traced neurons), without the data's name and
    /// sizes yet. Unchecked: the page's own ranges ([`Settings::validate`]) lie inside the shared
    /// ones, and the worker validates what it is sent before it starts a run.
    pub fn spec_unchecked(&self) -> RunSpec {
        let overrides = Overrides {
            epochs: Some(self.epochs),
            batch: Some(self.batch_size),
            learning_rate: Some(self.learning_rate),
            every: Some(self.every_batches),
            tracked: Some(self.tracked_samples),
            ..Overrides::default()
        };
        RunSpec::resolve_unchecked(self.model_kind_id(), Preset::Browser, self.seed, &overrides).expect("the page's networks have a browser preset")
    }

    /// The network's id in results.json (`mlp-relu`, `mnist-cnn-sigmoid`).
    fn model_kind_id(&self) -> ModelId {
        ModelId::new(
            match self.model {
                ModelKind::Mlp => Family::Mlp,
                ModelKind::Cnn => Family::MnistCnn,
            },
            self.activation,
        )
    }

    /// The training config the worker runs (see [`Settings::spec_unchecked`]).
    pub fn train_config(&self) -> TrainConfig {
        self.spec_unchecked().train.expect("the page trains")
    }

    /// Experiments 3 to 5 in the page: the `browser` preset (the CNN retrains its suffixes on
    /// fewer samples).
    pub fn experiment_config(&self) -> ExperimentConfig {
        self.spec_unchecked().experiments
    }

    /// Training steps of the whole run on `train` samples.
    pub fn total_steps_on(&self, train: usize) -> u64 {
        (train.div_ceil(self.batch_size.max(1)) as u64).saturating_mul(self.epochs as u64)
    }

    /// Training steps of the whole run on MNIST.
    pub fn total_steps(&self) -> u64 {
        self.total_steps_on(MNIST_TRAIN)
    }

    /// About how many bytes the run needs at its peak on `train` and `test` samples: the shared
    /// estimate (weights, sign counts, a batch, the analysis) plus figure 2's traced
    /// pre-activations, which every recording adds to for the rest of the run.
    pub fn memory_bytes_on(&self, train: usize, test: usize) -> u64 {
        let fp = match self.model {
            ModelKind::Mlp => Footprint::mlp(&self.mlp_config()),
            ModelKind::Cnn => Footprint::cnn(&self.cnn_config()),
        };
        let exp = self.experiment_config();
        let base = fp.bytes(self.batch_size, self.tracked_samples, exp.stats_samples + exp.retrain_samples + test);
        let recordings = settings::recordings(self.total_steps_on(train), self.every_batches);
        base.saturating_add(fp.trace_bytes(recordings, self.tracked_samples, TRACED))
    }

    /// [`Settings::memory_bytes_on`] MNIST.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes_on(MNIST_TRAIN, MNIST_TEST)
    }

    /// The one check of the page's settings, in the form and in the worker: the shared
    /// validation ([`settings::check_train`]), then the page's own ceilings and its memory.
    /// [`page_message`] words the error for the user.
    pub fn validate(&self) -> Result<(), SettingError> {
        self.validate_on(MNIST_TRAIN, MNIST_TEST)
    }

    /// [`Settings::validate`] for a data set of `train` and `test` samples (own files).
    pub fn validate_on(&self, train: usize, test: usize) -> Result<(), SettingError> {
        settings::check_samples(train, test)?;
        settings::check_train(&self.train_config())?;
        within(Setting::Epochs, self.epochs, 1, PAGE_MAX_EPOCHS)?;
        within(Setting::Batch, self.batch_size, 1, PAGE_MAX_BATCH)?;
        if self.learning_rate > PAGE_MAX_LEARNING_RATE {
            return Err(SettingError::new(Setting::LearningRate, format!("{} is out of range", self.learning_rate)));
        }
        within(Setting::Every, self.every_batches, 1, PAGE_MAX_EVERY)?;
        within(Setting::Tracked, self.tracked_samples, PAGE_MIN_TRACKED, PAGE_MAX_TRACKED)?;
        settings::check_memory(self.memory_bytes_on(train, test), PAGE_MEMORY)
    }

    /// Clamps every field into a range the page can train (URLs can say anything): the result
    /// always passes [`Settings::validate`].
    pub fn sanitized(mut self) -> Self {
        if self.activation == Activation::None {
            self.activation = Activation::Relu;
        }
        self.epochs = self.epochs.clamp(1, PAGE_MAX_EPOCHS);
        self.batch_size = self.batch_size.clamp(1, PAGE_MAX_BATCH);
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= PAGE_MAX_LEARNING_RATE) {
            self.learning_rate = Settings::default().learning_rate;
        }
        self.every_batches = self.every_batches.clamp(1, PAGE_MAX_EVERY);
        self.tracked_samples = self.tracked_samples.clamp(PAGE_MIN_TRACKED, PAGE_MAX_TRACKED);
        // Too many recordings for the memory: record less often (the least visible change),
        // then track fewer samples.
        let fits = |s: &Settings| s.memory_bytes() <= PAGE_MEMORY;
        if !fits(&self) {
            let (mut lo, mut hi) = (self.every_batches, PAGE_MAX_EVERY);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if fits(&Settings { every_batches: mid, ..self.clone() }) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            self.every_batches = lo;
        }
        while !fits(&self) && self.tracked_samples > PAGE_MIN_TRACKED {
            self.tracked_samples = (self.tracked_samples / 2).max(PAGE_MIN_TRACKED);
        }
        while !fits(&self) && self.epochs > 1 {
            self.epochs /= 2;
        }
        self
    }
}

fn within(setting: Setting, value: usize, lo: usize, hi: usize) -> Result<(), SettingError> {
    if value < lo || value > hi {
        return Err(SettingError::new(setting, format!("{value} is out of range")));
    }
    Ok(())
}

/// The allowed values of a setting on this page, in words: the page's ceilings where it has
/// its own, else the shared range.
pub fn page_range(setting: Setting) -> String {
    match setting {
        Setting::Epochs => format!("1 to {PAGE_MAX_EPOCHS}"),
        Setting::Batch => format!("1 to {PAGE_MAX_BATCH}"),
        Setting::LearningRate => format!("a number above 0, at most {PAGE_MAX_LEARNING_RATE}"),
        Setting::Every => format!("1 to {PAGE_MAX_EVERY} batches"),
        Setting::Tracked => format!("{PAGE_MIN_TRACKED} to {PAGE_MAX_TRACKED}"),
        Setting::Memory => format!(
            "what fits in the page's {} GiB: fewer epochs, a larger batch, or fewer recordings or tracked samples (every=, tracked= in the URL)",
            PAGE_MEMORY >> 30
        ),
        other => other.range(),
    }
}

/// The message the page shows for a setting it refuses: [`SettingError::for_page`]'s wording,
/// with the page's own range (the shared one would allow a batch the page refuses).
pub fn page_message(e: &SettingError) -> String {
    format!("{}: {}; allowed: {}", e.setting.label(), e.problem, page_range(e.setting))
}

/// Checks a benchmark request (`window.hnSend`); the error is shown as is.
pub fn check_bench(steps: usize, batch_size: usize) -> Result<(), String> {
    if steps == 0 || steps > MAX_BENCH_STEPS {
        return Err(format!("bench steps: {steps} is out of range; allowed: 1 to {MAX_BENCH_STEPS}"));
    }
    within(Setting::Batch, batch_size, 1, PAGE_MAX_BATCH).map_err(|e| page_message(&e))
}

#[cfg(test)]
mod tests {
    use hidden_neurons::recording::RecordingMode;
    use super::*;
    use crate::protocol::{DataSource, WorkerInput};

    #[test]
    fn settings_from_before_the_backend_choice_still_read() {
        let mut json: serde_json::Value = serde_json::to_value(Settings::default()).unwrap();
        json.as_object_mut().unwrap().remove("backend");
        let s: Settings = serde_json::from_value(json).unwrap();
        assert_eq!(s.backend, BackendChoice::Auto);
    }
    #[test]
    fn sanitize_clamps_what_a_url_can_say() {
        let s = Settings { activation: Activation::None, epochs: 0, batch_size: 0, learning_rate: f64::NAN, seed: 3, every_batches: 0, tracked_samples: 1, backend: BackendChoice::Cpu, ..Settings::default() }
            .sanitized();
        assert_eq!(s.activation, Activation::Relu);
        assert_eq!((s.epochs, s.batch_size, s.every_batches, s.tracked_samples), (1, 1, 1, 10));
        assert_eq!(s.learning_rate, 1e-3);
        assert_eq!(s.seed, 3);
    }

    #[test]
    fn sanitized_settings_always_validate() {
        let lrs = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, f64::MIN_POSITIVE, 1e-3, 1.0, 1.5, 1e300, f64::MAX];
        for (a, activation) in [Activation::None, Activation::Relu, Activation::Sigmoid].into_iter().enumerate() {
            for (e, epochs) in [0, 1, 50, 51, 999_999, usize::MAX].into_iter().enumerate() {
                // Both models, alternating (the memory estimate differs, the ranges do not).
                let model = ModelKind::ALL[(a + e) % 2];
                for batch_size in [0, 1, 2, 128, 4096, 4097, usize::MAX] {
                    for learning_rate in lrs {
                        for every_batches in [0, 1, 10, 10_001, usize::MAX] {
                            for tracked_samples in [0, 1, 10, 1000, 10_000, 10_001, usize::MAX] {
                                let s = Settings { model, data: DataChoice::Mnist, activation, epochs, batch_size, learning_rate, seed: u64::MAX, every_batches, tracked_samples, backend: BackendChoice::Auto };
                                let clean = s.clone().sanitized();
                                assert_eq!(clean.validate(), Ok(()), "{s:?} -> {clean:?}");
                                assert_ne!(clean.activation, Activation::None);
                                // Values that were fine stay as they were, apart from a cadence that had to give way.
                                if s.validate().is_ok() && activation != Activation::None {
                                    assert_eq!(clean, s);
                                }
                            }
                        }
                    }
                }
            }
        }
        // The example of the brief: everything hostile at once.
        let s = Settings { epochs: 999_999, batch_size: 0, learning_rate: f64::NAN, tracked_samples: 0, ..Settings::default() }.sanitized();
        assert_eq!((s.epochs, s.batch_size, s.learning_rate, s.tracked_samples), (50, 1, 1e-3, 10));
        // Too many recordings: record less often.
        let s = Settings { batch_size: 1, epochs: 50, every_batches: 1, tracked_samples: 10_000, ..Settings::default() }.sanitized();
        assert!(s.every_batches > 1 && s.validate().is_ok(), "{s:?}");
    }

    #[test]
    fn validate_refuses_each_bad_field_by_name() {
        let ok = Settings::default();
        assert_eq!(ok.validate(), Ok(()));
        // The paper's cadence for the page's most epochs fits.
        assert_eq!(Settings { epochs: 50, ..ok.clone() }.validate(), Ok(()));
        let cases: Vec<(Settings, Setting, &str)> = vec![
            (Settings { epochs: 0, ..ok.clone() }, Setting::Epochs, "epochs: 0 is out of range; allowed: 1 to 50"),
            (Settings { epochs: 51, ..ok.clone() }, Setting::Epochs, "epochs: 51 is out of range; allowed: 1 to 50"),
            (Settings { epochs: usize::MAX, ..ok.clone() }, Setting::Epochs, "epochs: "),
            (Settings { batch_size: 0, ..ok.clone() }, Setting::Batch, "batch size: 0 is out of range; allowed: 1 to 4096"),
            (Settings { batch_size: 4097, ..ok.clone() }, Setting::Batch, "batch size: 4097 is out of range; allowed: 1 to 4096"),
            (Settings { batch_size: usize::MAX, ..ok.clone() }, Setting::Batch, "batch size: "),
            (Settings { learning_rate: f64::NAN, ..ok.clone() }, Setting::LearningRate, "learning rate: NaN is out of range; allowed: a number above 0, at most 1"),
            (Settings { learning_rate: f64::INFINITY, ..ok.clone() }, Setting::LearningRate, "learning rate: inf is out of range"),
            (Settings { learning_rate: 0.0, ..ok.clone() }, Setting::LearningRate, "learning rate: 0 is out of range"),
            (Settings { learning_rate: -0.1, ..ok.clone() }, Setting::LearningRate, "learning rate: -0.1 is out of range"),
            (Settings { learning_rate: 2.0, ..ok.clone() }, Setting::LearningRate, "learning rate: 2 is out of range; allowed: a number above 0, at most 1"),
            (Settings { every_batches: 0, ..ok.clone() }, Setting::Every, "record every: 0 is out of range; allowed: 1 to 10000 batches"),
            (Settings { every_batches: 10_001, ..ok.clone() }, Setting::Every, "record every: 10001 is out of range"),
            (Settings { tracked_samples: 0, ..ok.clone() }, Setting::Tracked, "tracked samples: 0 is out of range; allowed: 10 to 10000"),
            (Settings { tracked_samples: 9, ..ok.clone() }, Setting::Tracked, "tracked samples: 9 is out of range"),
            (Settings { tracked_samples: 10_001, ..ok.clone() }, Setting::Tracked, "tracked samples: 10001 is out of range"),
            (Settings { epochs: 50, batch_size: 1, every_batches: 1, tracked_samples: 10_000, ..ok.clone() }, Setting::Memory, "memory: these sizes need about"),
        ];
        for (s, setting, expected) in cases {
            let e = s.validate().unwrap_err();
            assert_eq!(e.setting, setting, "{s:?}: {e}");
            let message = page_message(&e);
            assert!(message.starts_with(expected) && message.contains("; allowed: "), "{message}");
        }
    }

    #[test]
    fn the_worker_trains_what_the_form_shows() {
        let s = Settings { epochs: 3, batch_size: 64, learning_rate: 0.01, seed: 9, every_batches: 5, tracked_samples: 300, ..Settings::default() };
        let cfg = s.train_config();
        assert_eq!((cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.seed), (3, 64, 0.01, 9));
        assert_eq!((cfg.mode, cfg.every_batches, cfg.tracked_samples, cfg.snapshot_neurons), (RecordingMode::Tracked, 5, 300, TRACED));
        assert_eq!(s.total_steps(), 3 * 938);
    }

    #[test]
    fn model_and_data_choices_read_and_build() {
        for m in ModelKind::ALL {
            assert_eq!(ModelKind::parse(m.id()), Some(m));
        }
        for d in DataChoice::ALL {
            assert_eq!(DataChoice::parse(d.id()), Some(d));
        }
        assert_eq!(DataChoice::parse("cifar"), None);
        let cnn = Settings { model: ModelKind::Cnn, ..Settings::default() };
        assert_eq!(cnn.model_id(), "cnn-relu");
        assert!(cnn.architecture().starts_with("CNN on 28x28: 3 conv"), "{}", cnn.architecture());
        use hidden_neurons::model::TappedModel;
        let layers = cnn.build_model(&burn::tensor::Device::flex()).layers();
        assert_eq!(layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["conv1-relu", "conv2-relu", "conv3-relu"]);
        assert_eq!(cnn.layer_names(), layers.iter().map(|l| (l.name.clone(), l.neurons)).collect::<Vec<_>>());
        let mlp = Settings::default();
        let built = mlp.build_model(&burn::tensor::Device::flex()).layers();
        assert_eq!(mlp.layer_names(), built.iter().map(|l| (l.name.clone(), l.neurons)).collect::<Vec<_>>());
        // Settings saved before the model and data choices still read, as the MLP on MNIST.
        let old = r#"{"activation":"relu","epochs":1,"batch_size":128,"learning_rate":0.001,"seed":1,"every_batches":10,"tracked_samples":1000}"#;
        let s: Settings = serde_json::from_str(old).unwrap();
        assert_eq!((s.model, s.data), (ModelKind::Mlp, DataChoice::Mnist));
        let load = WorkerInput::Load { source: DataSource::Files { files: vec![("a".into(), "blob:x".into())] } };
        assert_eq!(WorkerInput::from_json(&load.to_json()).unwrap(), load);
    }

    #[test]
    fn own_data_is_checked_against_its_own_size() {
        let s = Settings::default();
        assert_eq!(s.validate_on(100, 10), Ok(()));
        assert_eq!(s.validate_on(0, 10).unwrap_err().setting, Setting::TrainSamples);
        assert_eq!(s.validate_on(100, 0).unwrap_err().setting, Setting::TestSamples);
        // A set ten times MNIST's records ten times as often over an epoch: the page's memory refuses the
        // paper cadence at 50 epochs there, while it takes it on MNIST.
        let long = Settings { epochs: 50, ..s };
        assert_eq!(long.validate(), Ok(()));
        assert_eq!(long.validate_on(600_000, 10_000).unwrap_err().setting, Setting::Memory);
        assert_eq!(long.total_steps_on(600_000), 50 * 600_000u64.div_ceil(128));
    }

    #[test]
    fn bench_requests_are_checked() {
        assert_eq!(check_bench(60, 128), Ok(()));
        assert!(check_bench(0, 128).unwrap_err().starts_with("bench steps: 0 is out of range"));
        assert!(check_bench(MAX_BENCH_STEPS + 1, 128).is_err());
        assert!(check_bench(60, 0).unwrap_err().starts_with("batch size: 0 is out of range; allowed: 1 to 4096"));
        assert!(check_bench(60, usize::MAX).is_err());
    }
}
