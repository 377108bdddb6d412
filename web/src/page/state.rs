//! Everything the page shows, as signals; the worker's messages update it.

use hidden_neurons::backend::{BackendChoice, GpuAdapter};
use hidden_neurons::figures::{Curve, CurveFigure, Figure, NamedFigure};
use leptos::prelude::*;

use crate::form::{Form, FormError};
use crate::protocol::{DataChoice, Live, Plan, ProgressPoint, WorkerOutput, plan};
use crate::url_state::{FigureId, UrlState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the worker.
    Starting,
    /// The worker runs; the data set is on its way.
    Loading,
    /// No data set is loaded: the user chose their own files and has not given them yet, or the
    /// chosen set failed to load (another one can be chosen).
    NoData,
    Ready,
    Training,
    Paused,
    Trained,
    Analyzing,
    /// Something the user cannot fix from the page (the worker or the data failed).
    Broken,
    /// The run ended on an error (a diverged loss, a lost GPU); Train starts a new one.
    Stopped,
}

impl Phase {
    /// Whether the data set is locked: another may be chosen only once the worker is up and
    /// while it is neither loading nor analyzing.
    pub fn data_locked(self) -> bool {
        matches!(self, Phase::Starting | Phase::Loading | Phase::Broken | Phase::Analyzing)
    }
}

/// The backend note while the WebGPU worker is missing.
pub const GPU_WORKER_MISSING: &str =
    "WebGPU is there, but this server has no WebGPU build of the worker yet (worker_gpu_loader.js did not load; scripts/serve.sh builds it after the page): training runs on the CPU. Reload once it is built to train on the GPU.";

#[derive(Clone, Copy)]
pub struct AppState {
    pub url: RwSignal<UrlState>,
    /// The settings form as typed; its valid readings go to `url`.
    pub form: RwSignal<Form>,
    /// Why the form cannot train, if it cannot (Train is disabled meanwhile).
    pub settings_error: Memo<Option<FormError>>,
    pub phase: RwSignal<Phase>,
    pub backend: RwSignal<String>,
    pub backend_note: RwSignal<String>,
    /// The browser's WebGPU adapter, as the worker saw it.
    pub adapter: RwSignal<Option<GpuAdapter>>,
    /// The loaded data set: its name, training and test images.
    pub data: RwSignal<Option<(String, usize, usize)>>,
    pub errors: RwSignal<Vec<String>>,
    pub points: RwSignal<Vec<ProgressPoint>>,
    /// The points that carry layer rotation (every few seconds): its figure redraws only then.
    pub rotation: RwSignal<Vec<ProgressPoint>>,
    pub live: RwSignal<Option<Live>>,
    pub analysis: RwSignal<Vec<NamedFigure>>,
    pub analysis_progress: RwSignal<Option<(usize, usize, String)>>,
    pub results: RwSignal<Option<String>>,
    /// A results.json download waits for the worker's answer.
    pub export_pending: RwSignal<bool>,
    pub last_bench: RwSignal<Option<String>>,
    /// Where the run stood when the analysis began (it may run mid-training).
    pub before_analysis: RwSignal<Phase>,
    /// Train was pressed while the other worker build was starting for it: the run starts once
    /// that worker has the data.
    pub pending_start: RwSignal<bool>,
    /// The WebGPU build of the worker did not load from this server (`scripts/serve.sh` serves
    /// the page before that build is done): runs stay on the CPU build until a reload.
    pub gpu_worker_missing: RwSignal<bool>,
}

impl AppState {
    pub fn new(url: UrlState) -> Self {
        let form = RwSignal::new(Form::new(&url.settings));
        let url = RwSignal::new(url);
        let settings_error = Memo::new(move |_| url.with(|u| form.with(|f| f.read(&u.settings).err())));
        Self {
            url,
            form,
            settings_error,
            phase: RwSignal::new(Phase::Starting),
            backend: RwSignal::new(String::new()),
            backend_note: RwSignal::new(String::new()),
            adapter: RwSignal::new(None),
            data: RwSignal::new(None),
            errors: RwSignal::new(Vec::new()),
            points: RwSignal::new(Vec::new()),
            rotation: RwSignal::new(Vec::new()),
            live: RwSignal::new(None),
            analysis: RwSignal::new(Vec::new()),
            analysis_progress: RwSignal::new(None),
            results: RwSignal::new(None),
            export_pending: RwSignal::new(false),
            last_bench: RwSignal::new(None),
            before_analysis: RwSignal::new(Phase::Trained),
            pending_start: RwSignal::new(false),
            gpu_worker_missing: RwSignal::new(false),
        }
    }

    /// Shows `message` to the user; fatal when the worker or the data is the problem.
    pub fn fail(&self, message: String) {
        let fatal = matches!(self.phase.get_untracked(), Phase::Starting | Phase::Loading);
        if fatal {
            self.phase.set(Phase::Broken);
            self.pending_start.set(false);
        }
        self.errors.update(|e| e.push(message));
    }

    pub fn apply(&self, msg: WorkerOutput) {
        match msg {
            WorkerOutput::Ready { webgpu } => {
                // The page asked for the adapter before it chose the worker build; a worker that
                // sees one the page did not (or none) is believed for what it will run on.
                self.adapter.set(webgpu);
                self.show_planned_backend();
            }
            WorkerOutput::Backend { name, note } => {
                self.backend.set(name);
                self.backend_note.set(note);
            }
            WorkerOutput::DataLoaded { data, name, train, test } => {
                // Own files dropped over loaded data replace it only now that they have loaded.
                self.clear_run();
                self.url.update(|u| u.settings.data = data);
                self.data.set(Some((name, train, test)));
                self.phase.set(Phase::Ready);
            }
            WorkerOutput::DataFailed { data: _, message, kept } => {
                if !kept {
                    self.pending_start.set(false);
                    self.data.set(None);
                    self.phase.set(Phase::NoData);
                }
                self.errors.update(|e| e.push(message));
            }
            WorkerOutput::Progress { point } => {
                if !point.rotation.is_empty() {
                    self.rotation.update(|r| r.push(point.clone()));
                }
                self.points.update(|p| p.push(point));
            }
            WorkerOutput::Live { live } => self.live.set(Some(*live)),
            WorkerOutput::Paused => self.phase.set(Phase::Paused),
            WorkerOutput::Resumed => self.phase.set(Phase::Training),
            WorkerOutput::Trained { .. } => self.phase.set(Phase::Trained),
            WorkerOutput::AnalysisProgress { done, total, what } => self.analysis_progress.set(Some((done, total, what))),
            WorkerOutput::Analysis { figures, .. } => {
                self.analysis.set(figures);
                self.analysis_progress.set(None);
                self.phase.set(self.before_analysis.get_untracked());
            }
            WorkerOutput::Results { json } => {
                if self.export_pending.get_untracked() {
                    self.export_pending.set(false);
                    super::download::text("results.json", "application/json", &json);
                }
                self.results.set(Some(json));
            }
            WorkerOutput::BenchResult { backend, model, steps, batch_size, recording, seconds, samples_per_second } => self.last_bench.set(Some(format!(
                "{model} on {backend}: {steps} steps of batch {batch_size} ({}) in {seconds:.2} s: {samples_per_second:.0} samples/s",
                if recording { "recording on" } else { "recording off" }
            ))),
            WorkerOutput::Reset => {
                self.phase.set(Phase::Ready);
                self.clear_run();
                self.show_planned_backend();
            }
            WorkerOutput::Error { message } => self.fail(message),
            WorkerOutput::Stopped { message } => {
                self.analysis_progress.set(None);
                self.export_pending.set(false);
                self.phase.set(Phase::Stopped);
                self.errors.update(|e| e.push(message));
            }
        }
    }

    /// The user typed `text` into `field`: kept as typed; when the whole form is valid, its
    /// settings become the URL's (and the next run's).
    pub fn edit_setting(&self, field: crate::form::Field, text: String) {
        self.form.update(|f| f.set(field, text));
        let read = self.url.with_untracked(|u| self.form.with_untracked(|f| f.read(&u.settings)));
        if let Ok(settings) = read {
            if self.url.with_untracked(|u| u.settings != settings) {
                self.url.update(|u| u.settings = settings);
            }
        }
    }

    /// A new data set was chosen: the loaded one and every result trained on it go.
    pub fn forget_data(&self, choice: DataChoice) {
        self.url.update(|u| u.settings.data = choice);
        self.data.set(None);
        self.clear_run();
    }

    /// Whether the form's settings can train.
    pub fn settings_valid(&self) -> bool {
        self.settings_error.with(|e| e.is_none())
    }

    /// What the next run will train on, for the URL's backend choice: the CPU once the WebGPU
    /// build of the worker failed to load.
    pub fn planned_backend(&self) -> Plan {
        let choice = self.url.with_untracked(|u| u.settings.backend);
        let p = self.adapter.with_untracked(|a| plan(choice, a.as_ref()));
        if p.webgpu && self.gpu_worker_missing.get_untracked() {
            return Plan { note: GPU_WORKER_MISSING.into(), ..plan(BackendChoice::Cpu, None) };
        }
        p
    }

    /// Shows [`AppState::planned_backend`].
    pub fn show_planned_backend(&self) {
        let p = self.planned_backend();
        self.backend.set(p.name);
        self.backend_note.set(p.note);
    }

    pub fn clear_run(&self) {
        self.points.set(Vec::new());
        self.rotation.set(Vec::new());
        self.live.set(None);
        self.analysis.set(Vec::new());
        self.analysis_progress.set(None);
        self.results.set(None);
    }

    /// The data of figure `id` as it stands (tracks the signals it reads).
    pub fn figure(&self, id: FigureId) -> Option<Figure> {
        let live = || self.live.with(|l| l.clone());
        let analysis = |stem: &str| self.analysis.with(|a| a.iter().find(|f| f.stem.starts_with(stem)).map(|f| f.figure.clone()));
        match id {
            FigureId::Loss => Some(self.points.with(|p| training_curves(p, true))),
            FigureId::Accuracy => Some(self.points.with(|p| training_curves(p, false))),
            FigureId::Rotation => self.rotation.with(|p| (!p.is_empty()).then(|| rotation_curves(p))),
            FigureId::Neurons => live().map(|l| neurons_figure(&l)),
            FigureId::Fig1 => live().map(|l| l.fig1.figure),
            FigureId::Fig5 => live().map(|l| l.fig5.figure),
            FigureId::Fig2 => live().and_then(|l| l.fig2).map(|f| f.figure),
            FigureId::Fig2At => live().and_then(|l| l.fig2_at).map(|f| f.figure),
            FigureId::Fig3 => analysis("fig3"),
            FigureId::Fig4 => analysis("fig4"),
            FigureId::Fig8 => analysis("fig8"),
        }
    }

    /// [`AppState::figure`] without subscribing the caller.
    pub fn figure_untracked(&self, id: FigureId) -> Option<Figure> {
        leptos::prelude::untrack(|| self.figure(id))
    }

    /// The named figure (with file stem and caption) for downloads.
    pub fn named(&self, id: FigureId) -> Option<NamedFigure> {
        let figure = self.figure_untracked(id)?;
        Some(NamedFigure { stem: id.name().into(), caption: id.heading().into(), figure })
    }
}

/// Loss (or train and test accuracy) against epochs.
fn training_curves(points: &[ProgressPoint], loss: bool) -> Figure {
    let xs: Vec<f64> = points.iter().map(|p| p.epoch).collect();
    let curves = if loss {
        vec![Curve { label: "training loss".into(), xs, ys: points.iter().map(|p| p.loss).collect(), reference: None, marker: None }]
    } else {
        let tests: Vec<&ProgressPoint> = points.iter().filter(|p| p.test_accuracy.is_some()).collect();
        vec![
            Curve { label: "train (batches)".into(), xs, ys: points.iter().map(|p| p.train_accuracy).collect(), reference: None, marker: None },
            Curve {
                label: "test".into(),
                xs: tests.iter().map(|p| p.epoch).collect(),
                ys: tests.iter().filter_map(|p| p.test_accuracy).collect(),
                reference: None,
                marker: None,
            },
        ]
    };
    Figure::Curves(CurveFigure {
        title: if loss { "Training loss".into() } else { "Accuracy".into() },
        x_label: "epoch".into(),
        y_label: if loss { "cross-entropy".into() } else { "accuracy".into() },
        curves,
        marker_label: None,
    })
}

/// Layer rotation against epochs, a curve per weighted layer.
fn rotation_curves(points: &[ProgressPoint]) -> Figure {
    let with: Vec<&ProgressPoint> = points.iter().filter(|p| !p.rotation.is_empty()).collect();
    let layers: Vec<String> = with.first().map(|p| p.rotation.iter().map(|r| r.0.clone()).collect()).unwrap_or_default();
    let curves = layers
        .iter()
        .enumerate()
        .map(|(i, name)| Curve {
            label: name.clone(),
            xs: with.iter().map(|p| p.epoch).collect(),
            ys: with.iter().map(|p| p.rotation.get(i).map_or(f64::NAN, |r| r.1)).collect(),
            reference: None,
            marker: None,
        })
        .collect();
    Figure::Curves(CurveFigure {
        title: "Layer rotation".into(),
        x_label: "epoch".into(),
        y_label: "cosine distance to the initial weights".into(),
        curves,
        marker_label: None,
    })
}

/// Per neuron of the viewed layer, its share of clear-cut samples; the viewed neuron is marked.
fn neurons_figure(live: &Live) -> Figure {
    let layer = live.layers.get(live.view.layer).map(|l| l.0.clone()).unwrap_or_default();
    Figure::Curves(CurveFigure {
        title: format!("{layer}: share of samples with |avg sign| >= 0.8, per neuron"),
        x_label: "neuron".into(),
        y_label: "share of samples".into(),
        curves: vec![Curve {
            label: format!("{layer} (line: neuron {})", live.view.neuron),
            xs: (0..live.neuron_outer_fraction.len()).map(|i| i as f64).collect(),
            ys: live.neuron_outer_fraction.clone(),
            reference: None,
            marker: Some(live.view.neuron as f64),
        }],
        marker_label: Some(format!("selected neuron ({})", live.view.neuron)),
    })
}
