//! A run advanced step by step: the native loop is a plain `while`, the page's worker drives the
//! same session between yields. The caller owns the device, threads and I/O (data loading,
//! checkpoint files, messages); the session owns the seeds, the recording, what a checkpoint
//! holds and where a resumed run picks up.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use web_time::Instant;

use crate::data::{Batches, Dataset, Normalization, Split, SourceError, epoch_order};
use crate::finite::{LossLog, NonFiniteLoss};
use crate::model::{LayerInfo, TappedModel};
use crate::recording::{POSITIONS_PER_CHANNEL, Recorder, RecordingMode, TrackedSet, snapshot_choice, snapshot_choice_with, tracked_indices};
use crate::rotation;
use crate::train::{ConvSigns, ModuleOptimizer, TrainConfig, accuracy, train_step_smoothed};

use super::events::{EpochState, Event, Observer, ObserverError};
use super::progress::Progress;
use super::seeds::{augment_seed, epoch_seed};
use super::spec::{CHUNK, RunSpec};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("training diverged at step {} (epoch {}, batch {}): its loss is {}", .bad.step + 1, .bad.step / (*.per_epoch).max(1) + 1, .bad.step % (*.per_epoch).max(1) + 1, .bad.loss)]
    Diverged { bad: NonFiniteLoss, per_epoch: u64 },
    #[error(transparent)]
    Observer(ObserverError),
    /// Streamed training data could not be read (names the file).
    #[error(transparent)]
    Data(SourceError),
}

/// One step's numbers, still on the device: the caller reads them when it likes.
pub struct StepOut {
    pub loss: Tensor<1>,
    pub correct: Tensor<1, Int>,
    pub samples: usize,
}

pub struct Session<M: TappedModel> {
    spec: RunSpec,
    train: TrainConfig,
    device: Device,
    /// Taken out for the duration of a step (a step consumes the model).
    model: Option<M>,
    optim: ModuleOptimizer,
    recorder: Option<Recorder>,
    tracked: Option<TrackedSet>,
    layers: Vec<LayerInfo>,
    /// Each weighted layer's initial weights, for layer rotation.
    start_weights: Vec<(String, Tensor<1>)>,
    progress: Progress,
    /// The epoch under way: its order, how far into it, its augmentation and losses.
    /// Training samples: each epoch's order is a permutation of them.
    n_train: usize,
    order: Vec<usize>,
    cursor: usize,
    augment_rng: Xoshiro256PlusPlus,
    losses: LossLog,
    /// Spent in steps and epoch ends since the last epoch end.
    seconds: f64,
}

impl<M: TappedModel> Session<M> {
    /// A fresh run of `spec` on `train` (the tracked set is drawn from it): `build` makes the
    /// network on the seeded device. `first_traced`: a neuron every layer's figure 2 traces
    /// (the page's view); otherwise a seeded choice.
    pub fn start(spec: RunSpec, train: &Dataset, norm: Normalization, device: &Device, first_traced: Option<usize>, build: impl FnOnce(&Device) -> M) -> Self {
        Self::new(spec, train.len(), Some((train, norm, first_traced)), device, build)
    }

    /// A run that records no gradient signs (ResNet50: the paper studied it through figures 3
    /// and 4 and Table 1 only) on `n_train` samples the caller streams.
    pub fn start_unrecorded(spec: RunSpec, n_train: usize, device: &Device, build: impl FnOnce(&Device) -> M) -> Self {
        Self::new(spec, n_train, None, device, build)
    }

    fn new(spec: RunSpec, n_train: usize, recorded: Option<(&Dataset, Normalization, Option<usize>)>, device: &Device, build: impl FnOnce(&Device) -> M) -> Self {
        let cfg = spec.train.clone().expect("a session trains: its spec has a training config");
        device.seed(spec.seed);
        let model = build(device);
        let layers = model.layers();
        let start_weights = rotation::snapshot(model.weight_layers());
        let (recorder, tracked) = match recorded {
            None => (None, None),
            Some((train, norm, first_traced)) => {
                let tracked = TrackedSet::new(train, tracked_indices(n_train, cfg.tracked_samples, spec.seed), norm, CHUNK, device);
                let snapshot = match first_traced {
                    Some(neuron) => snapshot_choice_with(&layers, cfg.snapshot_neurons, spec.seed, neuron),
                    None => snapshot_choice(&layers, cfg.snapshot_neurons, spec.seed),
                };
                let items = Self::items_of(&cfg, &tracked, n_train);
                let mut r = Recorder::new(cfg.mode, layers.clone(), items, tracked.len(), snapshot, device);
                r.certainty_epsilon = cfg.certainty_epsilon;
                if cfg.conv_signs == ConvSigns::Positions {
                    r = r.with_positions(POSITIONS_PER_CHANNEL, spec.seed);
                }
                (Some(r), Some(tracked))
            }
        };
        let progress = Progress { fingerprint: spec.training_fingerprint(), ..Progress::default() };
        let mut s = Self {
            optim: cfg.init_optimizer(),
            train: cfg,
            device: device.clone(),
            model: Some(model),
            recorder,
            tracked,
            layers,
            start_weights,
            progress,
            n_train,
            order: Vec::new(),
            cursor: 0,
            augment_rng: Xoshiro256PlusPlus::seed_from_u64(0),
            losses: LossLog::default(),
            seconds: 0.0,
            spec,
        };
        s.begin_epoch();
        s
    }

    /// Count rows: the tracked samples, or every training sample (online recording).
    fn items_of(cfg: &TrainConfig, tracked: &TrackedSet, n_train: usize) -> usize {
        match cfg.mode {
            RecordingMode::Tracked => tracked.len(),
            RecordingMode::Online => n_train,
        }
    }

    /// Rows of the recorder's counts (what a checkpoint's recorder must have).
    pub fn count_rows(&self) -> usize {
        self.recorder.as_ref().map_or(0, |r| r.items)
    }

    /// Continues from a checkpoint: its weights, optimizer, recorder and progress (read and
    /// checked by the caller against [`Session::take_model`]'s fresh model and this spec).
    pub fn resume(&mut self, model: M, optim: ModuleOptimizer, recorder: Option<Recorder>, progress: Progress) {
        self.model = Some(model);
        self.optim = optim;
        if recorder.is_some() {
            self.recorder = recorder;
        }
        self.progress = progress;
        self.begin_epoch();
    }

    /// The fresh model and optimizer, for a checkpoint loader to fill.
    pub fn take_model(&mut self) -> (M, ModuleOptimizer) {
        (self.model.take().expect("the model"), std::mem::replace(&mut self.optim, self.train.init_optimizer()))
    }

    /// The order and augmentation of the epoch `progress.epochs_done`, from (seed, epoch) alone.
    fn begin_epoch(&mut self) {
        let (seed, epoch) = (self.spec.seed, self.progress.epochs_done);
        self.device.seed(epoch_seed(seed, epoch));
        self.augment_rng = Xoshiro256PlusPlus::seed_from_u64(augment_seed(seed, epoch));
        self.order = epoch_order(self.n_train, seed, epoch);
        self.cursor = 0;
        self.losses = LossLog::default();
        self.seconds = 0.0;
    }

    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    pub fn model(&self) -> &M {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    pub fn recorder_mut(&mut self) -> Option<&mut Recorder> {
        self.recorder.as_mut()
    }

    pub fn tracked(&self) -> Option<&TrackedSet> {
        self.tracked.as_ref()
    }

    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn start_weights(&self) -> &[(String, Tensor<1>)] {
        &self.start_weights
    }

    pub fn batches_per_epoch(&self) -> usize {
        Batches::count(self.order.len(), self.train.batch_size)
    }

    pub fn total_steps(&self) -> u64 {
        (self.batches_per_epoch() as u64).saturating_mul(self.train.epochs as u64)
    }

    /// The epoch under way (0-based), with the share of it done.
    pub fn epoch_position(&self) -> f64 {
        self.progress.epochs_done as f64 + self.cursor as f64 / self.order.len().max(1) as f64
    }

    pub fn is_finished(&self) -> bool {
        self.progress.epochs_done >= self.train.epochs
    }

    /// Every batch of the epoch under way has been stepped: [`Session::end_epoch`] is due.
    pub fn epoch_complete(&self) -> bool {
        self.cursor >= self.order.len()
    }

    /// The epoch's next batch from the in-memory training set (augmented when the spec says so),
    /// then [`Session::step_on`].
    pub fn step(&mut self, split: &Split, obs: &mut dyn Observer<M>) -> Result<StepOut, RunError> {
        let started = Instant::now();
        let end = (self.cursor + self.train.batch_size).min(self.order.len());
        let rows: Vec<usize> = self.order[self.cursor..end].to_vec();
        let (x, y) = if self.spec.augment {
            split.train.batch_augmented(&rows, split.norm, 4, &mut self.augment_rng, &self.device)
        } else {
            split.train.batch(&rows, split.norm, &self.device)
        };
        self.cursor = end;
        self.seconds += started.elapsed().as_secs_f64();
        self.step_on(x, y, &rows, obs)
    }

    /// One training step on a batch the caller made (`rows`: its training-set indices, for
    /// online recording): a recording of the tracked set first when one is due.
    pub fn step_on(&mut self, x: Tensor<2>, y: Tensor<1, Int>, rows: &[usize], obs: &mut dyn Observer<M>) -> Result<StepOut, RunError> {
        let started = Instant::now();
        let step = self.progress.step;
        let model = self.model.take().expect("the model");
        let record_now = step % self.train.every_batches as u64 == 0;
        let lr = self.train.learning_rate_at(step, self.total_steps());
        let mut recorded = None;
        let online = match (self.recorder.as_mut(), self.tracked.as_ref()) {
            (Some(recorder), Some(tracked)) => match self.train.mode {
                RecordingMode::Tracked => {
                    if record_now {
                        recorder.record_tracked(&model, tracked, step);
                        recorded = Some(recorder.recordings);
                    }
                    None
                }
                RecordingMode::Online => {
                    if record_now {
                        recorder.snapshot_only(&model, tracked, step);
                    }
                    let ids: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
                    let inner = self.device.clone().inner();
                    Some((recorder, Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len()]), &inner)))
                }
            },
            _ => None,
        };
        let (model, loss, correct) = train_step_smoothed(model, &mut self.optim, lr, self.train.label_smoothing, x, y, online);
        self.model = Some(model);
        self.losses.push(step, loss.clone());
        self.progress.step += 1;
        self.seconds += started.elapsed().as_secs_f64();
        if let Some(recordings) = recorded {
            obs.on(&Event::Recorded { step, recordings }).map_err(RunError::Observer)?;
        }
        obs.on(&Event::Step { step: self.progress.step, total: self.total_steps(), epoch: self.progress.epochs_done }).map_err(RunError::Observer)?;
        Ok(StepOut { loss, correct, samples: rows.len() })
    }

    /// Reads the losses stepped since the last read (one read for all of them) and checks them:
    /// a run whose loss is not finite stops here.
    pub fn settle(&mut self, obs: &mut dyn Observer<M>) -> Result<(), RunError> {
        let per_epoch = self.batches_per_epoch() as u64;
        self.losses.check().map_err(|bad| RunError::Diverged { bad, per_epoch })?;
        obs.on(&Event::Loss { epoch: self.progress.epochs_done, mean: self.losses.mean() }).map_err(RunError::Observer)
    }

    /// The losses stepped since the last read, for a caller that reads them itself (the page on
    /// WebGPU, where reads are awaited); hand the values to [`Session::absorb_losses`].
    pub fn pending_losses(&mut self) -> Option<Tensor<1>> {
        self.losses.take_pending()
    }

    pub fn absorb_losses(&mut self, values: &[f32]) -> Result<(), RunError> {
        let per_epoch = self.batches_per_epoch() as u64;
        self.losses.absorb(values).map_err(|bad| RunError::Diverged { bad, per_epoch })
    }

    /// Ends a complete epoch: test accuracy and layer rotation measured here (synchronous reads).
    pub fn end_epoch(&mut self, test: &Dataset, norm: Normalization, obs: &mut dyn Observer<M>) -> Result<(), RunError> {
        self.settle(obs)?;
        let started = Instant::now();
        let acc = accuracy(self.model(), test, norm, &self.device, CHUNK);
        let rotation = rotation::cosine_distances(&self.model().weight_layers(), &self.start_weights);
        self.seconds += started.elapsed().as_secs_f64();
        self.end_epoch_with(acc, rotation, obs)
    }

    /// Ends a complete epoch with numbers the caller measured (asynchronously, or on data the
    /// session does not hold); the losses must have been read.
    pub fn end_epoch_with(&mut self, test_accuracy: f64, rotation: Vec<f64>, obs: &mut dyn Observer<M>) -> Result<(), RunError> {
        let p = &mut self.progress;
        p.epochs_done += 1;
        p.epoch_loss.push(self.losses.mean());
        p.epoch_test_accuracy.push(test_accuracy);
        p.layer_rotation.push(rotation);
        p.train_seconds += self.seconds;
        let (epoch, loss) = (p.epochs_done, self.losses.mean());
        obs.on(&Event::EpochEnd { epoch, loss, test_accuracy, state: EpochState { model: self.model(), optimizer: self.optimizer(), recorder: self.recorder(), progress: &self.progress } }).map_err(RunError::Observer)?;
        if !self.is_finished() {
            self.begin_epoch();
        }
        Ok(())
    }

    /// The run's model, optimizer and recorder, for the analysis.
    pub fn into_parts(self) -> (M, Option<Recorder>, Option<TrackedSet>, Progress, RunSpec) {
        (self.model.expect("the model"), self.recorder, self.tracked, self.progress, self.spec)
    }
}
