//! Helpers shared by the integration tests.

// Each test binary uses a part of these.
#![allow(dead_code)]

use std::io::Write;

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::data::{Batches, Dataset, Normalization, epoch_order};
use hidden_neurons::model::{Activation, Mlp, MlpConfig, Tap, TappedModel};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{adam, train_step};

/// A 5-3 classification MLP with hidden widths 4 and 6, seeded, no dropout.
pub fn tiny_model(activation: Activation, device: &Device) -> Mlp {
    device.seed(3);
    MlpConfig { input: 5, hidden: vec![4, 6], classes: 3, activation, dropout: 0.0, first_index: 1, init: Default::default() }.init(device)
}

/// `n` samples of 5 features for [`tiny_model`], labels cycling through the 3 classes.
pub fn toy_dataset(n: usize) -> Dataset {
    Dataset {
        features: 5,
        images: (0..n * 5).map(|i| ((i * 37) % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
    }
}

/// The normalization used with [`toy_dataset`].
pub const TOY_NORM: Normalization = Normalization { channels: 1, mean: [0.5; 3], std: [0.3; 3] };

/// `n` samples of 5 features from a recipe of its own, so that two sets really differ (`top`:
/// the brightest pixel value), labels cycling through 3 classes.
pub fn toy_samples(n: usize, mul: usize, add: usize, top: usize) -> Dataset {
    Dataset {
        features: 5,
        images: (0..n * 5).map(|i| ((i * mul + add) % (top + 1)) as u8).collect(),
        labels: (0..n).map(|i| ((i * 7 + add) % 3) as u8).collect(),
    }
}

/// Held by every test that seeds or draws from the flex device's random numbers. The tests of
/// one binary run on parallel threads and share that generator: another test's draws between a
/// seed and an initialisation change the weights (a sliding-window comparison failed once so in
/// a clean-clone run).
pub fn random_draws() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `n` one-channel `side` x `side` images whose top half is brighter for class 1 and whose left
/// half is brighter for class 2, over a pattern of their own (`add` makes another set).
pub fn half_lit_images(n: usize, add: usize, side: usize) -> Dataset {
    let labels: Vec<u8> = (0..n).map(|i| ((i * 5 + add) % 3) as u8).collect();
    let images = (0..n * side * side)
        .map(|i| {
            let (s, p) = (i / (side * side), i % (side * side));
            let (row, col) = (p / side, p % side);
            let base = (i * 29 + add * 13 + i / 7) % 120;
            let lift = match labels[s] {
                1 if row < side / 2 => 110,
                2 if col < side / 2 => 110,
                _ => 0,
            };
            (base + lift) as u8
        })
        .collect();
    Dataset { features: side * side, images, labels }
}

/// `model` trained on `data` for `epochs` (Adam, learning rate 1e-2, batches of `batch`).
pub fn train_toy<M: TappedModel>(mut model: M, data: &Dataset, epochs: usize, batch: usize, device: &Device) -> M {
    let mut optim = adam();
    for epoch in 0..epochs {
        for b in Batches::new(epoch_order(data.len(), 1, epoch), batch) {
            let (x, y) = data.batch(&b.samples, TOY_NORM, device);
            model = train_step(model, &mut optim, 1e-2, x, y, None).0;
        }
    }
    model.valid()
}

/// A 5-16-16-3 MLP trained for a while on toy data, so that its predictions depend on its input
/// (a freshly initialised one predicts nearly the same class everywhere).
pub fn trained_toy_mlp(activation: Activation, device: &Device) -> Mlp {
    let ad = device.clone().autodiff();
    ad.seed(5);
    let model = MlpConfig { input: 5, hidden: vec![16, 16], classes: 3, activation, dropout: 0.0, first_index: 1, init: Default::default() }.init(&ad);
    train_toy(model, &toy_samples(300, 37, 0, 255), 30, 32, &ad)
}

pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0
}

/// `data` labelled with `model`'s own predictions, so that every change of a layer's values that
/// changes a prediction shows in the accuracy.
pub fn labelled_by_model(model: &impl TappedModel, mut data: Dataset, device: &Device) -> Dataset {
    let (x, _) = data.range_batch(0, data.len(), TOY_NORM, device);
    let logits = model.forward(x);
    let [_, classes] = logits.dims();
    data.labels = read_f32(logits).chunks(classes).map(|l| argmax(l) as u8).collect();
    assert!(data.labels.iter().any(|&l| l != data.labels[0]), "the model's predictions vary");
    data
}

/// Adds `by` to the activation of (sample, neuron) of one studied layer, at every position (the
/// probe of a conv channel is shared by its positions): the finite-difference counterpart of
/// the gradient probe.
pub struct Nudge {
    pub layer: usize,
    pub sample: usize,
    pub neuron: usize,
    pub by: f32,
}

impl Tap for Nudge {
    fn post(&mut self, layer: usize, a: Tensor<3>) -> Tensor<3> {
        if layer != self.layer {
            return a;
        }
        let [b, p, n] = a.dims();
        let mut delta = vec![0.0f32; b * p * n];
        for pos in 0..p {
            delta[(self.sample * p + pos) * n + self.neuron] = self.by;
        }
        let delta = Tensor::from_data(TensorData::new(delta, [b, p, n]), &a.device());
        a + delta
    }
}

/// An IDX file of unsigned bytes with dimensions `dims` and payload `data` (not checked against
/// each other: tests build broken ones too).
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// `bytes` gzip-compressed (one member).
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A safetensors file of f32 tensors (name, shape, values), written by hand.
pub fn write_safetensors(path: &std::path::Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + 4 * values.len();
        header.insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    for (_, _, values) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

/// The f32 tensors (name, shape, values) of a safetensors file.
pub fn read_safetensors(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter(|(_, v)| v["dtype"] == "F32")
        .map(|(k, v)| {
            let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
            let [a, b]: [usize; 2] = serde_json::from_value(v["data_offsets"].clone()).unwrap();
            (k.clone(), shape, data[a..b].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        })
        .collect()
}


/// A CIFAR-10 binary folder (`cifar-10-batches-bin/`) of `per_file` random images per batch file,
/// with a class-dependent brightness so that there is something to learn.
pub fn write_fake_cifar(dir: &std::path::Path, per_file: usize) {
    let dir = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    for name in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"] {
        let mut bytes = Vec::with_capacity(per_file * 3073);
        for _ in 0..per_file {
            let label = next() % 10;
            bytes.push(label);
            // A class-dependent brightness so that there is something to learn.
            bytes.extend((0..3072).map(|_| (next() / 2).saturating_add(label * 12)));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
