//! One run pipeline for both front ends: the native loop (synchronous reads in groups) and the
//! worker's way of driving the same session (a read after every step, the epoch's numbers
//! measured by the caller, yields in between) give equal results; a run resumed from an epoch's
//! checkpoint equals an uninterrupted one.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use hidden_neurons::data::Split;
use hidden_neurons::model::{Activation, Mlp, TappedModel};
use hidden_neurons::recording::Recorder;
use hidden_neurons::results::Results;
use hidden_neurons::run::{self, Family, ModelId, Network, Overrides, Preset, Quiet, RunSpec, Session};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::random_draws;

fn spec(split: &Split, epochs: usize) -> RunSpec {
    let overrides = Overrides { widths: Some(vec![24, 16]), epochs: Some(epochs), batch: Some(32), every: Some(3), tracked: Some(60), retrain_samples: Some(200), ..Overrides::default() };
    let mut spec = RunSpec::resolve(ModelId::new(Family::Mlp, Activation::Relu), Preset::Fast, 5, &overrides).unwrap().with_data(split.name.clone(), split.train.len(), split.test.len());
    spec.experiments.stats_samples = 150;
    spec.experiments.ranks = vec![0.0, 30.0, 50.0, 90.0];
    spec.experiments.centres = vec![15.0, 55.0];
    spec
}

fn split() -> Split {
    Split::synthetic("synthetic", 300, 120, 784, 1, 11)
}

fn start(spec: &RunSpec, split: &Split, device: &Device) -> Session<Mlp> {
    let Network::Mlp(cfg) = spec.network.clone() else { unreachable!() };
    Session::start(spec.clone(), &split.train, split.norm, device, None, |d| cfg.init(d))
}

/// The native trainer's loop: steps, losses read every 4 steps, synchronous epoch ends.
fn native(session: &mut Session<Mlp>, split: &Split, stop_after: Option<usize>) {
    let mut epochs = 0;
    while !session.is_finished() && stop_after.is_none_or(|n| epochs < n) {
        let mut steps = 0;
        while !session.epoch_complete() {
            session.step(split, &mut Quiet).unwrap();
            steps += 1;
            if steps % 4 == 0 {
                session.settle(&mut Quiet).unwrap();
            }
        }
        session.end_epoch(&split.test, split.norm, &mut Quiet).unwrap();
        epochs += 1;
    }
}

/// The worker's way: one read per step (loss with it), and the epoch's accuracy and rotation
/// measured outside the session, a yield (here: other work on the device) between steps.
fn worker_style(session: &mut Session<Mlp>, split: &Split, device: &Device) {
    while !session.is_finished() {
        let out = session.step(split, &mut Quiet).unwrap();
        let loss = session.pending_losses().unwrap();
        let both = read_f32(Tensor::cat(vec![loss.reshape([1]), out.correct.float().reshape([1])], 0));
        session.absorb_losses(&both[..1]).unwrap();
        // A yield: the page draws, answers messages; nothing of the run changes.
        let _ = read_f32(Tensor::<1>::ones([4], device).sum());
        if session.epoch_complete() {
            let acc = hidden_neurons::train::accuracy(session.model(), &split.test, split.norm, device, run::CHUNK);
            let rotation = hidden_neurons::rotation::cosine_distances(&session.model().weight_layers(), session.start_weights());
            session.end_epoch_with(acc, rotation, &mut Quiet).unwrap();
        }
    }
}

/// The analysis and results.json of a finished session, with the wall times zeroed.
fn finish(session: Session<Mlp>, split: &Split, device: &Device) -> Results {
    let mut results = run::finish_in_memory(session, split, device, "test", &mut Quiet).unwrap().results;
    results.train_seconds = 0.0;
    results.experiment_seconds = 0.0;
    results
}

#[test]
fn the_native_loop_and_worker_style_stepping_give_equal_results() {
    let _draws = random_draws();
    let split = split();
    let device = Device::flex().autodiff();
    let spec = spec(&split, 2);
    let mut a = start(&spec, &split, &device);
    native(&mut a, &split, None);
    let a = finish(a, &split, &device);
    let mut b = start(&spec, &split, &device);
    worker_style(&mut b, &split, &device);
    let b = finish(b, &split, &device);
    assert_eq!(a, b);
    // Not vacuous: the run learned, recorded and measured every experiment.
    assert_eq!(a.epoch_loss.len(), 2);
    assert!(a.epoch_loss[1] < a.epoch_loss[0], "{:?}", a.epoch_loss);
    assert_eq!(a.recording.as_ref().unwrap().recordings, (0..20).filter(|s| s % 3 == 0).count());
    assert_eq!(a.layer_rotation.len(), 3);
    assert!(a.layer_rotation.iter().all(|l| l.per_epoch.len() == 2 && l.per_epoch[1] > l.per_epoch[0]));
    for l in a.layers.values() {
        assert_eq!((l.quantization.len(), l.post_quantization.len(), l.sliding_window.len()), (4, 4, 2));
        assert!(l.outer_fraction.is_finite() && l.zero_percentile_rank.is_finite());
    }
    assert_eq!(a.settings.as_deref(), Some(spec.fingerprint().as_str()));
    assert_eq!(a.spec.as_ref(), Some(&spec));
}

#[test]
fn a_run_resumed_from_an_epochs_checkpoint_equals_an_uninterrupted_one() {
    let _draws = random_draws();
    let split = split();
    let device = Device::flex().autodiff();
    let spec = spec(&split, 3);
    let mut whole = start(&spec, &split, &device);
    native(&mut whole, &split, None);
    let whole = finish(whole, &split, &device);

    // One epoch, then what a checkpoint holds, written to bytes and read back.
    let mut first = start(&spec, &split, &device);
    native(&mut first, &split, Some(1));
    let model_bytes = first.model().clone().into_record().into_bytes().unwrap();
    let optim_bytes = first.optimizer().into_bytes().unwrap();
    let recorder_bytes = first.recorder().unwrap().to_state().to_bytes();
    let progress = serde_json::to_string(first.progress()).unwrap();
    drop(first);
    // Something else runs on the device in between (another process would reseed it).
    device.seed(999);
    let _ = read_f32(Tensor::<1>::random([16], burn::tensor::Distribution::Default, &device).sum());

    let mut resumed = start(&spec, &split, &device);
    let (model, optim) = resumed.take_model();
    let model = model.load_record(ModuleRecord::from_bytes(model_bytes).unwrap());
    let optim = optim.from_bytes(optim_bytes).unwrap();
    let recorder = Recorder::from_state(hidden_neurons::recording::RecorderState::from_bytes(&recorder_bytes).unwrap(), &device);
    resumed.resume(model, optim, Some(recorder), serde_json::from_str(&progress).unwrap());
    assert_eq!(resumed.progress().epochs_done, 1);
    native(&mut resumed, &split, None);
    let resumed = finish(resumed, &split, &device);
    assert_eq!(resumed, whole);
}
