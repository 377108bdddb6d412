//! What leaves a running session: typed events to an observer, the way burn-train's event
//! processor feeds its renderers. The trainer's progress bar and checkpoint writer and the page
//! worker's messages are observers; none of them is written into the session.

use crate::model::TappedModel;
use crate::recording::Recorder;
use crate::train::ModuleOptimizer;

use super::progress::Progress;

/// An observer's failure (a checkpoint that could not be written): the run stops with it.
pub type ObserverError = Box<dyn std::error::Error + Send + Sync>;

pub enum Event<'a, M: TappedModel> {
    /// A training step is done (`step` of `total`, counted from 1).
    Step { step: u64, total: u64, epoch: usize },
    /// The tracked set was recorded before a step.
    Recorded { step: u64, recordings: usize },
    /// The losses read so far this epoch: their mean.
    Loss { epoch: usize, mean: f64 },
    /// An epoch ended: `state` is complete enough to checkpoint.
    EpochEnd { epoch: usize, loss: f64, test_accuracy: f64, state: EpochState<'a, M> },
    /// One experiment of the analysis is done.
    Analysis { done: usize, total: usize, layer: &'a str, what: &'a str },
}

/// What a checkpoint holds, as the session has it at an epoch's end.
pub struct EpochState<'a, M: TappedModel> {
    pub model: &'a M,
    pub optimizer: &'a ModuleOptimizer,
    pub recorder: Option<&'a Recorder>,
    pub progress: &'a Progress,
}

pub trait Observer<M: TappedModel> {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError>;
}

/// Observes nothing (tests, benchmarks).
pub struct Quiet;

impl<M: TappedModel> Observer<M> for Quiet {
    fn on(&mut self, _: &Event<'_, M>) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// Several observers, each told every event in order.
pub struct All<'o, M: TappedModel>(pub Vec<&'o mut dyn Observer<M>>);

impl<M: TappedModel> Observer<M> for All<'_, M> {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        for o in self.0.iter_mut() {
            o.on(event)?;
        }
        Ok(())
    }
}
