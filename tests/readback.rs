//! The awaited reads the browser's WebGPU path uses give what the blocking ones give: deferred
//! snapshots, the recorder's state, accuracy, and a model copied to another device.

use burn::module::Module;
use burn::tensor::{Device, read_sync};
use hidden_neurons::model::{Activation, Mlp, TappedModel};
use hidden_neurons::readback::copy_module;
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{accuracy, accuracy_async, adam, train_step};

#[path = "common/mod.rs"]
mod common;
use common::{TOY_NORM as NORM, tiny_model, toy_dataset};

fn model(device: &Device) -> Mlp {
    tiny_model(Activation::Relu, device)
}

#[test]
fn deferred_snapshots_settle_to_the_immediate_ones() {
    let device = Device::flex().autodiff();
    let model = model(&device);
    let data = toy_dataset(10);
    let tracked = TrackedSet::new(&data, (0..10).collect(), NORM, 4, &device);
    let new = || Recorder::new(RecordingMode::Tracked, model.layers(), 10, 10, vec![vec![0, 2], vec![5]], &device);
    let mut now = new();
    let mut later = new();
    later.deferred_reads = true;
    for step in [0, 10, 20] {
        now.record_tracked(&model, &tracked, step);
        later.record_tracked(&model, &tracked, step);
    }
    // Nothing read yet, but the blocking state still holds every snapshot.
    assert!(later.snapshots[0].is_empty() && later.steps.is_empty());
    assert_eq!(later.to_state(), now.to_state());
    // The counts' mirror settles the snapshots and carries the counts, not the snapshots.
    let mirror = read_sync(later.counts_on(&Device::flex())).unwrap();
    assert_eq!(later.steps, vec![0, 10, 20]);
    assert_eq!(later.snapshots, now.snapshots);
    assert_eq!(later.to_state(), now.to_state());
    for layer in 0..2 {
        assert_eq!(read_f32(mirror.counts(layer).0), read_f32(now.counts(layer).0));
        assert_eq!(read_f32(mirror.counts(layer).1), read_f32(now.counts(layer).1));
    }
    assert!(mirror.steps.is_empty() && mirror.snapshots.iter().all(|s| s.is_empty()));
    assert_eq!((mirror.recordings, mirror.snapshot_neurons.clone()), (3, vec![vec![0, 2], vec![5]]));
    // Settling twice reads nothing twice.
    read_sync(later.settle()).unwrap();
    assert_eq!(later.snapshots[1].len(), 3);
}

#[test]
fn awaited_accuracy_equals_the_blocking_one() {
    let device = Device::flex().autodiff();
    let model = model(&device);
    let data = toy_dataset(23);
    let blocking = accuracy(&model, &data, NORM, &device, 5);
    assert_eq!(read_sync(accuracy_async(&model, &data, NORM, &device, 5)).unwrap(), blocking);
    assert_eq!(read_sync(accuracy_async(&model, &toy_dataset(0), NORM, &device, 5)).unwrap(), 0.0);
}

#[test]
fn a_copied_model_computes_and_trains_like_the_original() {
    let device = Device::flex().autodiff();
    let original = model(&device);
    let other = Device::flex().autodiff();
    let copy = read_sync(copy_module(&original, &other)).unwrap();
    let data = toy_dataset(6);
    let (x, _) = data.range_batch(0, 6, NORM, &device.clone().inner());
    let (xo, y) = data.range_batch(0, 6, NORM, &other);
    let a = read_f32(original.valid().forward(x));
    let b = read_f32(copy.valid().forward(xo.clone().inner()));
    assert_eq!(a, b);
    // The copy's parameters still take gradients: one step changes its output.
    let mut optim = adam();
    let (trained, loss, _) = train_step(copy, &mut optim, 0.05, xo.clone(), y, None);
    assert!(read_f32(loss)[0].is_finite());
    let c = read_f32(trained.valid().forward(xo.inner()));
    assert_ne!(b, c);
}
