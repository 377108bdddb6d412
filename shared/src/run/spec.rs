//! What a run is before it starts: which network, which preset, and every setting that shapes
//! its results, resolved once from (model, preset, overrides) through one preset table. The
//! native CLI, `trainer study` and the page's form all produce a [`RunSpec`]; `results.json`
//! carries it whole, and its [`RunSpec::fingerprint`] decides whether a checkpoint or a finished
//! run belongs to it.

use serde::{Deserialize, Serialize};

use crate::experiments::{ExperimentConfig, RetrainStop};
use crate::model::{Activation, CIFAR_WIDTHS, CnnConfig, Init, LAYERS_PER_STAGE, MNIST_WIDTHS, MlpConfig, MlpOrCnn, ResNetConfig, Stem};
use crate::recording::{POSITIONS_PER_CHANNEL, RecordingMode};
use crate::settings::{self, Footprint, SettingError};
use crate::train::{ConvSigns, Optimizer, Schedule, TrainConfig};

/// Samples per chunk of the tracked set and per evaluation batch.
pub const CHUNK: usize = 500;
/// Neurons per layer whose pre-activations the page keeps for figure 2 (any can be shown).
pub const BROWSER_TRACED: usize = 64;

/// Which network a run trains or studies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The paper's MNIST MLP (784-512-512-10 with dropout).
    Mlp,
    /// The page's small MNIST CNN (8-16-32).
    MnistCnn,
    /// The paper's 12-layer CIFAR-10 CNN.
    CifarCnn,
    /// torchvision's ResNet50 on an ImageNet-format folder.
    Resnet50,
    /// ResNet50's bottleneck blocks on CIFAR-10, trained here: the CIFAR stem, widths / 8.
    CifarResnet,
}

/// A network by the name results.json, output folders and the CLI use: it says which network it
/// is (`mlp-relu`, `mnist-cnn-relu`, `cifar-cnn-linear`, `resnet50`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId {
    pub family: Family,
    pub activation: Activation,
}

impl ModelId {
    pub const fn new(family: Family, activation: Activation) -> Self {
        Self { family, activation }
    }

    pub fn id(self) -> String {
        match self.family {
            Family::Mlp => format!("mlp-{}", self.activation.suffix()),
            Family::MnistCnn => format!("mnist-cnn-{}", self.activation.suffix()),
            Family::CifarCnn => format!("cifar-cnn-{}", self.activation.suffix()),
            Family::Resnet50 => "resnet50".into(),
            Family::CifarResnet => "cifar-resnet".into(),
        }
    }

    /// The id before model ids named their data set (`cnn-relu` was the CIFAR CNN natively and
    /// the MNIST CNN in the page); output folders and fingerprints of older runs use it.
    pub fn legacy_id(self) -> String {
        match self.family {
            Family::MnistCnn | Family::CifarCnn => format!("cnn-{}", self.activation.suffix()),
            _ => self.id(),
        }
    }

    /// Reads an id; the old `cnn-*` ids mean the CIFAR CNN (as on the command line).
    pub fn parse(s: &str) -> Option<Self> {
        let activation = |a: &str| [Activation::Relu, Activation::Sigmoid, Activation::None].into_iter().find(|x| x.suffix() == a);
        for (id, family) in [("resnet50", Family::Resnet50), ("cifar-resnet", Family::CifarResnet)] {
            if s == id {
                return Some(Self::new(family, Activation::Relu));
            }
        }
        for (prefix, family) in [("mlp-", Family::Mlp), ("mnist-cnn-", Family::MnistCnn), ("cifar-cnn-", Family::CifarCnn), ("cnn-", Family::CifarCnn)] {
            if let Some(a) = s.strip_prefix(prefix).and_then(activation) {
                return Some(Self::new(family, a));
            }
        }
        None
    }

    /// The data set a family trains on.
    pub fn is_cifar(self) -> bool {
        matches!(self.family, Family::CifarCnn | Family::CifarResnet)
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

impl TryFrom<String> for ModelId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a model id (mlp-relu, mnist-cnn-relu, cifar-cnn-linear, resnet50, ...)"))
    }
}

impl From<ModelId> for String {
    fn from(m: ModelId) -> String {
        m.id()
    }
}

/// A named set of settings (the rows of [`RunSpec::resolve`]'s table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The paper's cadence and full-size experiments.
    Paper,
    /// Minutes on two CPU cores.
    Fast,
    /// CIFAR: a narrow CNN that learns on two CPU cores (about 45 minutes a network).
    Cpu,
    /// The page: the user's form over the paper's MNIST settings.
    Browser,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Fast => "fast",
            Preset::Cpu => "cpu",
            Preset::Browser => "browser",
        }
    }
}

/// The network a spec builds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Mlp(MlpConfig),
    Cnn(CnnConfig),
    Resnet(ResNetConfig),
}

impl Network {
    /// The page's networks (an MLP or a CNN) as one type; `None` for the ResNets.
    pub fn mlp_or_cnn(&self, device: &burn::tensor::Device) -> Option<MlpOrCnn> {
        match self {
            Network::Mlp(cfg) => Some(cfg.init(device).into()),
            Network::Cnn(cfg) => Some(cfg.init(device).into()),
            Network::Resnet(_) => None,
        }
    }
}

/// The data a run trains and is tested on, once it is loaded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub name: String,
    pub train: usize,
    pub test: usize,
}

/// What a user may change about a preset (the trainer's flags, the page's form). `None` keeps
/// the preset's value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub widths: Option<Vec<usize>>,
    pub init: Option<Init>,
    pub optimizer: Option<Optimizer>,
    pub label_smoothing: Option<f32>,
    pub weight_decay: Option<f64>,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub learning_rate: Option<f64>,
    pub every: Option<usize>,
    pub tracked: Option<usize>,
    pub certainty_epsilon: Option<f32>,
    pub mode: Option<RecordingMode>,
    pub conv_signs: Option<ConvSigns>,
    pub retrain_epochs: Option<usize>,
    pub retrain_samples: Option<usize>,
    pub retrain_stop: Option<RetrainStop>,
}

/// Everything that shapes a run's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub model: ModelId,
    pub preset: Preset,
    pub seed: u64,
    pub network: Network,
    /// Random crops (4-pixel padding) and horizontal flips while training.
    pub augment: bool,
    /// `None`: not trained here (pretrained weights studied as they are).
    pub train: Option<TrainConfig>,
    pub experiments: ExperimentConfig,
    pub data: DataSpec,
    /// Layers the quantization and sliding-window experiments run on.
    pub experiment_layers: Vec<usize>,
    /// Layers shown in figures 1 and 5 (all layers are in results.json).
    pub figure_layers: Vec<usize>,
    /// The initial weights' file, when not initialised here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
}

impl RunSpec {
    /// The preset table for the networks trained here: (family, preset) -> training and
    /// experiments, then the user's overrides. ResNet50 on ImageNet has [`RunSpec::resnet50`].
    pub fn resolve(model: ModelId, preset: Preset, seed: u64, o: &Overrides) -> Result<Self, SettingError> {
        let spec = Self::resolve_unchecked(model, preset, seed, o).ok_or_else(|| match model.family {
            Family::CifarResnet => SettingError::new(crate::settings::Setting::Preset, "the CIFAR ResNet has the presets cpu and fast (the paper trained no residual network on CIFAR)"),
            _ => SettingError::new(crate::settings::Setting::Preset, "ResNet50 on ImageNet takes --weights or --epochs, not a preset's training"),
        })?;
        if model.family == Family::CifarResnet && o.widths.is_some() {
            return Err(SettingError::new(crate::settings::Setting::Hidden, "the CIFAR ResNet's widths are ResNet50's divided by 8; --hidden does not apply"));
        }
        if model.family == Family::CifarResnet && o.init.is_some() {
            return Err(SettingError::new(crate::settings::Setting::Init, "the CIFAR ResNet starts from burn's initialisation; --init does not apply"));
        }
        spec.check_settings()?;
        Ok(spec)
    }

    /// [`RunSpec::resolve`] without the range checks (for a form that checks its own fields);
    /// `None` for ResNet50 and for a preset a family does not have.
    pub fn resolve_unchecked(model: ModelId, preset: Preset, seed: u64, o: &Overrides) -> Option<Self> {
        let cifar = model.is_cifar();
        let (mut train, mut experiments) = match (model.family, preset) {
            (Family::Mlp | Family::MnistCnn, Preset::Paper) => (TrainConfig::paper(seed), ExperimentConfig::paper(seed)),
            (Family::Mlp | Family::MnistCnn, Preset::Fast | Preset::Cpu) => (TrainConfig::fast(seed), ExperimentConfig::fast(seed)),
            (Family::CifarCnn, Preset::Paper) => (TrainConfig::cifar_paper(seed), ExperimentConfig::cifar_paper(seed)),
            (Family::CifarCnn, Preset::Fast) => (TrainConfig::cifar_fast(seed), ExperimentConfig::cifar_fast(seed)),
            (Family::CifarCnn | Family::CifarResnet, Preset::Cpu) => (TrainConfig::cifar_cpu(seed), ExperimentConfig::cifar_cpu(seed)),
            (Family::CifarResnet, Preset::Fast) => (TrainConfig::cifar_fast(seed), ExperimentConfig::cifar_fast(seed)),
            (Family::CifarResnet, Preset::Paper | Preset::Browser) => return None,
            (_, Preset::Browser) => {
                let browser = ExperimentConfig::browser(seed);
                let exp = match model.family {
                    // The conv suffixes retrain on fewer samples: each is two conv layers.
                    Family::MnistCnn | Family::CifarCnn => ExperimentConfig { retrain_samples: 2_000, ..browser },
                    _ => browser,
                };
                (TrainConfig { snapshot_neurons: BROWSER_TRACED, ..TrainConfig::paper(seed) }, exp)
            }
            (Family::Resnet50, _) => return None,
        };
        override_train(&mut train, o);
        override_retraining(&mut experiments, o);
        let init = o.init.unwrap_or(match preset {
            // The paper used Keras, whose layers start Glorot-uniform with zero biases.
            Preset::Paper => Init::Keras,
            _ => Init::Burn,
        });
        let (network, experiment_layers, figure_layers) = match model.family {
            Family::Mlp => {
                let widths = o.widths.clone().unwrap_or_else(|| MNIST_WIDTHS.to_vec());
                let all: Vec<usize> = (0..widths.len()).collect();
                (Network::Mlp(MlpConfig::mnist(model.activation, widths).with_init(init)), all.clone(), all)
            }
            Family::MnistCnn => {
                let cfg = CnnConfig::mnist_small(model.activation).with_init(init);
                let all: Vec<usize> = (0..cfg.conv_layers().len()).collect();
                (Network::Cnn(cfg), all.clone(), all)
            }
            Family::CifarCnn => {
                let widths = o.widths.clone().unwrap_or_else(|| if preset == Preset::Paper { CIFAR_WIDTHS.to_vec() } else { vec![16, 32, 64, 128] });
                // With the paper's four stages: experiments on stage0layer0, an intermediate
                // layer (stage1layer2) and stage3layer2; figures for stage0layer0, stage2layer2
                // and stage3layer2, as in the paper. Fewer stages keep the same pattern.
                let last = (widths.len() * LAYERS_PER_STAGE).max(1) - 1;
                let pick = |mut v: Vec<usize>| {
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let experiments = pick(vec![0, (2 * LAYERS_PER_STAGE - 1).min(last), last]);
                let figures = pick(vec![0, (widths.len().saturating_sub(1) * LAYERS_PER_STAGE).saturating_sub(1), last]);
                (Network::Cnn(CnnConfig::cifar(model.activation, widths).with_init(init)), experiments, figures)
            }
            Family::CifarResnet => {
                let cfg = ResNetConfig::cifar(8);
                // The paper's three ResNet50 layers: conv1, 3d (the last block of stage 3) and 5c.
                let studied = vec![0, cfg.blocks[0] + cfg.blocks[1], cfg.blocks.iter().sum::<usize>()];
                (Network::Resnet(cfg), studied.clone(), studied)
            }
            Family::Resnet50 => unreachable!("returned above"),
        };
        Some(Self {
            model,
            preset,
            seed,
            network,
            augment: cifar,
            train: Some(train),
            experiments,
            data: DataSpec::default(),
            experiment_layers,
            figure_layers,
            weights: None,
        })
    }

    /// ResNet50 on an ImageNet-format folder: `weights` studied as they are (`train: None`) or
    /// trained here for `train.epochs`.
    pub fn resnet50(preset: Preset, seed: u64, network: ResNetConfig, weights: Option<String>, train: Option<TrainConfig>, experiments: ExperimentConfig, studied: Vec<usize>) -> Self {
        Self {
            model: ModelId::new(Family::Resnet50, Activation::Relu),
            preset,
            seed,
            network: Network::Resnet(network),
            augment: false,
            train,
            experiments,
            data: DataSpec::default(),
            experiment_layers: studied.clone(),
            figure_layers: studied,
            weights,
        }
    }

    /// This spec on loaded data (its name and sizes enter the fingerprint).
    pub fn with_data(mut self, name: impl Into<String>, train: usize, test: usize) -> Self {
        self.data = DataSpec { name: name.into(), train, test };
        self
    }

    /// The flags alone, before any data is read.
    pub fn check_settings(&self) -> Result<(), SettingError> {
        if let Some(t) = &self.train {
            settings::check_train(t)?;
        }
        settings::check_experiments(&self.experiments)?;
        match &self.network {
            Network::Mlp(cfg) => settings::check_mlp_widths(&cfg.hidden),
            Network::Cnn(cfg) => settings::check_cnn_widths(&cfg.widths, cfg.side),
            Network::Resnet(_) => Ok(()),
        }
    }

    /// Input values per sample the network takes, and what to tell a user whose data differs.
    pub fn input(&self) -> (usize, &'static str) {
        match &self.network {
            Network::Mlp(cfg) => (cfg.input, settings::MNIST_TAKES),
            Network::Cnn(cfg) if cfg.channels == 1 => (cfg.side * cfg.side, settings::MNIST_TAKES),
            Network::Cnn(cfg) => (cfg.channels * cfg.side * cfg.side, "the CIFAR CNNs take 32x32 colour images (3072 values)"),
            Network::Resnet(cfg) if cfg.stem == Stem::Cifar => (3 * cfg.side * cfg.side, "the CIFAR ResNet takes 32x32 colour images (3072 values)"),
            Network::Resnet(cfg) => (3 * cfg.side * cfg.side, "ResNet50 takes colour images"),
        }
    }

    /// About how much memory the run needs at its peak on its data (see [`Footprint::bytes`]).
    pub fn needed_bytes(&self) -> u64 {
        self.bytes(true)
    }

    /// [`RunSpec::needed_bytes`] without the experiments' captured pre-activations: what
    /// training alone holds.
    pub fn training_bytes(&self) -> u64 {
        self.bytes(false)
    }

    fn bytes(&self, experiments: bool) -> u64 {
        let footprint = match &self.network {
            Network::Mlp(cfg) => Footprint::mlp(cfg),
            Network::Cnn(cfg) => Footprint::cnn(cfg),
            Network::Resnet(cfg) => Footprint::resnet(cfg),
        };
        let (n_train, n_test) = (self.data.train, self.data.test);
        let Some(t) = &self.train else { return 0 };
        let tracked = t.tracked_samples.min(n_train);
        let rows = match t.mode {
            RecordingMode::Tracked => tracked,
            RecordingMode::Online => n_train,
        };
        // Per-position counts: up to that many more rows per conv layer (an over-estimate for
        // dense layers, which have one position).
        let rows = if t.conv_signs == ConvSigns::Positions { rows * (1 + POSITIONS_PER_CHANNEL) } else { rows };
        let exp = &self.experiments;
        let captured = if experiments { exp.stats_samples.min(n_train) + exp.retrain_samples.min(n_train) + n_test } else { 0 };
        let steps = (crate::data::Batches::count(n_train, t.batch_size) as u64).saturating_mul(t.epochs as u64);
        let traces = footprint.trace_bytes(settings::recordings(steps, t.every_batches), tracked, t.snapshot_neurons);
        footprint.bytes(t.batch_size.max(CHUNK), rows, captured).saturating_add(traces)
    }

    /// A hash of the whole resolved spec: a checkpoint or a finished run belongs to this spec
    /// exactly when its fingerprint is equal.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).expect("a spec serializes");
        format!("spec-v1:{:016x}", fnv1a(json.as_bytes()))
    }

    /// A hash of what shapes the trained network: the spec less its experiments and the layers
    /// they and the figures look at. A training checkpoint carries it, so that a trained network
    /// can be studied again with other experiment settings without training it again.
    pub fn training_fingerprint(&self) -> String {
        let mut json = serde_json::to_value(self).expect("a spec serializes");
        if let Some(fields) = json.as_object_mut() {
            for analysis in ["experiments", "experiment_layers", "figure_layers"] {
                fields.remove(analysis);
            }
        }
        format!("train-v1:{:016x}", fnv1a(json.to_string().as_bytes()))
    }

    /// Whether a checkpoint's stored fingerprint is this spec's training: the training
    /// fingerprint, or (checkpoints of older versions) the whole spec's in any form.
    pub fn owns_training(&self, stored: &str) -> bool {
        stored == self.training_fingerprint() || self.owns(stored)
    }

    /// The settings string older versions wrote in place of [`RunSpec::fingerprint`] (MLPs and
    /// CNNs): their finished runs and checkpoints are recognised by it.
    pub fn legacy_fingerprint(&self) -> Option<String> {
        let t = self.train.as_ref()?;
        // Older versions retrained for a fixed number of epochs only: their settings line does
        // not describe a run with the held-out rule.
        if !self.experiments.retrain_stop.is_fixed() {
            return None;
        }
        let e = &self.experiments;
        let (widths, init) = match &self.network {
            Network::Mlp(cfg) => (cfg.hidden.clone(), cfg.init),
            Network::Cnn(cfg) => (cfg.widths.clone(), cfg.init),
            Network::Resnet(_) => return None,
        };
        let mut extra = String::new();
        if init != Init::Burn {
            extra += &format!(" init={}", init.name());
        }
        if t.optimizer != Optimizer::Adam {
            extra += &format!(" optimizer={}", t.optimizer.name());
        }
        if t.conv_signs != ConvSigns::Channel {
            extra += " conv-signs=positions";
        }
        if t.schedule != Schedule::Constant {
            extra += &format!(" schedule={}", t.schedule.name());
        }
        if t.label_smoothing != 0.0 {
            extra += &format!(" label-smoothing={}", t.label_smoothing);
        }
        if t.weight_decay != 0.0 {
            extra += &format!(" weight-decay={}", t.weight_decay);
        }
        let base = format!(
            "{} preset={} seed={} data={} widths={:?} augment={} mode={:?} every={} tracked={} epochs={} batch={} lr={} train={} test={} certainty={} experiments=(stats {} ranks {:?} centres {:?} width {} retrain {}x{} batch {} lr {})",
            self.model.legacy_id(),
            self.preset.name(),
            self.seed,
            self.data.name,
            widths,
            self.augment,
            t.mode,
            t.every_batches,
            t.tracked_samples,
            t.epochs,
            t.batch_size,
            t.learning_rate,
            self.data.train,
            self.data.test,
            t.certainty_epsilon,
            e.stats_samples,
            e.ranks,
            e.centres,
            e.window_width,
            e.retrain_samples,
            e.retrain_epochs,
            e.batch_size,
            e.learning_rate
        );
        Some(base + &extra)
    }

    /// Whether a stored fingerprint (of a checkpoint or results.json) is this spec's, in this
    /// version's form or an older one's.
    pub fn owns(&self, stored: &str) -> bool {
        stored == self.fingerprint() || self.legacy_fingerprint().is_some_and(|l| l == stored)
    }

    /// The architecture in words, for results.json and the report.
    pub fn architecture(&self) -> String {
        match &self.network {
            Network::Mlp(cfg) => {
                let mut widths = vec![cfg.input.to_string()];
                widths.extend(cfg.hidden.iter().map(|w| w.to_string()));
                widths.push(cfg.classes.to_string());
                format!("MLP {} ({}, dropout {} after each hidden layer)", widths.join("-"), cfg.activation.suffix(), cfg.dropout)
            }
            Network::Cnn(cfg) if self.model.family == Family::MnistCnn => format!(
                "CNN on {}x{}: {} conv 3x3 + batch-norm ({}), widths {:?}, 2x2 max-pool between them, global average pool, dense",
                cfg.side,
                cfg.side,
                cfg.widths.len() * cfg.layers_per_stage,
                cfg.activation.suffix(),
                cfg.widths
            ),
            Network::Cnn(cfg) => format!(
                "CNN, {} stages x 3 conv 3x3 + batch-norm ({}), widths {:?}, max-pool between stages, global average pool, dense",
                cfg.widths.len(),
                cfg.activation.suffix(),
                cfg.widths
            ),
            Network::Resnet(cfg) if cfg.stem == Stem::Cifar => format!(
                "ResNet50's bottleneck blocks {:?} with a CIFAR stem (3x3 conv, stride 1, no max-pool), base width {} (ResNet50's / {}), blocks output {} to {} channels, batch-norm, ReLU, global average pool, dense",
                cfg.blocks,
                cfg.width,
                64 / cfg.width.max(1),
                4 * cfg.width,
                4 * cfg.width << cfg.blocks.len().saturating_sub(1)
            ),
            Network::Resnet(cfg) => format!(
                "ResNet50 in torchvision's layout (bottleneck blocks, stride on the 3x3 conv), base width {}, {}x{} inputs, initial weights {}{}",
                cfg.width,
                cfg.side,
                cfg.side,
                self.weights.as_deref().unwrap_or("none (trained from scratch)"),
                self.train.as_ref().map(|t| format!(", then trained {} epoch(s) here", t.epochs)).unwrap_or_default()
            ),
        }
    }
}

fn override_train(train: &mut TrainConfig, o: &Overrides) {
    if let Some(mode) = o.mode {
        train.mode = mode;
    }
    if let Some(c) = o.conv_signs {
        train.conv_signs = c;
    }
    if let Some(chosen) = o.optimizer {
        if chosen != train.optimizer {
            train.optimizer = chosen;
            train.learning_rate = chosen.default_learning_rate();
            if !chosen.takes_weight_decay() {
                train.weight_decay = 0.0;
            }
        }
    }
    if let Some(a) = o.label_smoothing {
        train.label_smoothing = a;
    }
    if let Some(d) = o.weight_decay {
        train.weight_decay = d;
    }
    if let Some(e) = o.epochs {
        train.epochs = e;
    }
    if let Some(b) = o.batch {
        train.batch_size = b;
    }
    if let Some(lr) = o.learning_rate {
        train.learning_rate = lr;
    }
    if let Some(k) = o.every {
        train.every_batches = k;
    }
    if let Some(t) = o.tracked {
        train.tracked_samples = t;
    }
    if let Some(e) = o.certainty_epsilon {
        train.certainty_epsilon = e;
    }
}

/// The overrides of an experiment preset's retraining (every family, ResNet50 included).
pub fn override_retraining(exp: &mut ExperimentConfig, o: &Overrides) {
    if let Some(e) = o.retrain_epochs {
        exp.retrain_epochs = e;
    }
    if let Some(n) = o.retrain_samples {
        exp.retrain_samples = n;
    }
    if let Some(stop) = o.retrain_stop {
        exp.retrain_stop = stop;
    }
}

/// 64-bit FNV-1a: stable across platforms and versions (unlike std's hasher), enough to tell
/// specs apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_say_the_network_and_old_ids_still_read() {
        let cifar = ModelId::new(Family::CifarCnn, Activation::None);
        assert_eq!(cifar.id(), "cifar-cnn-linear");
        assert_eq!(ModelId::parse("cnn-linear"), Some(cifar));
        assert_eq!(ModelId::parse("mnist-cnn-relu"), Some(ModelId::new(Family::MnistCnn, Activation::Relu)));
        assert_eq!(ModelId::parse("mlp-sigmoid").map(|m| m.id()), Some("mlp-sigmoid".into()));
        assert_eq!(ModelId::parse("resnet50").map(|m| m.family), Some(Family::Resnet50));
        assert_eq!(ModelId::parse("cnn-tanh"), None);
        let json = serde_json::to_string(&cifar).unwrap();
        assert_eq!(json, "\"cifar-cnn-linear\"");
        assert!(serde_json::from_str::<ModelId>("\"lstm\"").is_err());
    }

    #[test]
    fn every_setting_moves_the_fingerprint_and_nothing_else_does() {
        let mlp = ModelId::new(Family::Mlp, Activation::Relu);
        let base = RunSpec::resolve(mlp, Preset::Fast, 1, &Overrides::default()).unwrap().with_data("mnist", 60_000, 10_000);
        assert_eq!(base.fingerprint(), base.clone().fingerprint());
        assert!(base.fingerprint().starts_with("spec-v1:"));
        let variants = [
            RunSpec::resolve(mlp, Preset::Fast, 2, &Overrides::default()).unwrap().with_data("mnist", 60_000, 10_000),
            RunSpec::resolve(mlp, Preset::Paper, 1, &Overrides::default()).unwrap().with_data("mnist", 60_000, 10_000),
            RunSpec::resolve(mlp, Preset::Fast, 1, &Overrides { epochs: Some(4), ..Overrides::default() }).unwrap().with_data("mnist", 60_000, 10_000),
            RunSpec::resolve(mlp, Preset::Fast, 1, &Overrides { retrain_samples: Some(7), ..Overrides::default() }).unwrap().with_data("mnist", 60_000, 10_000),
            base.clone().with_data("mnist", 59_999, 10_000),
            base.clone().with_data("fashion-mnist", 60_000, 10_000),
        ];
        for v in &variants {
            assert_ne!(v.fingerprint(), base.fingerprint(), "{v:?}");
            assert!(!base.owns(&v.fingerprint()));
        }
        let fixed = RunSpec::resolve(mlp, Preset::Fast, 1, &Overrides { retrain_stop: Some(RetrainStop::Epochs), ..Overrides::default() }).unwrap().with_data("mnist", 60_000, 10_000);
        assert!(fixed.owns(&fixed.legacy_fingerprint().unwrap()));
        // The training fingerprint ignores what only the experiments read.
        let retrained = &variants[3];
        assert_eq!(retrained.training_fingerprint(), base.training_fingerprint());
        assert!(base.owns_training(&retrained.training_fingerprint()));
        assert!(!base.owns_training(&retrained.fingerprint()));
        let mut other_layers = base.clone();
        other_layers.figure_layers = vec![1];
        other_layers.experiment_layers = vec![1];
        assert_eq!(other_layers.training_fingerprint(), base.training_fingerprint());
        for (i, v) in variants.iter().enumerate().filter(|(i, _)| *i != 3) {
            assert_ne!(v.training_fingerprint(), base.training_fingerprint(), "variant {i}: {v:?}");
        }
        // The settings line of older versions says nothing of the held-out rule: a run with it is
        // never mistaken for an older fixed-budget run.
        let held = RunSpec::resolve(mlp, Preset::Fast, 1, &Overrides::default()).unwrap();
        assert!(!held.experiments.retrain_stop.is_fixed() && held.legacy_fingerprint().is_none());
        assert!(base.training_fingerprint().starts_with("train-v1:"));
        assert!(fixed.legacy_fingerprint().unwrap().starts_with("mlp-relu preset=fast seed=1 data=mnist widths=[512, 512]"));
    }

    #[test]
    fn the_cpu_preset_is_the_narrow_cifar_cnn_with_its_recipe() {
        let spec = RunSpec::resolve(ModelId::new(Family::CifarCnn, Activation::Relu), Preset::Cpu, 3, &Overrides::default()).unwrap();
        let Network::Cnn(cfg) = &spec.network else { panic!("a CNN") };
        assert_eq!(cfg.widths, vec![16, 32, 64, 128]);
        assert!(spec.augment);
        let t = spec.train.as_ref().unwrap();
        assert_eq!((t.optimizer, t.schedule, t.label_smoothing), (Optimizer::Nesterov, Schedule::OneCycle, 0.1));
        assert_eq!(spec.experiment_layers, vec![0, 5, 11]);
        assert_eq!(spec.figure_layers, vec![0, 8, 11]);
        // Choosing Adam drops the SGD-only weight decay and takes Adam's learning rate.
        let adam = RunSpec::resolve(spec.model, Preset::Cpu, 3, &Overrides { optimizer: Some(Optimizer::Adam), ..Overrides::default() }).unwrap();
        let t = adam.train.unwrap();
        assert_eq!((t.weight_decay, t.learning_rate), (0.0, Optimizer::Adam.default_learning_rate()));
    }
}
