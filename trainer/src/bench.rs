//! `trainer bench`: training throughput and what recording costs, measured in one run.
//!
//! A workload's network and its checks come from the run's spec ([`RunSpec::resolve`]); the
//! timing loop ([`Stepper`]) calls the same training step a [`hidden_neurons::run::Session`]
//! calls, on fixed full batches and without the session's loss bookkeeping, so that its numbers
//! compare with PyTorch's bare loop (`trainer compare`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::data::{Batches, CIFAR_CHANNELS, CIFAR_PIXELS, Split, epoch_order, load_mnist_dir};
use hidden_neurons::model::{Cnn, CnnConfig, Mlp, ResNet, ResNetConfig, TappedModel};
use hidden_neurons::run::{Family, Network, Overrides, Preset, RunSpec};
use hidden_neurons::settings;
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{ModuleOptimizer, adam, train_step};

use crate::{BenchArgs, ModelArg, ModelFamily, default_data_dir};

const WARMUP_STEPS: usize = 5;
const RECORDINGS: usize = 5;
/// Random images a ResNet50 workload cycles through.
const RESNET_IMAGES: usize = 64;

/// Most timed steps.
const MAX_STEPS: usize = 100_000;

/// One model to time: what `trainer bench`'s flags and each entry of bench/workloads.json name.
pub struct Workload {
    pub model: ModelArg,
    pub hidden: Option<Vec<usize>>,
    pub batch: usize,
    pub steps: usize,
    pub tracked: usize,
    pub data: Option<PathBuf>,
    /// ResNet50's input side.
    pub side: usize,
}

impl Workload {
    fn from_args(args: &BenchArgs) -> Self {
        Self { model: args.model, hidden: args.hidden.clone(), batch: args.batch, steps: args.steps, tracked: args.tracked, data: args.data.clone(), side: args.side }
    }
}

/// A workload's model, built on the autodiff device, with the data it trains on.
pub enum Prepared {
    Mlp(Split, Mlp),
    Cnn(Split, Cnn, CnnConfig),
    ResNet(Split, ResNet),
}

/// The workload as a run's spec: the network of the model's preset (`paper`; the CIFAR ResNet's
/// `cpu`) with the workload's widths, batch and tracked samples, checked by `reproduce`'s rules,
/// on `split`.
fn spec_of(w: &Workload, split: &Split) -> Result<RunSpec> {
    if w.steps == 0 || w.steps > MAX_STEPS {
        bail!("--steps: {} is out of range; allowed: 1 to {MAX_STEPS}", w.steps);
    }
    let id = w.model.id();
    let preset = if id.family == Family::CifarResnet { Preset::Cpu } else { Preset::Paper };
    let overrides = Overrides { widths: w.hidden.clone(), batch: Some(w.batch), tracked: Some(w.tracked), ..Overrides::default() };
    let spec = RunSpec::resolve(id, preset, 1, &overrides)?.with_data(split.name.clone(), split.train.len(), split.test.len());
    if w.batch > split.train.len() {
        bail!("--batch: {} is out of range; allowed: 1 to {} (the training samples)", w.batch, split.train.len());
    }
    let (input, what) = spec.input();
    if let Err(problem) = settings::check_image_values(split.train.features, input, what) {
        bail!("--data {}: {problem}", w.data.clone().unwrap_or_else(default_data_dir).display());
    }
    settings::check_memory(spec.training_bytes(), crate::reproduce::memory_budget())?;
    Ok(spec)
}

/// Checks `w`, loads or makes its data and builds its model on `device` (with autodiff).
pub fn prepare(w: &Workload, device: &Device) -> Result<Prepared> {
    let split = match w.model.family() {
        Some(ModelFamily::Resnet50) | None => {
            if !(32..=1024).contains(&w.side) {
                bail!("--side: {} is out of range; allowed: 32 to 1024", w.side);
            }
            if w.steps == 0 || w.steps > MAX_STEPS {
                bail!("--steps: {} is out of range; allowed: 1 to {MAX_STEPS}", w.steps);
            }
            if w.batch == 0 || w.batch > RESNET_IMAGES {
                bail!("--batch: {} is out of range; allowed: 1 to {RESNET_IMAGES}", w.batch);
            }
            // About 25.6 M parameters with their gradients and Adam's two moments, and a batch's
            // activations (about 25 M values per 224x224 image kept for the backward pass).
            let params: u64 = 25_600_000 * 4 * 4;
            let activations = (w.batch as u64) * 25_000_000 * 4 * (w.side as u64 * w.side as u64) / (224 * 224);
            settings::check_memory(params + activations, crate::reproduce::memory_budget())?;
            let split = Split::synthetic("random imagenet-shaped", RESNET_IMAGES, 1, 3 * w.side * w.side, 3, 1);
            return Ok(Prepared::ResNet(split, ResNetConfig { side: w.side, ..ResNetConfig::resnet50() }.init(device)));
        }
        Some(ModelFamily::Mnist) => {
            let dir = w.data.clone().unwrap_or_else(default_data_dir);
            load_mnist_dir(&dir).with_context(|| format!("loading data from {}", dir.display()))?
        }
        // Throughput does not depend on pixel values: random CIFAR-shaped images will do.
        Some(ModelFamily::Cifar) => Split::synthetic("random cifar-shaped", 5_000, 1_000, CIFAR_PIXELS, CIFAR_CHANNELS, 1),
    };
    let spec = spec_of(w, &split)?;
    Ok(match spec.network {
        Network::Mlp(cfg) => Prepared::Mlp(split, cfg.init(device)),
        Network::Cnn(cfg) => Prepared::Cnn(split, cfg.init(device), cfg),
        Network::Resnet(cfg) => Prepared::ResNet(split, cfg.init(device)),
    })
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.percentiles {
        let sizes = args.percentile_sizes.clone().unwrap_or_else(|| crate::bench_percentiles::SIZES.to_vec());
        return crate::bench_percentiles::run(args.backend, &sizes);
    }
    if let Some(method) = args.percentiles_child {
        let chosen = hidden_neurons::backend::choose(args.backend.into());
        return crate::bench_percentiles::child(method, args.percentile_values, &chosen.device);
    }
    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    device.seed(1);
    let w = Workload::from_args(&args);
    let what = |widths: Vec<usize>, kind: &str| format!("{kind} {} {widths:?}", w.model.activation().suffix());
    match prepare(&w, &device)? {
        Prepared::Mlp(split, model) => {
            let widths = model.layers().iter().map(|l| l.neurons).collect();
            bench_model(&w, &split, model, &device, &what(widths, "mlp"))
        }
        Prepared::Cnn(split, model, cfg) => {
            if args.profile {
                crate::profile::profile_convs(&cfg, w.batch, &chosen.device);
                crate::profile::profile_others(&cfg, w.batch, &chosen.device);
                let idx: Vec<usize> = (0..w.batch).collect();
                let (x, y) = split.train.batch(&idx, split.norm, &device);
                crate::profile::profile_step(model.clone(), x, y);
            }
            bench_model(&w, &split, model, &device, &what(cfg.widths.clone(), "cnn"))
        }
        Prepared::ResNet(split, model) if w.model == ModelArg::CifarResnet => bench_model(&w, &split, model, &device, "cifar-resnet"),
        Prepared::ResNet(split, model) => bench_model(&w, &split, model, &device, &format!("resnet50 at {}x{}", w.side, w.side)),
    }
}

/// Times training steps on `split`'s full batches, cycling through one epoch's order.
pub struct Stepper<'a> {
    split: &'a Split,
    batches: Vec<Vec<usize>>,
    next: usize,
    optim: ModuleOptimizer,
    lr: f64,
}

impl<'a> Stepper<'a> {
    pub fn new(split: &'a Split, batch: usize, optim: ModuleOptimizer, lr: f64) -> Self {
        let order = epoch_order(split.train.len(), 1, 0);
        let batches = Batches::new(order, batch).map(|b| b.samples).filter(|b| b.len() == batch).collect();
        Self { split, batches, next: 0, optim, lr }
    }

    /// Runs `n` steps (online recording into `recorder` when given) and returns the model and
    /// the seconds they took, waiting for the device's queued work.
    pub fn steps<M: TappedModel>(&mut self, model: M, n: usize, mut recorder: Option<&mut Recorder>, device: &Device) -> (M, f64) {
        let inner = device.clone().inner();
        let started = Instant::now();
        let mut model = model;
        let mut last = None;
        for _ in 0..n {
            let idx = &self.batches[self.next % self.batches.len()];
            self.next += 1;
            let (x, y) = self.split.train.batch(idx, self.split.norm, device);
            let rows = recorder.as_deref_mut().map(|recorder| {
                let r: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
                (recorder, Tensor::<1, Int>::from_data(TensorData::new(r, [idx.len()]), &inner))
            });
            let (m, loss, _) = train_step(model, &mut self.optim, self.lr, x, y, rows);
            model = m;
            last = Some(loss);
        }
        if let Some(l) = last {
            read_f32(l); // waits for the queued work
        }
        (model, started.elapsed().as_secs_f64())
    }
}

fn bench_model<M: TappedModel>(w: &Workload, split: &Split, model: M, device: &Device, what: &str) -> Result<()> {
    let mut stepper = Stepper::new(split, w.batch, adam(), 1e-3);
    let mut recorder = Recorder::new(RecordingMode::Online, model.layers(), split.train.len(), 0, vec![vec![]; model.layers().len()], device);
    let (model, _) = stepper.steps(model, WARMUP_STEPS, None, device);
    let (model, plain) = stepper.steps(model, w.steps, None, device);
    let (model, _) = stepper.steps(model, WARMUP_STEPS, Some(&mut recorder), device);
    let (model, online) = stepper.steps(model, w.steps, Some(&mut recorder), device);
    let samples = (w.steps * w.batch) as f64;
    let per_sample = plain / samples;
    println!(
        "training: {:.0} samples/s ({} steps of {}, {:.2} ms/step), model {what}",
        samples / plain,
        w.steps,
        w.batch,
        1e3 * plain / w.steps as f64,
    );
    println!(
        "online recording: {:.0} samples/s, {:.2}x the time of plain training",
        samples / online,
        online / plain
    );

    let tracked_idx: Vec<usize> = (0..w.tracked.min(split.train.len())).collect();
    let tracked = TrackedSet::new(&split.train, tracked_idx, split.norm, 500, device);
    let neurons: Vec<Vec<usize>> = model.layers().iter().map(|l| (0..4.min(l.neurons)).collect()).collect();
    let mut rec = Recorder::new(RecordingMode::Tracked, model.layers(), tracked.len(), tracked.len(), neurons, device);
    rec.record_tracked(&model, &tracked, 0); // warm-up
    let started = Instant::now();
    for r in 0..RECORDINGS {
        rec.record_tracked(&model, &tracked, r as u64 + 1);
    }
    read_f32(rec.counts(0).0.sum());
    let per_recording = started.elapsed().as_secs_f64() / RECORDINGS as f64;
    let per_tracked = per_recording / tracked.len().max(1) as f64;
    println!(
        "tracked recording: {:.1} ms per recording of {} samples = {:.1} us per tracked sample = {:.2}x the time of one training sample",
        1e3 * per_recording,
        tracked.len(),
        1e6 * per_tracked,
        per_tracked / per_sample
    );
    Ok(())
}
