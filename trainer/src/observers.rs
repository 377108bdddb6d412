//! The trainer's observers of a run: the progress bar and the checkpoint writer.

use hidden_neurons::model::TappedModel;
use hidden_neurons::run::{Event, Observer, ObserverError};
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::Checkpoint;

/// A progress bar, hidden with `--quiet`.
pub fn bar(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (eta {eta})")
            .expect("valid template"),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Training steps, losses and epochs; the analysis' experiments.
pub struct Bar(pub ProgressBar);

impl<M: TappedModel> Observer<M> for Bar {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        let pb = &self.0;
        match event {
            Event::Step { step, total, .. } => {
                pb.set_length(*total);
                pb.set_position(*step);
            }
            Event::Loss { epoch, mean } => pb.set_message(format!("epoch {} loss {mean:.4}", epoch + 1)),
            Event::EpochEnd { epoch, loss, test_accuracy, .. } => pb.set_message(format!("epoch {epoch} loss {loss:.4} test acc {test_accuracy:.4}")),
            Event::Analysis { done, total, layer, what } => {
                pb.set_length(*total as u64);
                pb.set_position(*done as u64);
                pb.set_message(format!("{layer} {what}"));
            }
            Event::Recorded { .. } => {}
        }
        Ok(())
    }
}

/// Writes a checkpoint at every epoch's end.
pub struct Checkpoints<'a>(pub &'a Checkpoint);

impl<M: TappedModel> Observer<M> for Checkpoints<'_> {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        if let Event::EpochEnd { state, .. } = event {
            self.0.save(state.model, state.optimizer, state.recorder, state.progress).map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    }
}
