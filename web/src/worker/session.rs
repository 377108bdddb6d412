//! One training run in the browser: the same model, step, recorder and experiments as the native
//! trainer, driven one batch at a time by the worker's loop.

use std::collections::BTreeMap;
use std::rc::Rc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use hidden_neurons::analysis::{
    LayerSigns, class_figure, distribution_at, evolution_figure, layer_signs_with, one_neuron_figure, quantization_figure,
    whole_layer_figure, window_figure,
};
use hidden_neurons::data::Split;
use hidden_neurons::model::{MlpOrCnn, TappedModel};
use hidden_neurons::readback::{copy_module, read_f32_async};
use hidden_neurons::recording::{Recorder, RecordingMode};
use hidden_neurons::results::Results;
use hidden_neurons::run::{self, Event, InMemorySets, LayerAnalysis, Observer, ObserverError, Outcome, Unit};
use hidden_neurons::train::accuracy_async;

use super::device::{Backend, cpu};
use super::js;
use super::pool::Pool;
use crate::protocol::{HelperInput, Live, MAX_WORKERS, ModelKind, Plan, ProgressPoint, Settings, Setup, View, WorkerOutput};

/// Samples per recording or evaluation pass.
const CHUNK: usize = run::CHUNK;
/// Least time between two progress points, and between two live-figure updates.
const POINT_MS: f64 = 400.0;
/// Layer rotation goes with a progress point at most this often (and at every epoch's end): its
/// read and its figure's redraw are not worth every point.
const ROTATION_MS: f64 = 2000.0;
const LIVE_MS: f64 = 1000.0;

pub struct Session {
    split: Rc<Split>,
    pub view: View,
    pub paused: bool,
    /// The training device (autodiff over WebGPU or ndarray).
    device: Device,
    /// What runs. On WebGPU every read is awaited, and the live figures and the analysis run on
    /// a CPU copy (the percentile sort and the histogram kernels read back synchronously).
    plan: Plan,
    /// The run itself, the same as the native trainer's.
    run: run::Session<MlpOrCnn>,
    last_rotation: f64,
    /// Since the last progress point.
    window: Window,
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
    layers: BTreeMap<usize, LayerAnalysis>,
    seconds: f64,
}

/// The run's events the page cares about while training: a recording makes the live figures due.
#[derive(Default)]
struct Recordings {
    happened: bool,
}

impl<M: TappedModel> Observer<M> for Recordings {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        if let Event::Recorded { .. } = event {
            self.happened = true;
        }
        Ok(())
    }
}

/// The analysis' progress, as messages to the page.
struct AnalysisProgress;

impl<M: TappedModel> Observer<M> for AnalysisProgress {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        if let Event::Analysis { done, total, layer, what } = event {
            js::post(&WorkerOutput::AnalysisProgress { done: *done, total: *total, what: format!("{layer}: {what}") });
        }
        Ok(())
    }
}

/// A device read failed (WebGPU lost the device, ran out of memory): the run cannot go on.
fn read_failed(e: impl std::fmt::Display) -> String {
    format!("{e}; training stopped")
}

impl Session {
    /// A run of `settings` (checked by the caller) on `split`.
    pub fn new(split: Rc<Split>, settings: Settings, view: View, backend: Backend) -> Self {
        let spec = settings.spec_unchecked().with_data(split.name.clone(), split.train.len(), split.test.len());
        let device = backend.device.autodiff();
        let network = spec.network.clone();
        let mut run = run::Session::start(spec, &split.train, split.norm, &device, Some(view.neuron), |d| network.mlp_or_cnn(d).expect("the page trains MLPs and CNNs"));
        if let Some(r) = run.recorder_mut() {
            r.deferred_reads = backend.plan.webgpu;
        }
        let now = js::now();
        Self {
            split,
            view,
            paused: false,
            device,
            plan: backend.plan,
            run,
            last_rotation: f64::NEG_INFINITY,
            window: Window::default(),
            last_point: now,
            last_live: now,
            live_due: false,
            finished: false,
            analysis: None,
            test_at: None,
        }
    }

    fn model(&self) -> &MlpOrCnn {
        self.run.model()
    }

    fn recorder(&self) -> &Recorder {
        self.run.recorder().expect("the page's runs record")
    }

    pub fn wants_to_run(&self) -> bool {
        !self.paused && !self.finished
    }

    /// Stops training for good (after an error).
    pub fn stop(&mut self) {
        self.finished = true;
    }

    /// One batch: a recording first when one is due, then the optimizer step.
    pub async fn step(&mut self) -> Result<(), String> {
        let started = js::now();
        let mut seen = Recordings::default();
        let out = self.run.step(&self.split, &mut seen).map_err(|e| e.to_string())?;
        self.live_due |= seen.happened;
        // One read, one wait for the GPU: [loss, correct count].
        let loss = self.run.pending_losses().expect("the step's loss");
        let both = Tensor::cat(vec![loss.reshape([1]), out.correct.float().reshape([1])], 0);
        let both = read_f32_async(both).await.map_err(read_failed)?;
        self.run.absorb_losses(&both[..1]).map_err(|e| format!("{e}: try a lower learning rate"))?;
        let (loss, correct) = (both[0] as f64, both[1] as i64);
        self.window.loss_sum += loss;
        self.window.correct += correct as u64;
        self.window.samples += out.samples as u64;
        self.window.steps += 1;
        self.window.ms += js::now() - started;
        if self.run.epoch_complete() {
            self.end_epoch().await?;
        }
        Ok(())
    }

    async fn test_accuracy(&mut self) -> Result<f64, String> {
        let step = self.run.progress().step;
        if let Some((at, acc)) = self.test_at {
            if at == step {
                return Ok(acc);
            }
        }
        let acc = accuracy_async(self.model(), &self.split.test, self.split.norm, &self.device, CHUNK).await.map_err(read_failed)?;
        self.test_at = Some((step, acc));
        Ok(acc)
    }

    /// Each weighted layer's rotation: a few scalars computed on the device, one awaited read.
    async fn rotation(&self) -> Result<Vec<f64>, String> {
        match hidden_neurons::rotation::cosines(&self.model().weight_layers(), self.run.start_weights()) {
            Some(c) => Ok(hidden_neurons::rotation::distances(read_f32_async(c).await.map_err(read_failed)?)),
            None => Ok(Vec::new()),
        }
    }

    async fn end_epoch(&mut self) -> Result<(), String> {
        let acc = self.test_accuracy().await?;
        let rotation = self.rotation().await?;
        self.run.end_epoch_with(acc, rotation.clone(), &mut run::Quiet).map_err(|e| e.to_string())?;
        self.post_point(Some(acc), Some(rotation)).await?;
        if self.run.is_finished() {
            self.finished = true;
            self.post_live().await?;
            js::post(&WorkerOutput::Trained { test_accuracy: acc, seconds: self.run.progress().train_seconds });
        }
        Ok(())
    }

    /// Progress and live figures, each at most at its cadence.
    pub async fn after_slice(&mut self) -> Result<(), String> {
        let now = js::now();
        if now - self.last_point >= POINT_MS && self.window.steps > 0 {
            self.post_point(None, None).await?;
        }
        if self.live_due && now - self.last_live >= LIVE_MS {
            self.post_live().await?;
        }
        Ok(())
    }

    async fn post_point(&mut self, test_accuracy: Option<f64>, rotation: Option<Vec<f64>>) -> Result<(), String> {
        self.last_point = js::now();
        let Window { loss_sum, correct, samples, steps, ms } = std::mem::take(&mut self.window);
        if steps == 0 && test_accuracy.is_none() {
            return Ok(());
        }
        let distances = match rotation {
            Some(r) => Some(r),
            None if self.last_point - self.last_rotation >= ROTATION_MS => Some(self.rotation().await?),
            None => None,
        };
        let rotation = match distances {
            Some(d) => {
                self.last_rotation = self.last_point;
                self.run.start_weights().iter().map(|(name, _)| name.clone()).zip(d).collect()
            }
            None => Vec::new(),
        };
        js::post(&WorkerOutput::Progress {
            point: ProgressPoint {
                step: self.run.progress().step,
                total_steps: self.run.total_steps(),
                epoch: self.run.epoch_position(),
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
    /// use the recorder's host data afterwards.
    async fn signs(&mut self) -> Result<Vec<LayerSigns>, String> {
        let mut examples: Vec<usize> = self.recorder().snapshot_neurons.iter().map(|n| n[0]).collect();
        if let Some(e) = examples.get_mut(self.view.layer) {
            *e = self.view.neuron;
        }
        if self.plan.webgpu {
            let cpu = cpu();
            let mirror = self.run.recorder_mut().expect("the page's runs record").counts_on(&cpu).await.map_err(read_failed)?;
            let tracked = self.run.tracked().expect("the page's runs record");
            Ok(layer_signs_with(&mirror, tracked, &tracked.labels, &cpu, &examples))
        } else {
            let tracked = self.run.tracked().expect("the page's runs record");
            let labels = &tracked.labels;
            Ok(layer_signs_with(self.recorder(), tracked, labels, &self.device, &examples))
        }
    }

    /// Figures 1, 5 and 2 for the current view.
    pub async fn post_live(&mut self) -> Result<(), String> {
        self.last_live = js::now();
        self.live_due = false;
        let l = self.view.layer.min(self.recorder().layers.len() - 1);
        let signs = self.signs().await?;
        let s = &signs[l];
        let id = self.run.spec().model.id();
        let mode = RecordingMode::Tracked;
        let recorder = self.recorder();
        let traced = recorder.snapshot_neurons[l].clone();
        let (fig2, fig2_at) = match traced.iter().position(|&n| n == s.example_neuron) {
            Some(j) if !recorder.steps.is_empty() => {
                let rec = self.view.recording.unwrap_or(usize::MAX);
                (Some(evolution_figure(&id, recorder, s, l, j, "fig2", "Figure 2")), Some(distribution_at(&id, recorder, s, l, j, rec)))
            }
            _ => (None, None),
        };
        let live = Live {
            step: self.run.progress().step,
            recordings: recorder.recordings,
            view: View { layer: l, neuron: s.example_neuron, recording: self.view.recording },
            layers: recorder.layers.iter().map(|i| (i.name.clone(), i.neurons)).collect(),
            tracked: self.run.tracked().map_or(0, |t| t.len()),
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
    /// With `workers` of 2 or more (by default the browser's core count) the experiments are
    /// shared out over that many helper workers ([`super::pool`]); the results are the same.
    pub async fn analyze(&mut self, workers: Option<usize>) -> Result<(), String> {
        let started = js::now();
        let (model, dev) = if self.plan.webgpu {
            let cpu = cpu().autodiff();
            (copy_module(self.model(), &cpu).await.map_err(read_failed)?, cpu)
        } else {
            (self.model().clone(), self.device.clone())
        };
        let spec = self.run.spec().clone();
        let all: Vec<usize> = (0..self.run.layers().len()).collect();
        let sets = InMemorySets::new(&self.split.train, &spec.experiments);
        let units = run::units(&all, &spec.experiment_layers);
        let helpers = workers.unwrap_or_else(js::cores).min(MAX_WORKERS).min(units.len());
        let (layers, workers) = if helpers >= 2 {
            self.analyze_pooled(&model, &dev, &sets, units, helpers).await?
        } else {
            let layers = sets
                .with(&self.split.test, self.split.norm, |data| run::analyze(&model, data, &spec.experiments, &all, &spec.experiment_layers, &dev, &mut AnalysisProgress))
                .map_err(|e| e.to_string())?;
            (layers, 0)
        };
        let seconds = (js::now() - started) / 1000.0;
        self.analysis = Some(Analysis { layers, seconds });
        let signs = self.signs().await?;
        let results = self.results_from(&signs).await?;
        let refs: Vec<&LayerSigns> = signs.iter().collect();
        js::post(&WorkerOutput::Analysis {
            figures: vec![quantization_figure(&results, &signs), window_figure(&results, &signs), class_figure(&results.model, &refs)],
            workers,
            seconds,
        });
        js::post(&WorkerOutput::Results { json: results.to_json() });
        Ok(())
    }

    /// The analysis' `units` on `helpers` helper workers, this worker running what they cannot;
    /// also the number of helpers that ran any.
    async fn analyze_pooled(&self, model: &MlpOrCnn, dev: &Device, sets: &InMemorySets, units: Vec<Unit>, helpers: usize) -> Result<(BTreeMap<usize, LayerAnalysis>, usize), String> {
        let spec = self.run.spec();
        let cfg = &spec.experiments;
        let mut pool = Pool::start(helpers);
        let setup = (pool.len() > 0)
            .then(|| -> Result<Vec<u8>, String> {
                let record = model.clone().into_record().into_bytes().map_err(|e| format!("the model could not be handed to the analysis helpers: {e}"))?;
                let head = self.split.train.head(cfg.stats_samples.max(cfg.retrain_samples));
                let setup = Setup { spec: spec.clone(), norm: self.split.norm, model: record.to_vec(), train: head.into(), test: self.split.test.clone().into() };
                Ok(HelperInput::Setup(Box::new(setup)).to_bytes())
            })
            .transpose()?
            .unwrap_or_default();
        let names: Vec<String> = model.layers().into_iter().map(|l| l.name).collect();
        let total: usize = units.iter().map(|u| u.ticks(cfg)).sum();
        let mut done = 0;
        // The helpers' ticks as the events the one-worker analysis emits, told to its observer.
        let mut tick = |unit: Unit, what: &str| {
            done += 1;
            let _ = Observer::<MlpOrCnn>::on(&mut AnalysisProgress, &Event::Analysis { done, total, layer: &names[unit.layer], what });
        };
        let (test, norm) = (&self.split.test, self.split.norm);
        let local = |unit: Unit, tick: &mut dyn FnMut(&str)| sets.with(test, norm, |data| run::analyze_unit(model, data, cfg, unit, dev, tick)).map_err(|e| e.to_string());
        let results = pool.run(&setup, run::costliest_first(&units), &mut tick, local).await?;
        Ok((run::merge(results), pool.helped()))
    }

    /// results.json of the run so far, in the native trainer's schema (experiments empty until
    /// the analysis ran).
    pub async fn results(&mut self) -> Result<Results, String> {
        let signs = self.signs().await?;
        self.results_from(&signs).await
    }

    async fn results_from(&mut self, signs: &[LayerSigns]) -> Result<Results, String> {
        let test_accuracy = match self.run.progress().epoch_test_accuracy.last() {
            Some(&a) => a,
            None => self.test_accuracy().await?,
        };
        let empty = BTreeMap::new();
        let (analysis, seconds) = match &self.analysis {
            Some(a) => (&a.layers, a.seconds),
            None => (&empty, 0.0),
        };
        Ok(run::results(&Outcome {
            spec: self.run.spec(),
            backend: &self.plan.name,
            test_accuracy,
            layers: self.run.layers(),
            signs: Some(signs),
            recorder: self.run.recorder(),
            analysis,
            progress: Some(self.run.progress()),
            rotation_layers: self.run.start_weights().iter().map(|(name, _)| name.clone()).collect(),
            experiment_seconds: seconds,
        }))
    }
}

/// Trains a fresh ReLU `model` for `steps` batches (recording at the page's default cadence
/// when `recording`), the page's half of the TF.js benchmark. `steps` and `batch_size` passed
/// [`crate::protocol::check_bench`].
pub async fn bench(split: &Rc<Split>, backend: Backend, model: ModelKind, steps: usize, batch_size: usize, recording: bool) -> WorkerOutput {
    // More batches than the warm-up step and `steps` need: a finished run has none left, and
    // finishing would tell the page that a model was trained.
    let per_epoch = split.train.len().div_ceil(batch_size.max(1)).max(1);
    // Recording only at the warm-up step when off (MAX_EVERY is beyond any benchmark's steps).
    let every_batches = if recording { Settings::default().every_batches } else { hidden_neurons::settings::MAX_EVERY };
    let settings = Settings { model, batch_size: batch_size.max(1), epochs: (steps + 1) / per_epoch + 1, every_batches, ..Settings::default() };
    let mut s = Session::new(split.clone(), settings, View::default(), backend);
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
    if let Some(r) = s.run.recorder_mut() {
        if let Err(e) = r.settle().await {
            return WorkerOutput::Error { message: read_failed(e) };
        }
    }
    let seconds = (js::now() - started) / 1000.0;
    let backend = s.plan.name;
    WorkerOutput::BenchResult { backend, model: model.id().into(), steps, batch_size, recording, seconds, samples_per_second: (steps * batch_size) as f64 / seconds }
}
