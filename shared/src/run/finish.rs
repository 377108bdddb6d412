//! The end of a run held in memory: the sign summaries, the experiments on the in-memory training
//! and test sets, and results.json's numbers, the same for the trainer and for tests.

use burn::tensor::Device;
use web_time::Instant;

use crate::analysis::{LayerSigns, layer_signs};
use crate::data::{SourceError, Split};
use crate::model::TappedModel;
use crate::recording::{Recorder, RecordingMode};
use crate::results::Results;
use crate::train::accuracy;

use super::analyze::{InMemorySets, analyze};
use super::assemble::{Outcome, results};
use super::events::Observer;
use super::session::Session;
use super::spec::{CHUNK, RunSpec};

/// What a finished run leaves: its results and what its figures are drawn from.
pub struct Finished {
    pub results: Results,
    pub recorder: Recorder,
    pub signs: Vec<LayerSigns>,
    pub spec: RunSpec,
}

/// Analyses a trained session that recorded signs ([`Session::start`]) on `split`, the data it
/// trained on; `backend` names the device for results.json.
pub fn finish_in_memory<M: TappedModel>(session: Session<M>, split: &Split, device: &Device, backend: &str, obs: &mut dyn Observer<M>) -> Result<Finished, SourceError> {
    let started = Instant::now();
    let test_accuracy = match session.progress().epoch_test_accuracy.last() {
        Some(&a) => a,
        None => accuracy(session.model(), &split.test, split.norm, device, CHUNK),
    };
    let layers = session.layers().to_vec();
    let rotation_layers = session.start_weights().iter().map(|(name, _)| name.clone()).collect();
    let (model, recorder, tracked, progress, spec) = session.into_parts();
    let (recorder, tracked) = (recorder.expect("a session started to record"), tracked.expect("a session started to record"));
    let item_labels = match recorder.mode {
        RecordingMode::Tracked => &tracked.labels,
        RecordingMode::Online => &split.train.labels,
    };
    let signs = layer_signs(&recorder, &tracked, item_labels, device);
    let all: Vec<usize> = (0..layers.len()).collect();
    let analysis = InMemorySets::new(&split.train, &spec.experiments)
        .with(&split.test, split.norm, |data| analyze(&model, data, &spec.experiments, &all, &spec.experiment_layers, device, obs))?;
    let results = results(&Outcome {
        spec: &spec,
        backend,
        test_accuracy,
        layers: &layers,
        signs: Some(&signs),
        recorder: Some(&recorder),
        analysis: &analysis,
        progress: Some(&progress),
        rotation_layers,
        experiment_seconds: started.elapsed().as_secs_f64(),
    });
    Ok(Finished { results, recorder, signs, spec })
}
