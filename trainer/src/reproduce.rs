//! `trainer reproduce`: train, record, experiment, write.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor, TensorData};
use hidden_neurons::analysis::{figures, layer_signs};
use hidden_neurons::backend::{self, Chosen};
use hidden_neurons::data::{Batches, Split, epoch_order, load_cifar, load_mnist_dir};
use hidden_neurons::experiments::{self, ExperimentConfig};
use hidden_neurons::figures::NamedFigure;
use hidden_neurons::model::{CIFAR_WIDTHS, CnnConfig, MNIST_WIDTHS, MlpConfig, TappedModel};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use hidden_neurons::recording::{Recorder, RecordingMode, TrackedSet, snapshot_choice, tracked_indices};
use hidden_neurons::report::{ReportSection, ZeroRankRow};
use hidden_neurons::results::{LayerResults, RecordingSummary, Results};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{TrainConfig, accuracy, adam, train_step};
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{Checkpoint, Progress};
use crate::output;
use crate::{ModelArg, ModelFamily, Preset, ReproduceArgs, default_data_dir};

/// Samples per chunk of the tracked set and per evaluation batch.
const CHUNK: usize = 500;

pub fn run(args: ReproduceArgs) -> Result<()> {
    let chosen = backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let mut split = load_data(&args)?;
    let (train_subset, test_subset) = default_subset(&args);
    if let Some(n) = args.train_samples.or(train_subset) {
        split.train = split.train.head(n);
    }
    if let Some(n) = args.test_samples.or(test_subset) {
        split.test = split.test.head(n);
    }
    println!(
        "data: {} ({} train, {} test images of {} values)",
        split.name,
        split.train.len(),
        split.test.len(),
        split.train.features
    );
    let models: Vec<ModelArg> = if args.only.is_empty() {
        match args.model {
            ModelFamily::Mnist => vec![ModelArg::MlpRelu, ModelArg::MlpSigmoid],
            ModelFamily::Cifar => vec![ModelArg::CnnRelu, ModelArg::CnnLinear],
        }
    } else {
        args.only.clone()
    };
    if let Some(m) = models.iter().find(|m| m.family() != args.model) {
        bail!("--only {m:?} is not a model of --model {:?}", args.model);
    }
    let mut sections = Vec::new();
    let mut table1 = Vec::new();
    for m in models {
        let spec = Spec::new(&args, m);
        let device = chosen.device.clone().autodiff();
        let done = match m.family() {
            ModelFamily::Mnist => {
                let cfg = MlpConfig::mnist(m.activation(), spec.widths.clone());
                let arch = describe_mlp(&cfg);
                run_model(&args, &chosen, &split, &spec, arch, || cfg.init(&device))?
            }
            ModelFamily::Cifar => {
                let cfg = CnnConfig::cifar(m.activation(), spec.widths.clone());
                let arch = format!(
                    "CNN, 4 stages x 3 conv 3x3 + batch-norm ({}), widths {:?}, max-pool between stages, global average pool, dense",
                    m.activation().suffix(),
                    cfg.widths
                );
                run_model(&args, &chosen, &split, &spec, arch, || cfg.init(&device))?
            }
        };
        let Some((results, figs)) = done else {
            println!("stopped after {} epoch(s) as asked; continue with --resume", args.stop_after.unwrap_or(0));
            return Ok(());
        };
        println!(
            "{}: test accuracy {:.4}; {}",
            results.model,
            results.test_accuracy,
            results
                .layers
                .iter()
                .map(|(name, l)| format!("{name}: |avg sign|>=0.8 {:.2}, zero rank {:.1}", l.outer_fraction, l.zero_percentile_rank))
                .collect::<Vec<_>>()
                .join("; ")
        );
        for (name, l) in &results.layers {
            table1.push(ZeroRankRow { model: results.model.clone(), layer: name.clone(), zero_percentile_rank: l.zero_percentile_rank });
        }
        sections.push(ReportSection { model: results.model.clone(), summary: output::summary(&results), figures: figs });
    }
    output::write_report(&args.out, &sections, &table1)?;
    println!("wrote {}", args.out.join("report.html").display());
    Ok(())
}

fn load_data(args: &ReproduceArgs) -> Result<Split> {
    match args.model {
        ModelFamily::Mnist => {
            let dir = args.data.clone().unwrap_or_else(default_data_dir);
            load_mnist_dir(&dir).with_context(|| format!("loading MNIST-style data from {}", dir.display()))
        }
        ModelFamily::Cifar => {
            let Some(path) = &args.data else {
                bail!("--model cifar needs --data: cifar-10-binary.tar.gz, or a folder with it or with cifar-10-batches-bin/")
            };
            load_cifar(path).with_context(|| format!("loading CIFAR-10 from {}", path.display()))
        }
    }
}

/// The CIFAR `fast` preset trains on a subset so that both CNNs finish in minutes on a CPU.
fn default_subset(args: &ReproduceArgs) -> (Option<usize>, Option<usize>) {
    match (args.model, args.preset) {
        (ModelFamily::Cifar, Preset::Fast) => (Some(5_000), Some(1_000)),
        _ => (None, None),
    }
}

/// What differs between the models of a run.
struct Spec {
    id: String,
    widths: Vec<usize>,
    augment: bool,
    train: TrainConfig,
    experiments: ExperimentConfig,
    preset: &'static str,
    /// Layers the quantization and sliding-window experiments run on.
    experiment_layers: Vec<usize>,
    /// Layers shown in figures 1 and 5 (all layers are in results.json).
    figure_layers: Vec<usize>,
}

impl Spec {
    fn new(args: &ReproduceArgs, m: ModelArg) -> Self {
        let seed = args.seed;
        let (mut train, mut experiments, preset) = match (m.family(), args.preset) {
            (ModelFamily::Mnist, Preset::Paper) => (TrainConfig::paper(seed), ExperimentConfig::paper(seed), "paper"),
            (ModelFamily::Mnist, Preset::Fast) => (TrainConfig::fast(seed), ExperimentConfig::fast(seed), "fast"),
            (ModelFamily::Cifar, Preset::Paper) => (TrainConfig::cifar_paper(seed), ExperimentConfig::cifar_paper(seed), "paper"),
            (ModelFamily::Cifar, Preset::Fast) => (TrainConfig::cifar_fast(seed), ExperimentConfig::cifar_fast(seed), "fast"),
        };
        override_configs(args, &mut train, &mut experiments);
        let (widths, augment, experiment_layers, figure_layers) = match (m.family(), args.preset) {
            (ModelFamily::Mnist, _) => (MNIST_WIDTHS.to_vec(), false, vec![0, 1], vec![0, 1]),
            // stage0layer0, an intermediate layer (stage1layer2) and stage3layer2; figures for
            // stage0layer0, stage2layer2 and stage3layer2, as in the paper.
            (ModelFamily::Cifar, Preset::Paper) => (CIFAR_WIDTHS.to_vec(), true, vec![0, 5, 11], vec![0, 8, 11]),
            (ModelFamily::Cifar, Preset::Fast) => (vec![16, 32, 64, 128], true, vec![0, 5, 11], vec![0, 8, 11]),
        };
        let widths = args.hidden.clone().unwrap_or(widths);
        let id = match m {
            ModelArg::MlpRelu => "mlp-relu",
            ModelArg::MlpSigmoid => "mlp-sigmoid",
            ModelArg::CnnRelu => "cnn-relu",
            ModelArg::CnnLinear => "cnn-linear",
        };
        Self { id: id.into(), widths, augment, train, experiments, preset, experiment_layers, figure_layers }
    }
}

fn override_configs(args: &ReproduceArgs, train: &mut TrainConfig, exp: &mut ExperimentConfig) {
    train.mode = args.recording.into();
    if let Some(e) = args.epochs {
        train.epochs = e;
    }
    if let Some(b) = args.batch {
        train.batch_size = b.max(1);
    }
    if let Some(k) = args.every {
        train.every_batches = k.max(1);
    }
    if let Some(t) = args.tracked {
        train.tracked_samples = t;
    }
    if let Some(e) = args.certainty_epsilon {
        train.certainty_epsilon = e;
    }
    if let Some(e) = args.retrain_epochs {
        exp.retrain_epochs = e;
    }
    if let Some(n) = args.retrain_samples {
        exp.retrain_samples = n;
    }
}

fn bar(args: &ReproduceArgs, len: u64, what: &str) -> ProgressBar {
    if args.quiet {
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

/// Trains, records and runs the experiments for one model; writes its folder.
fn run_model<M: TappedModel>(
    args: &ReproduceArgs,
    chosen: &Chosen,
    split: &Split,
    spec: &Spec,
    architecture: String,
    init: impl FnOnce() -> M,
) -> Result<Option<(Results, Vec<NamedFigure>)>> {
    let (train_cfg, exp_cfg, preset) = (spec.train.clone(), spec.experiments.clone(), spec.preset);
    let id = spec.id.clone();
    let dir = args.out.join(&id);
    if args.resume {
        if let Some(done) = output::load_finished(&dir)? {
            println!("{id}: finished earlier, keeping {}", dir.join("results.json").display());
            return Ok(Some(done));
        }
    }
    let device = chosen.device.clone().autodiff();
    let fingerprint = format!(
        "{id} preset={preset} seed={} widths={:?} augment={} mode={:?} every={} tracked={} epochs={} batch={} lr={} train={} certainty={}",
        args.seed,
        spec.widths,
        spec.augment,
        train_cfg.mode,
        train_cfg.every_batches,
        train_cfg.tracked_samples,
        train_cfg.epochs,
        train_cfg.batch_size,
        train_cfg.learning_rate,
        split.train.len(),
        train_cfg.certainty_epsilon
    );
    device.seed(args.seed);
    let model = init();
    let layers = model.layers();

    let n_train = split.train.len();
    let tracked_idx = tracked_indices(n_train, train_cfg.tracked_samples, args.seed);
    let tracked = TrackedSet::new(&split.train, tracked_idx, split.norm, CHUNK, &device);
    let snapshot_neurons = snapshot_choice(&layers, train_cfg.snapshot_neurons, args.seed);
    let items = match train_cfg.mode {
        RecordingMode::Tracked => tracked.len(),
        RecordingMode::Online => n_train,
    };
    let count_bytes: usize = layers.iter().map(|l| 2 * 4 * items * l.neurons).sum();
    println!(
        "{id}: {architecture}; {} epochs, recording ({:?}) every {} batches on {} samples x {} neurons; sign counts take {:.1} MiB on the device",
        train_cfg.epochs,
        train_cfg.mode,
        train_cfg.every_batches,
        items,
        layers.iter().map(|l| l.neurons).sum::<usize>(),
        count_bytes as f64 / (1 << 20) as f64
    );

    let ckpt = Checkpoint::new(&dir);
    let fresh = || {
        let mut r = Recorder::new(train_cfg.mode, layers.clone(), items, tracked.len(), snapshot_neurons.clone(), &device);
        r.certainty_epsilon = train_cfg.certainty_epsilon;
        r
    };
    let (mut model, mut optim, mut recorder, mut progress) = if args.resume && ckpt.exists() {
        let (m, o, r, p) = ckpt.load(model, adam(), &device, &fingerprint)?;
        println!("{id}: resuming after epoch {} (step {}, {} recordings)", p.epochs_done, p.step, r.recordings);
        (m, o, r, p)
    } else {
        (model, adam(), fresh(), Progress { fingerprint: fingerprint.clone(), ..Default::default() })
    };

    let batches_per_epoch = Batches::count(n_train, train_cfg.batch_size);
    let pb = bar(args, (train_cfg.epochs * batches_per_epoch) as u64, &id);
    pb.set_position(progress.step);
    let inner = device.clone().inner();
    let first_epoch = progress.epochs_done;
    for epoch in first_epoch..train_cfg.epochs {
        if args.stop_after.is_some_and(|n| epoch - first_epoch >= n) {
            pb.abandon();
            return Ok(None);
        }
        // Dropout masks depend only on (seed, epoch), so a resumed run repeats an uninterrupted one.
        device.seed(args.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let mut augment_rng = Xoshiro256PlusPlus::seed_from_u64(args.seed.wrapping_mul(7_000_003).wrapping_add(epoch as u64));
        let started = Instant::now();
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut batches = 0usize;
        for batch in Batches::new(epoch_order(n_train, args.seed, epoch), train_cfg.batch_size) {
            let step = progress.step;
            let record_now = step % train_cfg.every_batches as u64 == 0;
            let (x, y) = if spec.augment {
                split.train.batch_augmented(&batch.samples, split.norm, 4, &mut augment_rng, &device)
            } else {
                split.train.batch(&batch.samples, split.norm, &device)
            };
            let online = match train_cfg.mode {
                RecordingMode::Tracked => {
                    if record_now {
                        recorder.record_tracked(&model, &tracked, step);
                    }
                    None
                }
                RecordingMode::Online => {
                    if record_now {
                        recorder.snapshot_only(&model, &tracked, step);
                    }
                    let rows: Vec<i64> = batch.samples.iter().map(|&i| i as i64).collect();
                    Some((&mut recorder, Tensor::<1, Int>::from_data(TensorData::new(rows, [batch.samples.len()]), &inner)))
                }
            };
            let (m, loss, _) = train_step(model, &mut optim, train_cfg.learning_rate, x, y, online);
            model = m;
            loss_sum = Some(match loss_sum {
                Some(s) => s + loss,
                None => loss,
            });
            batches += 1;
            progress.step += 1;
            pb.inc(1);
            if batches % 50 == 0 {
                let mean = read_f32(loss_sum.clone().expect("summed")).first().copied().unwrap_or(f32::NAN) / batches as f32;
                check_finite(mean, epoch, &ckpt)?;
                pb.set_message(format!("epoch {} loss {mean:.4}", epoch + 1));
            }
        }
        let mean = read_f32(loss_sum.expect("an epoch has batches")).first().copied().unwrap_or(f32::NAN) / batches.max(1) as f32;
        check_finite(mean, epoch, &ckpt)?;
        let acc = accuracy(&model, &split.test, split.norm, &device, CHUNK);
        progress.epochs_done = epoch + 1;
        progress.epoch_loss.push(mean as f64);
        progress.epoch_test_accuracy.push(acc);
        progress.train_seconds += started.elapsed().as_secs_f64();
        pb.set_message(format!("epoch {} loss {mean:.4} test acc {acc:.4}", epoch + 1));
        progress = ckpt.save(&model, &optim, &recorder, &progress)?;
    }
    pb.finish();

    let started = Instant::now();
    let test_accuracy = match progress.epoch_test_accuracy.last() {
        Some(&a) => a,
        None => accuracy(&model, &split.test, split.norm, &device, CHUNK),
    };
    let item_labels: Vec<u8> = match train_cfg.mode {
        RecordingMode::Tracked => tracked.labels.clone(),
        RecordingMode::Online => split.train.labels.clone(),
    };
    let signs = layer_signs(&recorder, &tracked, &item_labels, &device);
    let stats_set = split.train.head(exp_cfg.stats_samples);
    let per_layer = exp_cfg.ranks.len() + exp_cfg.centres.len();
    let pb = bar(args, (spec.experiment_layers.len() * per_layer) as u64, "experiments");
    let mut layer_results = BTreeMap::new();
    for (l, s) in signs.iter().enumerate() {
        let zero = experiments::zero_percentile_rank(&model, l, &stats_set, split.norm, &device, CHUNK);
        let (quantization, window) = if spec.experiment_layers.contains(&l) {
            pb.set_message(format!("{} quantization", s.name));
            let q = experiments::quantization(&model, l, &stats_set, &split.test, split.norm, &exp_cfg, &device, || pb.inc(1));
            pb.set_message(format!("{} sliding window", s.name));
            let w = experiments::sliding_window(&model, l, &split.train, &split.test, split.norm, &exp_cfg, &device, || pb.inc(1));
            (q, w)
        } else {
            (Vec::new(), Vec::new())
        };
        layer_results.insert(s.name.clone(), LayerResults::new(s, layers[l].neurons, zero, quantization, window));
    }
    pb.finish();
    let results = Results {
        model: id.clone(),
        dataset: split.name.clone(),
        preset: preset.into(),
        seed: args.seed,
        test_accuracy,
        recording: RecordingSummary {
            mode: train_cfg.mode,
            every_batches: train_cfg.every_batches,
            recordings: recorder.recordings,
            tracked_samples: items,
            note: train_cfg.mode.note(),
        },
        layers: layer_results,
        backend: chosen.name.clone(),
        architecture,
        train: train_cfg,
        experiments: exp_cfg,
        epoch_loss: progress.epoch_loss.clone(),
        epoch_test_accuracy: progress.epoch_test_accuracy.clone(),
        train_seconds: progress.train_seconds,
        experiment_seconds: started.elapsed().as_secs_f64(),
    };
    let figs = figures(&results, &recorder, &signs, &spec.figure_layers);
    output::write_model(&dir, &results, &figs)?;
    Ok(Some((results, figs)))
}

fn describe_mlp(cfg: &MlpConfig) -> String {
    let mut widths = vec![cfg.input.to_string()];
    widths.extend(cfg.hidden.iter().map(|w| w.to_string()));
    widths.push(cfg.classes.to_string());
    format!("MLP {} ({}, dropout {} after each hidden layer)", widths.join("-"), cfg.activation.suffix(), cfg.dropout)
}

fn check_finite(loss: f32, epoch: usize, ckpt: &Checkpoint) -> Result<()> {
    if !loss.is_finite() {
        let kept = if ckpt.exists() { "the last good checkpoint is kept" } else { "no checkpoint had been written yet" };
        bail!("training diverged in epoch {} (mean loss {loss}); {kept}", epoch + 1);
    }
    Ok(())
}
