//! `trainer reproduce`: train, record, experiment, write.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Int, Tensor, TensorData};
use hidden_neurons::analysis::{figures, layer_signs};
use hidden_neurons::backend::Chosen;
use hidden_neurons::data::{Batches, Split, epoch_order, load_cifar, load_mnist_dir};
use hidden_neurons::experiments::{self, ExperimentConfig, QuantizeAt};
use hidden_neurons::figures::NamedFigure;
use hidden_neurons::finite::{LossLog, NonFiniteLoss};
use hidden_neurons::model::{CIFAR_WIDTHS, CnnConfig, Init, LAYERS_PER_STAGE, MNIST_WIDTHS, MlpConfig, TappedModel};
use hidden_neurons::settings::{self, Footprint, Setting, SettingError};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use hidden_neurons::recording::{POSITIONS_PER_CHANNEL, Recorder, RecordingMode, TrackedSet, snapshot_choice, tracked_indices};
use hidden_neurons::report::{ReportSection, ZeroRankRow};
use hidden_neurons::results::{LayerResults, RecordingSummary, Results};
use hidden_neurons::rotation::{self, LayerRotation};
use hidden_neurons::train::{ConvSigns, Optimizer, Schedule, TrainConfig, accuracy, train_step_smoothed};
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{Checkpoint, Progress};
use crate::output;
use crate::{ModelArg, ModelFamily, Preset, ReproduceArgs, default_data_dir};

/// Samples per chunk of the tracked set and per evaluation batch.
const CHUNK: usize = 500;

pub fn run(args: ReproduceArgs) -> Result<()> {
    if args.model == ModelFamily::Resnet50 {
        return crate::resnet::run(args);
    }
    let models: Vec<ModelArg> = if args.only.is_empty() {
        match args.model {
            ModelFamily::Mnist => vec![ModelArg::MlpRelu, ModelArg::MlpSigmoid],
            ModelFamily::Cifar | ModelFamily::Resnet50 => vec![ModelArg::CnnRelu, ModelArg::CnnLinear],
        }
    } else {
        args.only.clone()
    };
    if let Some(m) = models.iter().find(|m| m.family() != Some(args.model)) {
        bail!("--only {m:?} is not a model of --model {:?}", args.model);
    }
    if args.preset == Preset::Cpu && args.model != ModelFamily::Cifar {
        bail!("--preset cpu is a CIFAR preset (--model cifar); MNIST trains in minutes with --preset fast or paper");
    }
    let specs: Vec<Spec> = models.iter().map(|&m| Spec::new(&args, m)).collect();
    // Every flag is checked before any data is read or memory reserved.
    for spec in &specs {
        spec.check_settings()?;
    }
    if args.conv_signs == crate::ConvSignsArg::Positions && args.recording == crate::ModeArg::Online {
        bail!("--conv-signs positions needs --recording tracked: online recording reads the training batches' own backward pass, which carries one derivative per channel");
    }
    if args.stop_after == Some(0) {
        bail!(SettingError::new(Setting::StopAfter, "0 epochs would stop before starting"));
    }
    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let mut split = load_data(&args)?;
    let (train_subset, test_subset) = default_subset(&args);
    if let Some(n) = args.train_samples.or(train_subset) {
        split.train.truncate(n);
    }
    if let Some(n) = args.test_samples.or(test_subset) {
        split.test.truncate(n);
    }
    settings::check_samples(split.train.len(), split.test.len())?;
    for spec in &specs {
        spec.check_fits(&args, &split)?;
    }
    println!(
        "data: {} ({} train, {} test images of {} values)",
        split.name,
        split.train.len(),
        split.test.len(),
        split.train.features
    );
    let mut sections = Vec::new();
    let mut table1 = Vec::new();
    for spec in specs {
        let device = chosen.device.clone().autodiff();
        let done = match &spec.shape {
            Shape::Mlp(cfg) => run_model(&args, &chosen, &split, &spec, describe_mlp(cfg), || cfg.init(&device))?,
            Shape::Cnn(cfg) => {
                let arch = format!(
                    "CNN, {} stages x 3 conv 3x3 + batch-norm ({}), widths {:?}, max-pool between stages, global average pool, dense",
                    cfg.widths.len(),
                    cfg.activation.suffix(),
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
        ModelFamily::Cifar | ModelFamily::Resnet50 => {
            let path = match &args.data {
                Some(path) => path.clone(),
                None => crate::download::cifar()?,
            };
            load_cifar(&path).with_context(|| format!("loading CIFAR-10 from {}", path.display()))
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

/// The model a spec builds.
enum Shape {
    Mlp(MlpConfig),
    Cnn(CnnConfig),
}

/// What differs between the models of a run.
struct Spec {
    id: String,
    widths: Vec<usize>,
    shape: Shape,
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
        let (mut train, mut experiments) = match (args.model, args.preset) {
            (ModelFamily::Mnist, Preset::Paper) => (TrainConfig::paper(seed), ExperimentConfig::paper(seed)),
            (ModelFamily::Mnist, Preset::Fast) => (TrainConfig::fast(seed), ExperimentConfig::fast(seed)),
            (ModelFamily::Cifar | ModelFamily::Resnet50, Preset::Paper) => (TrainConfig::cifar_paper(seed), ExperimentConfig::cifar_paper(seed)),
            (ModelFamily::Cifar | ModelFamily::Resnet50, Preset::Fast) => (TrainConfig::cifar_fast(seed), ExperimentConfig::cifar_fast(seed)),
            // `run` refuses the cpu preset for other models than CIFAR before a spec is made.
            (_, Preset::Cpu) => (TrainConfig::cifar_cpu(seed), ExperimentConfig::cifar_cpu(seed)),
        };
        let preset = args.preset.name();
        override_configs(args, &mut train, &mut experiments);
        let (widths, augment) = match (args.model, args.preset) {
            (ModelFamily::Cifar | ModelFamily::Resnet50, Preset::Paper) => (CIFAR_WIDTHS.to_vec(), true),
            (ModelFamily::Cifar | ModelFamily::Resnet50, Preset::Fast | Preset::Cpu) => (vec![16, 32, 64, 128], true),
            (ModelFamily::Mnist, _) => (MNIST_WIDTHS.to_vec(), false),
        };
        let widths = args.hidden.clone().unwrap_or(widths);
        // The paper used Keras, whose layers start Glorot-uniform with zero biases: the paper
        // preset does too; the fast preset keeps burn's defaults (see the README's presets).
        let init = args.init.map(Init::from).unwrap_or(match args.preset {
            Preset::Paper => Init::Keras,
            Preset::Fast | Preset::Cpu => Init::Burn,
        });
        let (shape, experiment_layers, figure_layers) = match args.model {
            ModelFamily::Mnist => {
                let all: Vec<usize> = (0..widths.len()).collect();
                (Shape::Mlp(MlpConfig::mnist(m.activation(), widths.clone()).with_init(init)), all.clone(), all)
            }
            // resnet50 never gets here (crate::resnet).
            ModelFamily::Cifar | ModelFamily::Resnet50 => {
                // With the paper's four stages: experiments on stage0layer0, an intermediate layer
                // (stage1layer2) and stage3layer2; figures for stage0layer0, stage2layer2 and
                // stage3layer2, as in the paper. Fewer stages keep the same pattern.
                let last = (widths.len() * LAYERS_PER_STAGE).max(1) - 1;
                let pick = |mut v: Vec<usize>| {
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let experiments = pick(vec![0, (2 * LAYERS_PER_STAGE - 1).min(last), last]);
                let figures = pick(vec![0, (widths.len().saturating_sub(1) * LAYERS_PER_STAGE).saturating_sub(1), last]);
                (Shape::Cnn(CnnConfig::cifar(m.activation(), widths.clone()).with_init(init)), experiments, figures)
            }
        };
        let id = match m {
            ModelArg::MlpRelu => "mlp-relu",
            ModelArg::MlpSigmoid => "mlp-sigmoid",
            ModelArg::CnnRelu => "cnn-relu",
            ModelArg::CnnLinear => "cnn-linear",
            ModelArg::Resnet50 => "resnet50",
        };
        Self { id: id.into(), widths, shape, augment, train, experiments, preset, experiment_layers, figure_layers }
    }

    /// The flags alone, before any data is read.
    fn check_settings(&self) -> Result<(), SettingError> {
        settings::check_train(&self.train)?;
        settings::check_experiments(&self.experiments)?;
        match &self.shape {
            Shape::Mlp(_) => settings::check_mlp_widths(&self.widths),
            Shape::Cnn(cfg) => settings::check_cnn_widths(&self.widths, cfg.side),
        }
    }

    /// The data against the model (image size) and the memory the run will need.
    fn check_fits(&self, args: &ReproduceArgs, split: &Split) -> Result<()> {
        let (input, what) = match &self.shape {
            Shape::Mlp(cfg) => (cfg.input, settings::MNIST_TAKES),
            Shape::Cnn(cfg) => (cfg.channels * cfg.side * cfg.side, "the CIFAR CNNs take 32x32 colour images (3072 values)"),
        };
        if let Err(problem) = settings::check_image_values(split.train.features, input, what) {
            bail!("--data {}: {problem}", args.data.clone().unwrap_or_else(default_data_dir).display());
        }
        settings::check_memory(self.needed_bytes(split), memory_budget())?;
        Ok(())
    }

    /// About how much memory the run needs at its peak (see [`Footprint::bytes`]).
    fn needed_bytes(&self, split: &Split) -> u64 {
        let footprint = match &self.shape {
            Shape::Mlp(cfg) => Footprint::mlp(cfg),
            Shape::Cnn(cfg) => Footprint::cnn(cfg),
        };
        let tracked = self.train.tracked_samples.min(split.train.len());
        let rows = match self.train.mode {
            RecordingMode::Tracked => tracked,
            RecordingMode::Online => split.train.len(),
        };
        // Per-position counts: up to that many more rows per conv layer (an over-estimate for
        // dense layers, which have one position).
        let rows = if self.train.conv_signs == ConvSigns::Positions { rows * (1 + POSITIONS_PER_CHANNEL) } else { rows };
        let exp = &self.experiments;
        let captured = exp.stats_samples.min(split.train.len()) + exp.retrain_samples.min(split.train.len()) + split.test.len();
        let steps = (Batches::count(split.train.len(), self.train.batch_size) as u64).saturating_mul(self.train.epochs as u64);
        let traces = footprint.trace_bytes(settings::recordings(steps, self.train.every_batches), tracked, self.train.snapshot_neurons);
        footprint.bytes(self.train.batch_size.max(CHUNK), rows, captured).saturating_add(traces)
    }

    /// Every setting that shapes the results: resuming or keeping a finished model needs all equal.
    fn fingerprint(&self, args: &ReproduceArgs, split: &Split) -> String {
        let t = &self.train;
        let e = &self.experiments;
        // Non-default choices only, so that runs from before they existed keep their fingerprint.
        let init = match &self.shape {
            Shape::Mlp(cfg) => cfg.init,
            Shape::Cnn(cfg) => cfg.init,
        };
        let mut extra = String::new();
        if init != Init::Burn {
            extra += &format!(" init={}", init.name());
        }
        if t.optimizer != Optimizer::Adam {
            extra += &format!(" optimizer={}", t.optimizer.name());
        }
        if t.conv_signs != ConvSigns::Channel {
            extra += " conv-signs=positions";
        }
        if t.schedule != Schedule::Constant {
            extra += &format!(" schedule={}", t.schedule.name());
        }
        if t.label_smoothing != 0.0 {
            extra += &format!(" label-smoothing={}", t.label_smoothing);
        }
        if t.weight_decay != 0.0 {
            extra += &format!(" weight-decay={}", t.weight_decay);
        }
        let base = format!(
            "{} preset={} seed={} data={} widths={:?} augment={} mode={:?} every={} tracked={} epochs={} batch={} lr={} train={} test={} certainty={} experiments=(stats {} ranks {:?} centres {:?} width {} retrain {}x{} batch {} lr {})",
            self.id,
            self.preset,
            args.seed,
            split.name,
            self.widths,
            self.augment,
            t.mode,
            t.every_batches,
            t.tracked_samples,
            t.epochs,
            t.batch_size,
            t.learning_rate,
            split.train.len(),
            split.test.len(),
            t.certainty_epsilon,
            e.stats_samples,
            e.ranks,
            e.centres,
            e.window_width,
            e.retrain_samples,
            e.retrain_epochs,
            e.batch_size,
            e.learning_rate
        );
        base + &extra
    }
}

/// What a run may use: this machine's physical memory (a GPU run keeps its data and captured
/// pre-activations on the host too), or 64 GiB where that cannot be read.
pub fn memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(64 << 30)
}

fn override_configs(args: &ReproduceArgs, train: &mut TrainConfig, exp: &mut ExperimentConfig) {
    train.mode = args.recording.into();
    train.conv_signs = args.conv_signs.into();
    if let Some(o) = args.optimizer {
        let chosen: Optimizer = o.into();
        if chosen != train.optimizer {
            train.optimizer = chosen;
            train.learning_rate = chosen.default_learning_rate();
            if !chosen.takes_weight_decay() {
                train.weight_decay = 0.0;
            }
        }
    }
    if let Some(a) = args.label_smoothing {
        train.label_smoothing = a;
    }
    if let Some(d) = args.weight_decay {
        train.weight_decay = d;
    }
    if let Some(e) = args.epochs {
        train.epochs = e;
    }
    if let Some(b) = args.batch {
        train.batch_size = b;
    }
    if let Some(lr) = args.learning_rate {
        train.learning_rate = lr;
    }
    if let Some(k) = args.every {
        train.every_batches = k;
    }
    if let Some(t) = args.tracked {
        train.tracked_samples = t;
    }
    if let Some(e) = args.certainty_epsilon {
        train.certainty_epsilon = e;
    }
    override_retraining(args, exp);
}

/// The flags that override an experiment preset's retraining (every model family).
pub fn override_retraining(args: &ReproduceArgs, exp: &mut ExperimentConfig) {
    if let Some(e) = args.retrain_epochs {
        exp.retrain_epochs = e;
    }
    if let Some(n) = args.retrain_samples {
        exp.retrain_samples = n;
    }
}

pub fn bar(args: &ReproduceArgs, len: u64, what: &str) -> ProgressBar {
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
    let _lock = crate::files::lock_folder(&dir)?;
    let fingerprint = spec.fingerprint(args, split);
    if args.resume {
        if let Some(done) = output::load_finished(&dir, &fingerprint)? {
            println!("{id}: finished earlier with the same settings, keeping {}", dir.join("results.json").display());
            return Ok(Some(done));
        }
    }
    let device = chosen.device.clone().autodiff();
    device.seed(args.seed);
    let model = init();
    let layers = model.layers();
    // The initial weights: a resumed run rebuilds them by the same seeded initialisation.
    let start_weights = rotation::snapshot(model.weight_layers());

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
        if train_cfg.conv_signs == ConvSigns::Positions {
            r = r.with_positions(POSITIONS_PER_CHANNEL, args.seed);
        }
        r
    };
    let (mut model, mut optim, mut recorder, mut progress) = if args.resume && ckpt.exists() {
        let limit = (64 << 20) + 2 * spec.needed_bytes(split);
        let (m, o, r, p) = ckpt.load(model, train_cfg.init_optimizer(), &device, &fingerprint, &layers, items, train_cfg.mode, limit)?;
        println!("{id}: resuming after epoch {} (step {}, {} recordings)", p.epochs_done, p.step, r.recordings);
        (m, o, r, p)
    } else {
        (model, train_cfg.init_optimizer(), fresh(), Progress { fingerprint: fingerprint.clone(), ..Default::default() })
    };

    let batches_per_epoch = Batches::count(n_train, train_cfg.batch_size);
    let total_steps = (train_cfg.epochs * batches_per_epoch) as u64;
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
        let mut losses = LossLog::default();
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
            let lr = train_cfg.learning_rate_at(step, total_steps);
            let (m, loss, _) = train_step_smoothed(model, &mut optim, lr, train_cfg.label_smoothing, x, y, online);
            model = m;
            losses.push(step, loss);
            batches += 1;
            progress.step += 1;
            pb.inc(1);
            if batches % 50 == 0 {
                losses.check().map_err(|bad| diverged(&bad, batches_per_epoch, &ckpt))?;
                pb.set_message(format!("epoch {} loss {:.4}", epoch + 1, losses.mean()));
            }
        }
        losses.check().map_err(|bad| diverged(&bad, batches_per_epoch, &ckpt))?;
        let mean = losses.mean() as f32;
        let acc = accuracy(&model, &split.test, split.norm, &device, CHUNK);
        progress.epochs_done = epoch + 1;
        progress.epoch_loss.push(mean as f64);
        progress.epoch_test_accuracy.push(acc);
        progress.layer_rotation.push(rotation::cosine_distances(&model.weight_layers(), &start_weights));
        progress.train_seconds += started.elapsed().as_secs_f64();
        pb.set_message(format!("epoch {} loss {mean:.4} test acc {acc:.4}", epoch + 1));
        progress = ckpt.save(&model, &optim, Some(&recorder), &progress)?;
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
        let (quantization, post, window) = if spec.experiment_layers.contains(&l) {
            pb.set_message(format!("{} quantization", s.name));
            let q = experiments::quantization(&model, l, &stats_set, &split.test, split.norm, &exp_cfg, QuantizeAt::Pre, &device, || pb.inc(1));
            let post = experiments::quantization(&model, l, &stats_set, &split.test, split.norm, &exp_cfg, QuantizeAt::Post, &device, || {});
            pb.set_message(format!("{} sliding window", s.name));
            let w = experiments::sliding_window(&model, l, &split.train, &split.test, split.norm, &exp_cfg, &device, || pb.inc(1));
            (q, post, w)
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        let entry = LayerResults::new(s, layers[l].neurons, zero, quantization, window).with_post_quantization(post);
        layer_results.insert(s.name.clone(), entry);
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
        settings: Some(fingerprint),
        layer_rotation: start_weights
            .iter()
            .enumerate()
            .map(|(i, (layer, _))| LayerRotation { layer: layer.clone(), per_epoch: progress.layer_rotation.iter().map(|e| e.get(i).copied().unwrap_or(f64::NAN)).collect() })
            .collect(),
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

/// The error of a step whose loss was not finite: the checkpoint on disk is from before it.
pub fn diverged(bad: &NonFiniteLoss, batches_per_epoch: usize, ckpt: &Checkpoint) -> anyhow::Error {
    let kept = if ckpt.exists() { "the last good checkpoint (the previous epoch's end) is kept" } else { "no checkpoint had been written yet" };
    let per_epoch = batches_per_epoch.max(1) as u64;
    anyhow::anyhow!(
        "training diverged at step {} (epoch {}, batch {}): its loss is {}; {kept}. A lower --learning-rate may help",
        bad.step + 1,
        bad.step / per_epoch + 1,
        bad.step % per_epoch + 1,
        bad.loss
    )
}
