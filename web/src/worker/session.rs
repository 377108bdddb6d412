//! One training run in the browser: the same model, step, recorder and experiments as the native
//! trainer, driven one batch at a time by the worker's loop.

use std::collections::BTreeMap;
use std::rc::Rc;

use burn::tensor::{Device, Tensor};
use hidden_neurons::analysis::{
    LayerSigns, class_figure, distribution_at, evolution_figure, layer_signs_with, one_neuron_figure, quantization_figure,
    whole_layer_figure, window_figure,
};
use hidden_neurons::data::{Split, epoch_order};
use hidden_neurons::experiments::{self, CentreAccuracy, ExperimentConfig, RankAccuracy};
use hidden_neurons::model::{MlpOrCnn, TappedModel};
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet, snapshot_choice_with, tracked_indices};
use hidden_neurons::readback::{copy_module, read_f32_async};
use hidden_neurons::results::{LayerResults, RecordingSummary, Results};
use hidden_neurons::train::{ModuleOptimizer, accuracy_async, adam, train_step};

use super::device::{Backend, cpu};
use super::js;
use crate::protocol::{Live, Plan, ProgressPoint, Settings, TRACED, View, WorkerOutput};

/// Samples per recording or evaluation pass.
const CHUNK: usize = 500;
/// Least time between two progress points, and between two live-figure updates.
const POINT_MS: f64 = 400.0;
/// Layer rotation goes with a progress point at most this often (and at every epoch's end): its
/// read and its figure's redraw are not worth every point.
const ROTATION_MS: f64 = 2000.0;
const LIVE_MS: f64 = 1000.0;

pub struct Session {
    split: Rc<Split>,
    settings: Settings,
    pub view: View,
    pub paused: bool,
    /// The training device (autodiff over WebGPU or ndarray).
    device: Device,
    /// What runs. On WebGPU every read is awaited, and the live figures and the analysis run on
    /// a CPU copy (the percentile sort and the histogram kernels read back synchronously).
    plan: Plan,
    /// Taken out for the duration of a step (a step consumes the model).
    model: Option<MlpOrCnn>,
    /// Each weighted layer's initial weights, for layer rotation.
    start_weights: Vec<(String, Tensor<1>)>,
    last_rotation: f64,
    optim: ModuleOptimizer,
    recorder: Recorder,
    tracked: TrackedSet,
    order: Vec<usize>,
    epoch: usize,
    cursor: usize,
    step: u64,
    total_steps: u64,
    /// Since the last progress point.
    window: Window,
    epoch_loss_sum: f64,
    epoch_batches: usize,
    epoch_loss: Vec<f64>,
    epoch_test_accuracy: Vec<f64>,
    train_ms: f64,
    last_point: f64,
    last_live: f64,
    live_due: bool,
    finished: bool,
    analysis: Option<Analysis>,
    /// The test accuracy at a step, so that an analysis and an export of the same (paused)
    /// model evaluate it once: on a software WebGPU adapter that is a minute.
    test_at: Option<(u64, f64)>,
}

/// What the steps since the last progress point add up to.
#[derive(Default)]
struct Window {
    loss_sum: f64,
    correct: u64,
    samples: u64,
    steps: u64,
    /// Spent training them (evaluation and figures excluded).
    ms: f64,
}

struct Analysis {
    config: ExperimentConfig,
    /// Per layer: zero rank, quantization, sliding window.
    layers: Vec<(f64, Vec<RankAccuracy>, Vec<CentreAccuracy>)>,
    seconds: f64,
}

/// A device read failed (WebGPU lost the device, ran out of memory): the run cannot go on.
fn read_failed(e: impl std::fmt::Display) -> String {
    format!("{e}; training stopped")
}

impl Session {
    pub fn new(split: Rc<Split>, settings: Settings, view: View, backend: Backend) -> Self {
        let device = backend.device.autodiff();
        device.seed(settings.seed);
        let model = settings.build_model(&device);
        let layers = model.layers();
        let start_weights = hidden_neurons::rotation::snapshot(model.weight_layers());
        let n = split.train.len();
        let tracked = TrackedSet::new(&split.train, tracked_indices(n, settings.tracked_samples, settings.seed), split.norm, CHUNK, &device);
        let cfg = settings.train_config();
        let mut recorder =
            Recorder::new(RecordingMode::Tracked, layers.clone(), tracked.len(), tracked.len(), snapshot_choice_with(&layers, TRACED, settings.seed, view.neuron), &device);
        recorder.certainty_epsilon = cfg.certainty_epsilon;
        recorder.deferred_reads = backend.plan.webgpu;
        let per_epoch = n.div_ceil(settings.batch_size) as u64;
        let now = js::now();
        let mut s = Self {
            order: Vec::new(),
            total_steps: per_epoch * settings.epochs as u64,
            split,
            settings,
            view,
            paused: false,
            device,
            plan: backend.plan,
            model: Some(model),
            start_weights,
            last_rotation: f64::NEG_INFINITY,
            optim: adam(),
            recorder,
            tracked,
            epoch: 0,
            cursor: 0,
            step: 0,
            window: Window::default(),
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            epoch_loss: Vec::new(),
            epoch_test_accuracy: Vec::new(),
            train_ms: 0.0,
            last_point: now,
            last_live: now,
            live_due: false,
            finished: false,
            analysis: None,
            test_at: None,
        };
        s.begin_epoch();
        s
    }

    fn model(&self) -> &MlpOrCnn {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    pub fn wants_to_run(&self) -> bool {
        !self.paused && !self.finished
    }

    /// Stops training for good (after an error).
    pub fn stop(&mut self) {
        self.finished = true;
    }

    fn begin_epoch(&mut self) {
        // Dropout masks and the order depend only on (seed, epoch), as in the native trainer.
        self.device.seed(self.settings.seed.wrapping_mul(1_000_003).wrapping_add(self.epoch as u64));
        self.order = epoch_order(self.split.train.len(), self.settings.seed, self.epoch);
        self.cursor = 0;
        self.epoch_loss_sum = 0.0;
        self.epoch_batches = 0;
    }

    /// One batch: a recording first when one is due, then the optimizer step.
    pub async fn step(&mut self) -> Result<(), String> {
        let started = js::now();
        let end = (self.cursor + self.settings.batch_size).min(self.order.len());
        let (x, y) = self.split.train.batch(&self.order[self.cursor..end], self.split.norm, &self.device);
        let model = self.model.take().expect("model present");
        if self.step % self.settings.every_batches as u64 == 0 {
            self.recorder.record_tracked(&model, &self.tracked, self.step);
            self.live_due = true;
        }
        let (model, loss, correct) = train_step(model, &mut self.optim, self.settings.learning_rate, x, y, None);
        self.model = Some(model);
        // One read, one wait for the GPU: [loss, correct count].
        let both = Tensor::cat(vec![loss.inner().reshape([1]), correct.float().reshape([1])], 0);
        let both = read_f32_async(both).await.map_err(read_failed)?;
        let (loss, correct) = (both[0] as f64, both[1] as i64);
        if !loss.is_finite() {
            return Err(format!("training diverged at step {} (loss {loss}): try a lower learning rate", self.step));
        }
        let samples = (end - self.cursor) as u64;
        self.window.loss_sum += loss;
        self.window.correct += correct as u64;
        self.window.samples += samples;
        self.window.steps += 1;
        self.epoch_loss_sum += loss;
        self.epoch_batches += 1;
        self.cursor = end;
        self.step += 1;
        let spent = js::now() - started;
        self.window.ms += spent;
        self.train_ms += spent;
        if self.cursor >= self.order.len() {
            self.end_epoch().await?;
        }
        Ok(())
    }

    async fn test_accuracy(&mut self) -> Result<f64, String> {
        if let Some((step, acc)) = self.test_at {
            if step == self.step {
                return Ok(acc);
            }
        }
        let acc = accuracy_async(self.model(), &self.split.test, self.split.norm, &self.device, CHUNK).await.map_err(read_failed)?;
        self.test_at = Some((self.step, acc));
        Ok(acc)
    }

    async fn end_epoch(&mut self) -> Result<(), String> {
        let acc = self.test_accuracy().await?;
        self.epoch_loss.push(self.epoch_loss_sum / self.epoch_batches.max(1) as f64);
        self.epoch_test_accuracy.push(acc);
        self.post_point(Some(acc)).await?;
        self.epoch += 1;
        if self.epoch >= self.settings.epochs {
            self.finished = true;
            self.post_live().await?;
            js::post(&WorkerOutput::Trained { test_accuracy: acc, seconds: self.train_ms / 1000.0 });
        } else {
            self.begin_epoch();
        }
        Ok(())
    }

    /// Progress and live figures, each at most at its cadence.
    pub async fn after_slice(&mut self) -> Result<(), String> {
        let now = js::now();
        if now - self.last_point >= POINT_MS && self.window.steps > 0 {
            self.post_point(None).await?;
        }
        if self.live_due && now - self.last_live >= LIVE_MS {
            self.post_live().await?;
        }
        Ok(())
    }

    async fn post_point(&mut self, test_accuracy: Option<f64>) -> Result<(), String> {
        self.last_point = js::now();
        let Window { loss_sum, correct, samples, steps, ms } = std::mem::take(&mut self.window);
        if steps == 0 && test_accuracy.is_none() {
            return Ok(());
        }
        // Layer rotation: a few scalars computed on the device, one awaited read.
        let due = test_accuracy.is_some() || self.last_point - self.last_rotation >= ROTATION_MS;
        let cosines = if due { hidden_neurons::rotation::cosines(&self.model().weight_layers(), &self.start_weights) } else { None };
        let rotation = match cosines {
            Some(c) => {
                self.last_rotation = self.last_point;
                let cos = read_f32_async(c).await.map_err(read_failed)?;
                let names = self.start_weights.iter().map(|(name, _)| name.clone());
                names.zip(hidden_neurons::rotation::distances(cos)).collect()
            }
            None => Vec::new(),
        };
        let per_epoch = self.order.len().max(1) as f64;
        js::post(&WorkerOutput::Progress {
            point: ProgressPoint {
                step: self.step,
                total_steps: self.total_steps,
                epoch: self.epoch as f64 + self.cursor as f64 / per_epoch,
                loss: if steps > 0 { loss_sum / steps as f64 } else { f64::NAN },
                train_accuracy: if samples > 0 { correct as f64 / samples as f64 } else { f64::NAN },
                test_accuracy,
                samples_per_second: if ms > 0.0 { samples as f64 / (ms / 1000.0) } else { 0.0 },
                rotation,
            },
        });
        Ok(())
    }

    /// Each layer's sign summary. Also reads every pending snapshot back, so that figure 2 can
    /// use `self.recorder`'s host data afterwards.
    async fn signs(&mut self) -> Result<Vec<LayerSigns>, String> {
        let mut examples: Vec<usize> = self.recorder.snapshot_neurons.iter().map(|n| n[0]).collect();
        if let Some(e) = examples.get_mut(self.view.layer) {
            *e = self.view.neuron;
        }
        let labels = &self.tracked.labels;
        if self.plan.webgpu {
            let cpu = cpu();
            let mirror = self.recorder.counts_on(&cpu).await.map_err(read_failed)?;
            Ok(layer_signs_with(&mirror, &self.tracked, labels, &cpu, &examples))
        } else {
            Ok(layer_signs_with(&self.recorder, &self.tracked, labels, &self.device, &examples))
        }
    }

    /// Figures 1, 5 and 2 for the current view.
    pub async fn post_live(&mut self) -> Result<(), String> {
        self.last_live = js::now();
        self.live_due = false;
        let l = self.view.layer.min(self.recorder.layers.len() - 1);
        let signs = self.signs().await?;
        let s = &signs[l];
        let id = self.settings.model_id();
        let mode = RecordingMode::Tracked;
        let traced = self.recorder.snapshot_neurons[l].clone();
        let (fig2, fig2_at) = match traced.iter().position(|&n| n == s.example_neuron) {
            Some(j) if !self.recorder.steps.is_empty() => {
                let rec = self.view.recording.unwrap_or(usize::MAX);
                (
                    Some(evolution_figure(&id, &self.recorder, s, l, j, "fig2", "Figure 2")),
                    Some(distribution_at(&id, &self.recorder, s, l, j, rec)),
                )
            }
            _ => (None, None),
        };
        let live = Live {
            step: self.step,
            recordings: self.recorder.recordings,
            view: View { layer: l, neuron: s.example_neuron, recording: self.view.recording },
            layers: self.recorder.layers.iter().map(|i| (i.name.clone(), i.neurons)).collect(),
            tracked: self.tracked.len(),
            defined_pairs: s.histogram.total(),
            fig1: one_neuron_figure(&id, mode, &[s]),
            fig5: whole_layer_figure(&id, mode, &[s]),
            fig2,
            fig2_at,
            traced,
            neuron_outer_fraction: s.neuron_outer_fraction.clone(),
        };
        js::post(&WorkerOutput::Live { live: Box::new(live) });
        Ok(())
    }

    /// Experiments 3 to 5 on the current model, then figures 3, 4, 8 and results.json. On
    /// WebGPU they run on a CPU copy of the model: their percentile sorts read synchronously.
    pub async fn analyze(&mut self) -> Result<(), String> {
        let started = js::now();
        let (model, dev) = if self.plan.webgpu {
            let cpu = cpu().autodiff();
            (copy_module(self.model(), &cpu).await.map_err(read_failed)?, cpu)
        } else {
            (self.model().clone(), self.device.clone())
        };
        let config = self.settings.experiment_config();
        let layers = self.recorder.layers.len();
        let total = layers * (config.ranks.len() + config.centres.len());
        let mut done = 0;
        let stats_set = self.split.train.head(config.stats_samples);
        let mut out = Vec::new();
        for l in 0..layers {
            let name = self.recorder.layers[l].name.clone();
            let mut tick = |what: &str| {
                done += 1;
                js::post(&WorkerOutput::AnalysisProgress { done, total, what: format!("{name}: {what}") });
            };
            let split = &self.split;
            let zero = experiments::zero_percentile_rank(&model, l, &stats_set, split.norm, &dev, CHUNK);
            let q = experiments::quantization(&model, l, &stats_set, &split.test, split.norm, &config, experiments::QuantizeAt::Pre, &dev, || tick("quantization"));
            let w = experiments::sliding_window(&model, l, &split.train, &split.test, split.norm, &config, &dev, || tick("sliding window"));
            out.push((zero, q, w));
        }
        self.analysis = Some(Analysis { config, layers: out, seconds: (js::now() - started) / 1000.0 });
        let signs = self.signs().await?;
        let results = self.results_from(&signs).await?;
        let refs: Vec<&LayerSigns> = signs.iter().collect();
        js::post(&WorkerOutput::Analysis {
            figures: vec![quantization_figure(&results, &signs), window_figure(&results, &signs), class_figure(&results.model, &refs)],
        });
        js::post(&WorkerOutput::Results { json: results.to_json() });
        Ok(())
    }

    /// results.json of the run so far, in the native trainer's schema (experiments empty until
    /// the analysis ran).
    pub async fn results(&mut self) -> Result<Results, String> {
        let signs = self.signs().await?;
        self.results_from(&signs).await
    }

    async fn results_from(&mut self, signs: &[LayerSigns]) -> Result<Results, String> {
        let mut layers = BTreeMap::new();
        for (l, s) in signs.iter().enumerate() {
            let (zero, q, w) = match &self.analysis {
                Some(a) => a.layers[l].clone(),
                None => (f64::NAN, Vec::new(), Vec::new()),
            };
            layers.insert(s.name.clone(), LayerResults::new(s, self.recorder.layers[l].neurons, zero, q, w));
        }
        let test_accuracy = match self.epoch_test_accuracy.last() {
            Some(&a) => a,
            None => self.test_accuracy().await?,
        };
        let cfg = self.settings.train_config();
        Ok(Results {
            model: self.settings.model_id(),
            dataset: self.split.name.clone(),
            preset: "browser".into(),
            seed: self.settings.seed,
            test_accuracy,
            recording: RecordingSummary {
                mode: cfg.mode,
                every_batches: cfg.every_batches,
                recordings: self.recorder.recordings,
                tracked_samples: self.tracked.len(),
                note: cfg.mode.note(),
            },
            layers,
            backend: self.plan.name.clone(),
            architecture: self.settings.architecture(),
            experiments: self.analysis.as_ref().map(|a| a.config.clone()).unwrap_or_else(|| self.settings.experiment_config()),
            train: cfg,
            epoch_loss: self.epoch_loss.clone(),
            epoch_test_accuracy: self.epoch_test_accuracy.clone(),
            train_seconds: self.train_ms / 1000.0,
            experiment_seconds: self.analysis.as_ref().map(|a| a.seconds).unwrap_or(0.0),
            layer_rotation: Vec::new(),
            settings: None,
        })
    }
}

/// Trains a fresh ReLU MLP for `steps` batches (recording every 10 batches on 1000 tracked
/// samples when `recording`), the page's half of the TF.js benchmark. `steps` and `batch_size`
/// passed [`crate::protocol::check_bench`].
pub async fn bench(split: &Rc<Split>, backend: Backend, steps: usize, batch_size: usize, recording: bool) -> WorkerOutput {
    // More batches than the warm-up step and `steps` need: a finished run has none left, and
    // finishing would tell the page that a model was trained.
    let per_epoch = split.train.len().div_ceil(batch_size.max(1)).max(1);
    let settings = Settings { batch_size: batch_size.max(1), epochs: (steps + 1) / per_epoch + 1, ..Settings::default() };
    let mut s = Session::new(split.clone(), settings, View::default(), backend);
    if !recording {
        s.settings.every_batches = usize::MAX;
    }
    // A warm-up step outside the timing (first-call allocations).
    if let Err(message) = s.step().await {
        return WorkerOutput::Error { message };
    }
    let started = js::now();
    for _ in 0..steps {
        if let Err(message) = s.step().await {
            return WorkerOutput::Error { message };
        }
    }
    // On WebGPU the snapshots are read back here, inside the timing, as the CPU reads them.
    if let Err(e) = s.recorder.settle().await {
        return WorkerOutput::Error { message: read_failed(e) };
    }
    let seconds = (js::now() - started) / 1000.0;
    let backend = s.plan.name;
    WorkerOutput::BenchResult { backend, steps, batch_size, recording, seconds, samples_per_second: (steps * batch_size) as f64 / seconds }
}

