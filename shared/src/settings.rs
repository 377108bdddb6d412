//! One validation layer for the settings of a run, shared by the native trainer's flags and the
//! web page's form: every value is checked here before anything is allocated, so a setting that
//! makes no sense is a one-line error that names it and its allowed range, never a panic deep
//! inside burn or an allocation abort.

use crate::experiments::ExperimentConfig;
use crate::model::{CnnConfig, MlpConfig, ResNetConfig};
use crate::train::TrainConfig;

/// Most epochs of training.
pub const MAX_EPOCHS: usize = 10_000;
/// Largest batch.
pub const MAX_BATCH: usize = 65_536;
/// Largest recording cadence.
pub const MAX_EVERY: usize = 1_000_000;
/// Most tracked samples (their sign counts live on the device, per neuron).
pub const MAX_TRACKED: usize = 100_000;
/// Largest learning rate.
pub const MAX_LEARNING_RATE: f64 = 10.0;
/// Most hidden layers of an MLP.
pub const MAX_MLP_LAYERS: usize = 16;
/// Widest hidden layer of an MLP.
pub const MAX_MLP_WIDTH: usize = 65_536;
/// Widest stage of a CNN.
pub const MAX_CNN_WIDTH: usize = 8_192;
/// Most retraining epochs of the sliding-window experiment.
pub const MAX_RETRAIN_EPOCHS: usize = 1_000;

/// A setting the user controls, by its name on the command line and in the page's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Epochs,
    Batch,
    LearningRate,
    Every,
    Tracked,
    Hidden,
    CertaintyEpsilon,
    TrainSamples,
    TestSamples,
    RetrainSamples,
    RetrainEpochs,
    StopAfter,
    LabelSmoothing,
    WeightDecay,
    /// Which preset a model is resolved with.
    Preset,
    Init,
    /// Not a flag of its own: the memory all the sizes above add up to.
    Memory,
}

impl Setting {
    /// The trainer's flag.
    pub fn flag(self) -> &'static str {
        match self {
            Setting::Epochs => "--epochs",
            Setting::Batch => "--batch",
            Setting::LearningRate => "--learning-rate",
            Setting::Every => "--every",
            Setting::Tracked => "--tracked",
            Setting::Hidden => "--hidden",
            Setting::CertaintyEpsilon => "--certainty-epsilon",
            Setting::TrainSamples => "--train-samples",
            Setting::TestSamples => "--test-samples",
            Setting::RetrainSamples => "--retrain-samples",
            Setting::RetrainEpochs => "--retrain-epochs",
            Setting::StopAfter => "--stop-after",
            Setting::LabelSmoothing => "--label-smoothing",
            Setting::WeightDecay => "--weight-decay",
            Setting::Preset => "--preset",
            Setting::Init => "--init",
            Setting::Memory => "--hidden/--batch/--tracked",
        }
    }

    /// The page's name for it.
    pub fn label(self) -> &'static str {
        match self {
            Setting::Epochs => "epochs",
            Setting::Batch => "batch size",
            Setting::LearningRate => "learning rate",
            Setting::Every => "record every",
            Setting::Tracked => "tracked samples",
            Setting::Hidden => "widths",
            Setting::CertaintyEpsilon => "certainty epsilon",
            Setting::TrainSamples => "training samples",
            Setting::TestSamples => "test samples",
            Setting::RetrainSamples => "retraining samples",
            Setting::RetrainEpochs => "retraining epochs",
            Setting::StopAfter => "stop after",
            Setting::LabelSmoothing => "label smoothing",
            Setting::WeightDecay => "weight decay",
            Setting::Preset => "preset",
            Setting::Init => "initialisation",
            Setting::Memory => "memory",
        }
    }

    /// The allowed values, in words (also what `--help` says).
    pub fn range(self) -> String {
        match self {
            Setting::Epochs => format!("1 to {MAX_EPOCHS}"),
            Setting::Batch => format!("1 to {MAX_BATCH}"),
            Setting::LearningRate => format!("a number above 0, at most {MAX_LEARNING_RATE}"),
            Setting::Every => format!("1 to {MAX_EVERY} batches"),
            Setting::Tracked => format!("1 to {MAX_TRACKED}"),
            Setting::Hidden => format!(
                "MLP: 1 to {MAX_MLP_LAYERS} widths of 1 to {MAX_MLP_WIDTH}; CNN: one width of 1 to {MAX_CNN_WIDTH} per stage, at most one stage more than the image side has halvings (6 for 32x32)"
            ),
            Setting::CertaintyEpsilon => "0 (off) or a number below 1".into(),
            Setting::TrainSamples | Setting::TestSamples | Setting::RetrainSamples => "at least 1".into(),
            Setting::RetrainEpochs => format!("1 to {MAX_RETRAIN_EPOCHS}"),
            Setting::StopAfter => "at least 1".into(),
            Setting::LabelSmoothing => "0 (off) or a number below 1; not with --recording online".into(),
            Setting::WeightDecay => "0 (off), or a number above 0 and at most 1 with --optimizer sgd or nesterov".into(),
            Setting::Preset => "paper, fast, cpu (CIFAR) or browser (the page), as the model has them".into(),
            Setting::Init => "burn or keras (MLPs and CNNs)".into(),
            Setting::Memory => "what fits in this machine's memory".into(),
        }
    }
}

/// A setting outside its allowed range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{flag}: {problem}; allowed: {range}", flag = .setting.flag(), range = .setting.range())]
pub struct SettingError {
    pub setting: Setting,
    pub problem: String,
}

impl SettingError {
    pub fn new(setting: Setting, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }

    /// The message the page shows beside its form.
    pub fn for_page(&self) -> String {
        format!("{}: {}; allowed: {}", self.setting.label(), self.problem, self.setting.range())
    }
}

fn in_range(setting: Setting, value: usize, lo: usize, hi: usize) -> Result<(), SettingError> {
    if value < lo || value > hi {
        return Err(SettingError::new(setting, format!("{value} is out of range")));
    }
    Ok(())
}

/// Training and recording settings.
pub fn check_train(cfg: &TrainConfig) -> Result<(), SettingError> {
    in_range(Setting::Epochs, cfg.epochs, 1, MAX_EPOCHS)?;
    in_range(Setting::Batch, cfg.batch_size, 1, MAX_BATCH)?;
    check_learning_rate(cfg.learning_rate)?;
    in_range(Setting::Every, cfg.every_batches, 1, MAX_EVERY)?;
    in_range(Setting::Tracked, cfg.tracked_samples, 1, MAX_TRACKED)?;
    let e = cfg.certainty_epsilon;
    if !(e.is_finite() && (0.0..1.0).contains(&e)) {
        return Err(SettingError::new(Setting::CertaintyEpsilon, format!("{e} is not a number in [0, 1)")));
    }
    let a = cfg.label_smoothing;
    if !(a.is_finite() && (0.0..1.0).contains(&a)) {
        return Err(SettingError::new(Setting::LabelSmoothing, format!("{a} is not a number in [0, 1)")));
    }
    // Online recording reads its signs from the training loss: a smoothed one would change them.
    if a > 0.0 && cfg.mode == crate::recording::RecordingMode::Online {
        return Err(SettingError::new(Setting::LabelSmoothing, "online recording takes its signs from the training loss, which must then be plain cross-entropy"));
    }
    let d = cfg.weight_decay;
    if !(d.is_finite() && (0.0..=1.0).contains(&d)) {
        return Err(SettingError::new(Setting::WeightDecay, format!("{d} is out of range")));
    }
    if d > 0.0 && !cfg.optimizer.takes_weight_decay() {
        return Err(SettingError::new(Setting::WeightDecay, format!("the {} optimizer takes no weight decay here", cfg.optimizer.name())));
    }
    Ok(())
}

pub fn check_learning_rate(lr: f64) -> Result<(), SettingError> {
    if !(lr.is_finite() && lr > 0.0 && lr <= MAX_LEARNING_RATE) {
        return Err(SettingError::new(Setting::LearningRate, format!("{lr} is out of range")));
    }
    Ok(())
}

/// The test-time experiments' settings.
pub fn check_experiments(cfg: &ExperimentConfig) -> Result<(), SettingError> {
    if cfg.retrain_samples == 0 {
        return Err(SettingError::new(Setting::RetrainSamples, "0 samples cannot retrain anything"));
    }
    in_range(Setting::RetrainEpochs, cfg.retrain_epochs, 1, MAX_RETRAIN_EPOCHS)?;
    in_range(Setting::Batch, cfg.batch_size, 1, MAX_BATCH)?;
    check_learning_rate(cfg.learning_rate)?;
    // Ranks, centres and window width come from presets, not flags; a broken preset is a bug,
    // but it still gets a clear message rather than a panic.
    let ranks_ok = cfg.ranks.iter().chain(&cfg.centres).all(|r| r.is_finite() && (0.0..=100.0).contains(r));
    if !ranks_ok || cfg.stats_samples == 0 || !(cfg.window_width.is_finite() && cfg.window_width > 0.0) {
        return Err(SettingError::new(Setting::RetrainSamples, "the experiment preset has ranks outside 0-100, no statistics samples or an empty window"));
    }
    Ok(())
}

/// Hidden widths of an MLP.
pub fn check_mlp_widths(hidden: &[usize]) -> Result<(), SettingError> {
    if hidden.is_empty() || hidden.len() > MAX_MLP_LAYERS {
        return Err(SettingError::new(Setting::Hidden, format!("{} hidden layers", hidden.len())));
    }
    if let Some(w) = hidden.iter().find(|&&w| w == 0 || w > MAX_MLP_WIDTH) {
        return Err(SettingError::new(Setting::Hidden, format!("a hidden layer of width {w}")));
    }
    Ok(())
}

/// Most stages a CNN may have for images of `side` pixels: each stage after the first halves the
/// feature map, which must keep at least one pixel.
pub fn max_cnn_stages(side: usize) -> usize {
    (usize::BITS - side.max(1).leading_zeros()) as usize
}

/// Stage widths of a CNN for square images of `side` pixels.
pub fn check_cnn_widths(widths: &[usize], side: usize) -> Result<(), SettingError> {
    let max = max_cnn_stages(side);
    if widths.is_empty() || widths.len() > max {
        return Err(SettingError::new(
            Setting::Hidden,
            format!("{} stages: a {side}x{side} image has room for 1 to {max} (each stage after the first halves it)", widths.len()),
        ));
    }
    if let Some(w) = widths.iter().find(|&&w| w == 0 || w > MAX_CNN_WIDTH) {
        return Err(SettingError::new(Setting::Hidden, format!("a stage of width {w}")));
    }
    Ok(())
}

/// Sizes of a model that decide its memory, known before it is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Trainable parameters.
    pub params: u64,
    /// Neurons of all studied layers.
    pub neurons: u64,
    /// Activation values of one sample, all layers (neurons x positions).
    pub values_per_sample: u64,
    /// Activation values of one sample in the largest studied layer.
    pub largest_layer_values: u64,
    /// Studied layers.
    pub layers: u64,
}

impl Footprint {
    pub fn mlp(cfg: &MlpConfig) -> Self {
        let mut fp = Footprint::default();
        let mut prev = cfg.input as u64;
        for &w in &cfg.hidden {
            let w = w as u64;
            fp.add_layer(prev.saturating_mul(w).saturating_add(w), w, w);
            prev = w;
        }
        fp.add_head(prev, cfg.classes);
        fp
    }

    pub fn cnn(cfg: &CnnConfig) -> Self {
        let mut fp = Footprint::default();
        let mut prev = cfg.channels as u64;
        for c in cfg.conv_layers() {
            let (w, side) = (c.c_out as u64, c.side as u64);
            // 3x3 kernel, bias, batch-norm scale and shift.
            fp.add_layer((c.c_in as u64).saturating_mul(w).saturating_mul(9).saturating_add(3 * w), w, w.saturating_mul(side * side));
            prev = w;
        }
        fp.add_head(prev, cfg.classes);
        fp
    }

    /// A ResNet's studied layers (conv1 and each block's output); a block's parameters and
    /// activations include its inner convolutions, batch-norms and projection.
    pub fn resnet(cfg: &ResNetConfig) -> Self {
        let mut fp = Footprint::default();
        let w = cfg.width as u64;
        // conv1's stride, then the ImageNet stem's max-pool.
        let ((side1, stride), pool) = (cfg.stem.conv1(), cfg.stem.pool_stride() as u64);
        let (k, stride) = ((side1 * side1) as u64, stride as u64);
        let mut side = (cfg.side as u64).div_ceil(stride);
        fp.add_layer(3 * w * k + 2 * w, w, w.saturating_mul(side * side));
        let mut captured = w.saturating_mul(side * side);
        side = side.div_ceil(pool);
        let mut c_in = w;
        for (s, &n) in cfg.blocks.iter().enumerate() {
            let (mid, out) = (w << s, 4 * (w << s));
            for b in 0..n {
                if b == 0 && s > 0 {
                    side = side.div_ceil(2);
                }
                let projection = if b == 0 { c_in * out + 2 * out } else { 0 };
                let params = c_in * mid + 9 * mid * mid + mid * out + 2 * (2 * mid + out) + projection;
                // Training keeps two bottleneck maps, the output, and the projection's where there
                // is one; the experiments capture the output alone.
                let values = (2 * mid + out + if b == 0 { out } else { 0 }).saturating_mul(side * side);
                fp.add_layer(params, out, values);
                captured = captured.max(out.saturating_mul(side * side));
                c_in = out;
            }
        }
        fp.add_head(c_in, cfg.classes);
        fp.largest_layer_values = captured;
        fp
    }

    /// A studied layer of `neurons` with `params` parameters and `values` activations per sample.
    fn add_layer(&mut self, params: u64, neurons: u64, values: u64) {
        self.params = self.params.saturating_add(params);
        self.neurons = self.neurons.saturating_add(neurons);
        self.values_per_sample = self.values_per_sample.saturating_add(values);
        self.largest_layer_values = self.largest_layer_values.max(values);
        self.layers += 1;
    }

    /// The dense classifier on `inputs` features.
    fn add_head(&mut self, inputs: u64, classes: usize) {
        self.params = self.params.saturating_add(inputs.saturating_mul(classes as u64).saturating_add(classes as u64));
    }

    /// About how many bytes a run needs at its peak: weights with their gradients and Adam's two
    /// moments, the sign counts, a training batch's activations (forward and backward), and the
    /// experiments' captured pre-activations of the largest layer (statistics, retraining and test
    /// sets, with a binarized copy of each).
    pub fn bytes(&self, batch: usize, count_rows: usize, experiment_samples: usize) -> u64 {
        let f = 4u64;
        let weights = self.params.saturating_mul(4 * f);
        let counts = self.neurons.saturating_mul(count_rows as u64).saturating_mul(2 * f);
        let training = self.values_per_sample.saturating_mul(batch as u64).saturating_mul(6 * f);
        let experiments = self.largest_layer_values.saturating_mul(experiment_samples as u64).saturating_mul(2 * f);
        weights.saturating_add(counts).saturating_add(training).saturating_add(experiments)
    }

    /// What figure 2's traces add up to over a run: every recording keeps `traced` neurons' (at
    /// most) pre-activations of each layer for `tracked` samples until the run ends.
    pub fn trace_bytes(&self, recordings: u64, tracked: usize, traced: usize) -> u64 {
        recordings.saturating_mul(self.layers).saturating_mul(tracked as u64).saturating_mul(traced as u64).saturating_mul(4)
    }
}

/// Recordings of a run: one every `every` of its `steps` training steps, the first at step 0.
pub fn recordings(steps: u64, every: usize) -> u64 {
    steps.div_ceil(every.max(1) as u64)
}

/// Refuses a run whose estimated peak exceeds `budget` bytes.
pub fn check_memory(needed: u64, budget: u64) -> Result<(), SettingError> {
    if needed > budget {
        return Err(SettingError::new(
            Setting::Memory,
            format!("these sizes need about {} of memory, more than the {} available", gib(needed), gib(budget)),
        ));
    }
    Ok(())
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Values per MNIST image (28x28), what the MNIST models take.
pub const MNIST_VALUES: usize = 28 * 28;

/// What the MNIST models (both MLPs, the page's CNN) take, for [`check_image_values`].
pub const MNIST_TAKES: &str = "the MNIST models take 28x28 images (784 values)";

/// The data's images against what a model takes: `takes` says it in words ("the MNIST MLPs take
/// 28x28 images (784 values)"). The error gives the images' size, as a square where it is one.
pub fn check_image_values(values: usize, input: usize, takes: &str) -> Result<(), String> {
    if values == input {
        return Ok(());
    }
    let side = (values as f64).sqrt().round() as usize;
    let square = if side * side == values { format!(" ({side}x{side})") } else { String::new() };
    Err(format!("its images have {values} values each{square}; {takes}"))
}

/// Sample counts once the data is loaded (after `--train-samples`/`--test-samples`). More
/// tracked samples than training samples is fine: all of them are tracked.
pub fn check_samples(train: usize, test: usize) -> Result<(), SettingError> {
    if train == 0 {
        return Err(SettingError::new(Setting::TrainSamples, "no training samples to train on"));
    }
    if test == 0 {
        return Err(SettingError::new(Setting::TestSamples, "no test samples to evaluate on"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    #[test]
    fn every_bad_training_setting_names_its_flag() {
        let ok = TrainConfig::paper(1);
        assert_eq!(check_train(&ok), Ok(()));
        let cases: Vec<(TrainConfig, &str)> = vec![
            (TrainConfig { epochs: 0, ..ok.clone() }, "--epochs"),
            (TrainConfig { batch_size: 0, ..ok.clone() }, "--batch"),
            (TrainConfig { every_batches: 0, ..ok.clone() }, "--every"),
            (TrainConfig { tracked_samples: 0, ..ok.clone() }, "--tracked"),
            (TrainConfig { learning_rate: f64::NAN, ..ok.clone() }, "--learning-rate"),
            (TrainConfig { certainty_epsilon: f32::NAN, ..ok.clone() }, "--certainty-epsilon"),
            (TrainConfig { certainty_epsilon: f32::INFINITY, ..ok.clone() }, "--certainty-epsilon"),
            (TrainConfig { certainty_epsilon: 1.0, ..ok.clone() }, "--certainty-epsilon"),
            (TrainConfig { certainty_epsilon: -0.5, ..ok.clone() }, "--certainty-epsilon"),
            (TrainConfig { label_smoothing: 1.0, ..ok.clone() }, "--label-smoothing"),
            (TrainConfig { label_smoothing: f32::NAN, ..ok.clone() }, "--label-smoothing"),
            (TrainConfig { label_smoothing: 0.1, mode: crate::recording::RecordingMode::Online, ..ok.clone() }, "--label-smoothing"),
            (TrainConfig { weight_decay: -1e-4, optimizer: crate::train::Optimizer::Sgd, ..ok.clone() }, "--weight-decay"),
            (TrainConfig { weight_decay: 5e-4, ..ok.clone() }, "--weight-decay"),
        ];
        assert_eq!(check_train(&TrainConfig::cifar_cpu(1)), Ok(()));
        for (cfg, flag) in cases {
            let e = check_train(&cfg).unwrap_err().to_string();
            assert!(e.starts_with(flag) && e.contains("allowed"), "{e}");
        }
        assert_eq!(check_train(&TrainConfig { certainty_epsilon: 0.0, ..ok }), Ok(()));
    }

    #[test]
    fn widths_and_stages() {
        assert!(check_mlp_widths(&[512, 512]).is_ok());
        assert!(check_mlp_widths(&[512, 0]).is_err());
        assert!(check_mlp_widths(&[]).is_err());
        assert!(check_mlp_widths(&[usize::MAX]).is_err());
        assert_eq!(max_cnn_stages(32), 6);
        assert_eq!(max_cnn_stages(1), 1);
        assert!(check_cnn_widths(&[8; 6], 32).is_ok());
        let e = check_cnn_widths(&[8; 7], 32).unwrap_err().to_string();
        assert!(e.contains("7 stages") && e.contains("--hidden"), "{e}");
    }

    #[test]
    fn memory_estimate_refuses_absurd_widths() {
        let paper = Footprint::mlp(&MlpConfig::mnist(Activation::Relu, vec![512, 512]));
        assert_eq!(paper.params, 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10);
        assert!(check_memory(paper.bytes(128, 1000, 80_000), 1 << 30).is_ok());
        let huge = Footprint::mlp(&MlpConfig::mnist(Activation::Relu, vec![65_536; 16]));
        let e = check_memory(huge.bytes(128, 1000, 80_000), 24 << 30).unwrap_err().to_string();
        assert!(e.contains("GiB"), "{e}");
        let cnn = Footprint::cnn(&CnnConfig::cifar(Activation::Relu, vec![64, 128, 256, 512]));
        assert_eq!(cnn.neurons, 3 * (64 + 128 + 256 + 512));
        assert_eq!(cnn.largest_layer_values, 64 * 32 * 32);
        assert_eq!((paper.layers, cnn.layers), (2, 12));
        // 50 epochs of 469 batches, a recording every 10: 2345 recordings of 1000 x 4 traces.
        assert_eq!(recordings(50 * 469, 10), 2345);
        assert_eq!(paper.trace_bytes(2345, 1000, 4), 2345 * 2 * 1000 * 4 * 4);
    }

    #[test]
    fn sample_counts() {
        assert!(check_samples(10, 1).is_ok());
        assert!(check_samples(0, 1).unwrap_err().to_string().starts_with("--train-samples"));
        assert!(check_samples(1, 0).unwrap_err().to_string().starts_with("--test-samples"));
    }
}
