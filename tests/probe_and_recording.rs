//! The gradient probe against finite differences, the sign accumulator, and the recorder's saved
//! state.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::module::Module;
use hidden_neurons::model::{Activation, LayerInfo, ProbeTap, TappedModel};
use hidden_neurons::recording::{Recorder, RecorderState, RecordingMode, TrackedSet};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::{Nudge, TOY_NORM, tiny_model, toy_dataset};

fn inputs(device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let x: Vec<f32> = (0..15).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    (
        Tensor::from_data(TensorData::new(x, [3, 5]), device),
        Tensor::from_data(TensorData::new(vec![0i64, 2, 1], [3]), device),
    )
}

#[test]
fn probe_gradient_matches_finite_differences() {
    for activation in [Activation::Sigmoid, Activation::None, Activation::Relu] {
        let device = Device::flex().autodiff();
        let model = tiny_model(activation, &device);
        let (x, y) = inputs(&device);
        let ce = CrossEntropyLossConfig::new().init(&device);
        let mut tap = ProbeTap::default();
        let loss = ce.forward(model.forward_tapped(x.clone(), &mut tap), y.clone());
        let mut grads = loss.backward();
        let plain = Device::flex();
        let valid = model.valid();
        let (xp, yp) = inputs(&plain);
        let loss_at = |nudge: Nudge| -> f32 {
            let mut nudge = nudge;
            read_f32(ce.forward(valid.forward_tapped(xp.clone(), &mut nudge), yp.clone()))[0]
        };
        let eps = 1e-2f32;
        for (layer, info) in model.layers().iter().enumerate() {
            let g = read_f32(tap.probes[layer].as_ref().unwrap().grad_remove(&mut grads).unwrap());
            assert_eq!(g.len(), 3 * info.neurons);
            for row in 0..3 {
                for col in 0..info.neurons {
                    let up = loss_at(Nudge { layer, sample: row, neuron: col, by: eps });
                    let down = loss_at(Nudge { layer, sample: row, neuron: col, by: -eps });
                    let fd = (up - down) / (2.0 * eps);
                    let ad = g[row * info.neurons + col];
                    assert!((fd - ad).abs() < 2e-4, "{activation:?} {} [{row},{col}]: AD {ad} vs FD {fd}", info.name);
                }
            }
        }
    }
}

#[test]
fn a_samples_probe_gradient_ignores_the_other_samples() {
    // Per-sample gradients: changing sample 1's input leaves sample 0's gradient unchanged.
    let device = Device::flex().autodiff();
    let model = tiny_model(Activation::Sigmoid, &device);
    let ce = CrossEntropyLossConfig::new().init(&device);
    let grad_of = |x: Tensor<2>, y: Tensor<1, Int>| {
        let mut tap = ProbeTap::default();
        let loss = ce.forward(model.forward_tapped(x, &mut tap), y);
        let grads = loss.backward();
        read_f32(tap.probes[1].as_ref().unwrap().grad(&grads).unwrap())
    };
    let (x, y) = inputs(&device);
    let a = grad_of(x.clone(), y.clone());
    let b = grad_of(x.clone().slice_assign([1..2, 0..5], Tensor::ones([1, 5], &device)), y);
    assert_eq!(&a[..6], &b[..6]);
    assert_ne!(&a[6..12], &b[6..12]);
}

#[test]
fn accumulator_counts_signs_and_ignores_zeros() {
    let device = Device::flex().autodiff();
    let layers = vec![LayerInfo { name: "l".into(), neurons: 3, positions: 1 }];
    let mut rec = Recorder::new(RecordingMode::Online, layers, 4, 0, vec![vec![]], &device);
    let inner = device.clone().inner();
    let rows = |r: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(r.clone(), [r.len()]), &inner);
    let g = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 3]), &inner);
    rec.accumulate(0, rows(vec![0, 2]), g(vec![1.0, -2.0, 0.0, -0.5, 0.0, 3.0]));
    rec.accumulate(0, rows(vec![2, 3]), g(vec![2.0, 0.0, 1e-30, -1.0, -1.0, -1.0]));
    let (pos, neg) = rec.counts(0);
    assert_eq!(read_f32(pos), vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
    assert_eq!(read_f32(neg), vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
}

#[test]
fn tracked_recording_counts_one_sign_per_pair_and_snapshots() {
    let device = Device::flex().autodiff();
    let model = tiny_model(Activation::Sigmoid, &device);
    let data = toy_dataset(10);
    let tracked = TrackedSet::new(&data, (0..10).collect(), TOY_NORM, 4, &device);
    let mut rec = Recorder::new(RecordingMode::Tracked, model.layers(), 10, 10, vec![vec![0, 2], vec![5]], &device);
    rec.record_tracked(&model, &tracked, 0);
    rec.record_tracked(&model, &tracked, 10);
    assert_eq!(rec.recordings, 2);
    assert_eq!(rec.steps, vec![0, 10]);
    for layer in 0..2 {
        let (pos, neg) = rec.counts(layer);
        let total: Vec<f32> = read_f32(pos + neg);
        // Sigmoid gradients are never exactly zero here: each pair has one sign per recording.
        assert!(total.iter().all(|&t| t == 2.0), "{total:?}");
    }
    assert_eq!(rec.snapshots[0].len(), 2);
    assert_eq!(rec.snapshots[0][0].len(), 10 * 2);
    assert_eq!(rec.snapshots[1][1].len(), 10);

    let state = rec.to_state();
    let bytes = state.to_bytes();
    let back = RecorderState::from_bytes(&bytes).unwrap();
    assert_eq!(back, state);
    assert!(RecorderState::from_bytes(&bytes[..bytes.len() - 3]).is_err());
    assert!(RecorderState::from_bytes(b"not a state at all").is_err());
    let restored = Recorder::from_state(back, &device);
    assert_eq!(read_f32(restored.counts(1).0), read_f32(rec.counts(1).0));
}

#[test]
fn the_viewed_neuron_is_always_traced() {
    use hidden_neurons::recording::{snapshot_choice, snapshot_choice_with};
    let layer = |neurons| LayerInfo { name: "l".into(), neurons, positions: 1 };
    let layers = [layer(512), layer(512), layer(10)];
    let plain = snapshot_choice(&layers, 64, 7);
    for neuron in [0, 5, 300, 511, 100_000] {
        let choice = snapshot_choice_with(&layers, 64, 7, neuron);
        for (l, (traced, info)) in choice.iter().zip(&layers).enumerate() {
            let n = neuron.min(info.neurons - 1);
            assert_eq!(traced[0], n, "layer {l}: neuron {neuron} not first in {traced:?}");
            assert_eq!(traced.len(), 64.min(info.neurons), "layer {l}");
            let mut unique = traced.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), traced.len(), "layer {l}: duplicates in {traced:?}");
            assert!(traced.iter().all(|&t| t < info.neurons));
            // The rest is the usual seeded choice, in its order.
            let rest: Vec<usize> = plain[l].iter().copied().filter(|&t| t != n).take(traced.len() - 1).collect();
            assert_eq!(&traced[1..], &rest[..], "layer {l}");
        }
    }
}
