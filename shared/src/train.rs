//! One training step and evaluation, shared by the native trainer and the web worker.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{GradientsParams, RmsPropConfig, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

pub use burn::optim::ModuleOptimizer;

use crate::data::{Dataset, Normalization};
use crate::model::{NoTap, ProbeTap, TappedModel};
use crate::readback::{ReadbackError, read_i64_async};
use crate::recording::{Recorder, RecordingMode, uncertain_mask};

/// How a model is trained and recorded. The paper does not state its optimizer, epochs or batch
/// size; see [`TrainConfig::paper`] for our documented choices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub mode: RecordingMode,
    /// Record every this many batches.
    pub every_batches: usize,
    pub tracked_samples: usize,
    /// Neurons per layer whose pre-activations are snapshotted (figure 2/6).
    pub snapshot_neurons: usize,
    /// Gradients of samples whose true-class probability is at least `1 - epsilon` count as
    /// exact zeros (see [`crate::recording::DEFAULT_CERTAINTY_EPSILON`]).
    pub certainty_epsilon: f32,
    #[serde(default)]
    pub optimizer: Optimizer,
    /// How a conv layer's gradient signs are counted.
    #[serde(default)]
    pub conv_signs: ConvSigns,
    /// How the learning rate moves over the run ([`TrainConfig::learning_rate_at`]).
    #[serde(default)]
    pub schedule: Schedule,
    /// Label smoothing of the training loss (0: plain cross-entropy). The recorded gradient signs
    /// always use the plain loss of each sample: they are the quantity the paper studies.
    #[serde(default)]
    pub label_smoothing: f32,
    /// L2 weight decay of the SGD optimizers (0: none).
    #[serde(default)]
    pub weight_decay: f64,
}

/// The learning rate over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The same rate at every step.
    #[default]
    Constant,
    /// One cycle: up linearly from a 25th of the rate to the rate over the first
    /// [`ONE_CYCLE_WARMUP`] of the steps, then down linearly to 0 at the last step.
    OneCycle,
}

/// The share of a one-cycle run spent warming up.
pub const ONE_CYCLE_WARMUP: f64 = 0.25;

impl Schedule {
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::OneCycle => "one-cycle",
        }
    }

    /// The rate at `step` (0-based) of `total` steps, for a peak (or constant) rate `lr`.
    pub fn at(self, lr: f64, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::OneCycle => {
                let t = step as f64 / total.max(1) as f64;
                if t < ONE_CYCLE_WARMUP {
                    lr / 25.0 + (lr - lr / 25.0) * t / ONE_CYCLE_WARMUP
                } else {
                    lr * ((1.0 - t) / (1.0 - ONE_CYCLE_WARMUP)).max(0.0)
                }
            }
        }
    }
}

/// How the signs of a conv layer (a neuron per channel, an activation per position) are counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvSigns {
    /// One sign per (sample, channel): the derivative summed over the channel's positions.
    #[default]
    Channel,
    /// Also one sign per (sample, position, channel) at a fixed random sample of positions per
    /// channel ([`crate::recording::POSITIONS_PER_CHANNEL`]), as the paper counts each position
    /// as an activation; tracked recording only.
    Positions,
}

/// The optimizer. The paper does not name its own; Adam is our default, SGD and RMSprop are the
/// other two a Keras user of 2017 would pick, set up as Keras set them up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// burn's Adam: betas 0.9 and 0.999, epsilon 1e-5.
    #[default]
    Adam,
    /// SGD with momentum 0.9 (no dampening, as Keras' `SGD(momentum=0.9)` and PyTorch's).
    Sgd,
    /// Keras' RMSprop: rho 0.9, epsilon 1e-7, no momentum.
    Rmsprop,
    /// SGD with Nesterov momentum 0.9 (PyTorch's `SGD(momentum=0.9, nesterov=True)`).
    Nesterov,
}

impl Optimizer {
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adam => "adam",
            Optimizer::Sgd => "sgd",
            Optimizer::Rmsprop => "rmsprop",
            Optimizer::Nesterov => "nesterov",
        }
    }

    /// Keras' default learning rate for this optimizer (0.01 for SGD, 0.001 otherwise).
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Optimizer::Sgd | Optimizer::Nesterov => 1e-2,
            Optimizer::Adam | Optimizer::Rmsprop => 1e-3,
        }
    }

    pub fn init(self) -> ModuleOptimizer {
        self.init_decayed(0.0)
    }

    /// The optimizer with L2 weight decay `weight_decay` (SGD variants only; see
    /// [`crate::settings::check_train`]).
    pub fn init_decayed(self, weight_decay: f64) -> ModuleOptimizer {
        let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
        let momentum = |nesterov| MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(nesterov);
        match self {
            Optimizer::Adam => adam(),
            Optimizer::Sgd => SgdConfig::new().with_momentum(Some(momentum(false))).with_weight_decay(decay).init(),
            Optimizer::Nesterov => SgdConfig::new().with_momentum(Some(momentum(true))).with_weight_decay(decay).init(),
            Optimizer::Rmsprop => RmsPropConfig::new().with_alpha(0.9).with_momentum(0.0).with_epsilon(1e-7).init(),
        }
    }

    /// Whether [`Optimizer::init_decayed`] applies a weight decay.
    pub fn takes_weight_decay(self) -> bool {
        matches!(self, Optimizer::Sgd | Optimizer::Nesterov)
    }
}

impl TrainConfig {
    /// The paper's cadence for MNIST: a recording every 10 batches, about 2350 recordings
    /// (50 epochs of 469 batches of 128 = 23450 batches). Adam with learning rate 1e-3 is our
    /// choice (the paper's optimizer is not known to us).
    pub fn paper(seed: u64) -> Self {
        Self {
            epochs: 50,
            batch_size: 128,
            learning_rate: 1e-3,
            seed,
            mode: RecordingMode::Tracked,
            every_batches: 10,
            tracked_samples: 1000,
            snapshot_neurons: 4,
            certainty_epsilon: crate::recording::DEFAULT_CERTAINTY_EPSILON,
            optimizer: Optimizer::Adam,
            conv_signs: ConvSigns::Channel,
            schedule: Schedule::Constant,
            label_smoothing: 0.0,
            weight_decay: 0.0,
        }
    }

    /// A few minutes on two CPU cores: same cadence, 3 epochs.
    pub fn fast(seed: u64) -> Self {
        Self { epochs: 3, ..Self::paper(seed) }
    }

    /// The paper's cadence for CIFAR-10: a recording every 100 batches, about 1600 recordings.
    /// Batch 32 for 100 epochs gives 156 300 batches and 1563 recordings.
    pub fn cifar_paper(seed: u64) -> Self {
        Self { epochs: 100, batch_size: 32, every_batches: 100, ..Self::paper(seed) }
    }

    /// Minutes on two CPU cores (with a small CNN on a subset; see the trainer's presets).
    pub fn cifar_fast(seed: u64) -> Self {
        Self { epochs: 2, batch_size: 64, every_batches: 10, tracked_samples: 200, ..Self::paper(seed) }
    }

    /// A CIFAR CNN that learns on two CPU cores (all 50 000 images, with augmentation; see the
    /// trainer's `cpu` preset): the usual fast CIFAR recipe rather than the paper's unknown one.
    /// SGD with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle schedule peaking at 0.1,
    /// label smoothing 0.1, batch 128, 10 epochs; 500 tracked samples recorded every 40 batches
    /// (98 recordings: a tenth of the training cost).
    pub fn cifar_cpu(seed: u64) -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            learning_rate: 0.1,
            every_batches: 40,
            tracked_samples: 500,
            optimizer: Optimizer::Nesterov,
            schedule: Schedule::OneCycle,
            label_smoothing: 0.1,
            weight_decay: 5e-4,
            ..Self::paper(seed)
        }
    }

    /// The learning rate of training step `step` of `total`.
    pub fn learning_rate_at(&self, step: u64, total: u64) -> f64 {
        self.schedule.at(self.learning_rate, step, total)
    }

    /// The optimizer this configuration trains with.
    pub fn init_optimizer(&self) -> ModuleOptimizer {
        self.optimizer.init_decayed(self.weight_decay)
    }
}

/// burn's Adam with its defaults (betas 0.9 and 0.999, epsilon 1e-5), fused on flex.
pub fn adam() -> ModuleOptimizer {
    crate::adam::adam(0.9, 0.999, 1e-5)
}

/// One optimizer step on a batch. In online recording mode the batch's own per-sample
/// dLoss/dActivation signs are added to the recorder (rows = the batch's training indices).
/// Returns the updated model, the (device-side) loss and how many of the batch's samples the
/// model classified correctly before the step (the training accuracy, for free).
#[allow(clippy::too_many_arguments)]
pub fn train_step<M: TappedModel>(
    model: M,
    optim: &mut ModuleOptimizer,
    lr: f64,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    online: Option<(&mut Recorder, Tensor<1, Int>)>,
) -> (M, Tensor<1>, Tensor<1, Int>) {
    train_step_smoothed(model, optim, lr, 0.0, x, y, online)
}

/// [`train_step`] with a label-smoothed loss (`smoothing` 0: plain cross-entropy). Online
/// recording is refused with smoothing by [`crate::settings::check_train`]: its signs come from
/// the training loss itself.
#[allow(clippy::too_many_arguments)]
pub fn train_step_smoothed<M: TappedModel>(
    model: M,
    optim: &mut ModuleOptimizer,
    lr: f64,
    smoothing: f32,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    online: Option<(&mut Recorder, Tensor<1, Int>)>,
) -> (M, Tensor<1>, Tensor<1, Int>) {
    let device = x.device();
    let labels = y.clone().inner();
    let ce = CrossEntropyLossConfig::new().with_smoothing((smoothing > 0.0).then_some(smoothing)).init(&device);
    let correct: Tensor<1, Int>;
    let (loss, grads) = match online {
        Some((recorder, rows)) => {
            debug_assert_eq!(recorder.mode, RecordingMode::Online);
            let mut tap = ProbeTap::default();
            let logits = model.forward_tapped(x, &mut tap);
            correct = correct_count(logits.clone().inner(), labels);
            let uncertain = uncertain_mask(logits.clone().inner(), y.clone().inner(), recorder.certainty_epsilon);
            let loss = ce.forward(logits, y);
            let mut grads = loss.backward();
            for (layer, probe) in tap.probes.into_iter().enumerate() {
                if let Some(g) = probe.and_then(|p| p.grad_remove(&mut grads)) {
                    recorder.accumulate(layer, rows.clone(), g * uncertain.clone());
                }
            }
            recorder.count_online_batch();
            (loss, grads)
        }
        None => {
            let logits = model.forward_tapped(x, &mut NoTap);
            correct = correct_count(logits.clone().inner(), labels);
            let loss = ce.forward(logits, y);
            let grads = loss.backward();
            (loss, grads)
        }
    };
    let grads = GradientsParams::from_grads(grads, &model);
    let model = optim.step(lr, model, grads);
    (model, loss.detach().inner(), correct)
}

/// How many rows of `logits` (`[batch, classes]`) put their maximum on the label, on the device.
pub fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    let [batch] = labels.dims();
    logits.argmax(1).reshape([batch]).equal(labels).int().sum()
}

/// How many samples of `data` `logits_of` classifies correctly, summed on the device (nothing is
/// read back). `logits_of` receives normalized inputs `[batch, features]` on `device`.
fn correct_on_device(
    data: &Dataset,
    norm: Normalization,
    device: &Device,
    batch: usize,
    mut logits_of: impl FnMut(Tensor<2>) -> Tensor<2>,
) -> Option<Tensor<1, Int>> {
    let mut correct: Option<Tensor<1, Int>> = None;
    for start in (0..data.len()).step_by(batch.max(1)) {
        let (x, y) = data.range_batch(start, start + batch, norm, device);
        let hits = correct_count(logits_of(x), y);
        correct = Some(match correct {
            Some(c) => c + hits,
            None => hits,
        });
    }
    correct
}

/// Fraction of `data` that `logits_of` classifies correctly, counted on the device and read back
/// once. `logits_of` receives normalized inputs `[batch, features]` on `device`.
pub fn accuracy_with(
    data: &Dataset,
    norm: Normalization,
    device: &Device,
    batch: usize,
    logits_of: impl FnMut(Tensor<2>) -> Tensor<2>,
) -> f64 {
    match correct_on_device(data, norm, device, batch, logits_of) {
        Some(correct) => correct.into_scalar::<i64>() as f64 / data.len() as f64,
        None => 0.0,
    }
}

/// Test-set accuracy of `model` (dropout off), read back once.
pub fn accuracy<M: TappedModel>(model: &M, data: &Dataset, norm: Normalization, device: &Device, batch: usize) -> f64 {
    let valid = model.valid();
    let inner = device.clone().inner();
    accuracy_with(data, norm, &inner, batch, |x| valid.forward(x))
}

/// [`accuracy`] with an awaited read, for WebGPU.
pub async fn accuracy_async<M: TappedModel>(
    model: &M,
    data: &Dataset,
    norm: Normalization,
    device: &Device,
    batch: usize,
) -> Result<f64, ReadbackError> {
    let valid = model.valid();
    let inner = device.clone().inner();
    match correct_on_device(data, norm, &inner, batch, |x| valid.forward(x)) {
        Some(correct) => Ok(read_i64_async(correct).await?[0] as f64 / data.len() as f64),
        None => Ok(0.0),
    }
}
