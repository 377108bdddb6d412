//! `trainer bench`: training throughput and what recording costs, measured in one run.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::backend;
use hidden_neurons::data::{Batches, CIFAR_CHANNELS, CIFAR_PIXELS, CIFAR_SIDE, Split, epoch_order, load_mnist_dir};
use hidden_neurons::settings::{self, Footprint, Setting, SettingError};
use hidden_neurons::model::{CIFAR_WIDTHS, CnnConfig, MNIST_WIDTHS, MlpConfig, TappedModel};
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{ModuleOptimizer, adam, train_step};

use crate::{BenchArgs, ModelFamily, default_data_dir};

const WARMUP_STEPS: usize = 5;
const RECORDINGS: usize = 5;

/// Most timed steps.
const MAX_STEPS: usize = 100_000;

/// The bench's flags, checked by the same rules as `reproduce`'s before anything is built.
fn check(args: &BenchArgs, widths: &[usize], train_len: usize, footprint: Footprint) -> Result<()> {
    if args.steps == 0 || args.steps > MAX_STEPS {
        bail!("--steps: {} is out of range; allowed: 1 to {MAX_STEPS}", args.steps);
    }
    if args.batch == 0 || args.batch > train_len.min(settings::MAX_BATCH) {
        bail!("--batch: {} is out of range; allowed: 1 to {} (the training samples)", args.batch, train_len.min(settings::MAX_BATCH));
    }
    if args.tracked == 0 || args.tracked > settings::MAX_TRACKED {
        bail!(SettingError::new(Setting::Tracked, format!("{} is out of range", args.tracked)));
    }
    match args.model.family() {
        ModelFamily::Mnist => settings::check_mlp_widths(widths)?,
        ModelFamily::Cifar => settings::check_cnn_widths(widths, CIFAR_SIDE)?,
    }
    settings::check_memory(footprint.bytes(args.batch.max(500), train_len + args.tracked, 0), crate::reproduce::memory_budget())?;
    Ok(())
}

pub fn run(args: BenchArgs) -> Result<()> {
    let chosen = backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    device.seed(1);
    let activation = args.model.activation();
    match args.model.family() {
        ModelFamily::Mnist => {
            let dir = args.data.clone().unwrap_or_else(default_data_dir);
            let split = load_mnist_dir(&dir).with_context(|| format!("loading data from {}", dir.display()))?;
            let widths = args.hidden.clone().unwrap_or_else(|| MNIST_WIDTHS.to_vec());
            let cfg = MlpConfig::mnist(activation, widths.clone());
            check(&args, &widths, split.train.len(), Footprint::mlp(&cfg))?;
            if split.train.features != cfg.input {
                bail!("--data {}: its images have {} values each; the MNIST MLPs take 784 (28x28)", dir.display(), split.train.features);
            }
            let model = MlpConfig::mnist(activation, widths.clone()).init(&device);
            bench_model(&args, &split, model, &device, &format!("mlp {} {widths:?}", activation.suffix()))
        }
        ModelFamily::Cifar => {
            // Throughput does not depend on pixel values: random CIFAR-shaped images will do.
            let split = Split::synthetic("random cifar-shaped", 5_000, 1_000, CIFAR_PIXELS, CIFAR_CHANNELS, 1);
            let widths = args.hidden.clone().unwrap_or_else(|| CIFAR_WIDTHS.to_vec());
            check(&args, &widths, split.train.len(), Footprint::cnn(&CnnConfig::cifar(activation, widths.clone())))?;
            let model = CnnConfig::cifar(activation, widths.clone()).init(&device);
            bench_model(&args, &split, model, &device, &format!("cnn {} {widths:?}", activation.suffix()))
        }
    }
}

fn bench_model<M: TappedModel>(args: &BenchArgs, split: &Split, model: M, device: &Device, what: &str) -> Result<()> {
    let mut model = model;
    let mut optim = adam();
    let order = epoch_order(split.train.len(), 1, 0);
    let batches: Vec<Vec<usize>> = Batches::new(order, args.batch).map(|b| b.samples).filter(|b| b.len() == args.batch).collect();
    let mut next = batches.iter().cycle();
    let inner = device.clone().inner();

    let mut recorder = Recorder::new(RecordingMode::Online, model.layers(), split.train.len(), 0, vec![vec![]; model.layers().len()], device);
    let mut steps = |model: M, optim: &mut ModuleOptimizer, n: usize, online: bool, recorder: &mut Recorder| -> (M, f64) {
        let started = Instant::now();
        let mut model = model;
        let mut last = None;
        for _ in 0..n {
            let idx = next.next().expect("cycled");
            let (x, y) = split.train.batch(idx, split.norm, device);
            let rows = online.then(|| {
                let r: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
                (&mut *recorder, Tensor::<1, Int>::from_data(TensorData::new(r, [idx.len()]), &inner))
            });
            let (m, loss, _) = train_step(model, optim, 1e-3, x, y, rows);
            model = m;
            last = Some(loss);
        }
        if let Some(l) = last {
            read_f32(l); // waits for the queued work
        }
        (model, started.elapsed().as_secs_f64())
    };

    (model, _) = steps(model, &mut optim, WARMUP_STEPS, false, &mut recorder);
    let (m, plain) = steps(model, &mut optim, args.steps, false, &mut recorder);
    (model, _) = steps(m, &mut optim, WARMUP_STEPS, true, &mut recorder);
    let (m, online) = steps(model, &mut optim, args.steps, true, &mut recorder);
    model = m;
    let samples = (args.steps * args.batch) as f64;
    let per_sample = plain / samples;
    println!(
        "training: {:.0} samples/s ({} steps of {}, {:.2} ms/step), model {what}",
        samples / plain,
        args.steps,
        args.batch,
        1e3 * plain / args.steps as f64,
    );
    println!(
        "online recording: {:.0} samples/s, {:.2}x the time of plain training",
        samples / online,
        online / plain
    );

    let tracked_idx: Vec<usize> = (0..args.tracked.min(split.train.len())).collect();
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
