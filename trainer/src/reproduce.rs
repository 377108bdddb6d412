//! `trainer reproduce`: flags to [`RunSpec`]s, data loaded, each run driven through
//! [`hidden_neurons::run`] with the progress bar and the checkpoint writer observing it, then the
//! files written. ResNet50 on an ImageNet-format folder is the same pipeline on images streamed
//! from disk, studied as pretrained (or trained here with `--epochs N`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use hidden_neurons::analysis::{figures, quantization_figure_of, window_figure_of};
use hidden_neurons::backend::Chosen;
use hidden_neurons::data::{CROP, ImageSource, RESIZE_SHORTER, SYNSETS, Source, Split, StreamConfig, discover_splits, load_cifar, load_mnist_dir};
use hidden_neurons::experiments::{self, ExperimentConfig};
use hidden_neurons::figures::NamedFigure;
use hidden_neurons::model::{RESNET50_BLOCKS, ResNet, ResNetConfig, Stem, TappedModel};
use hidden_neurons::report::{ReportSection, ZeroRankRow};
use hidden_neurons::results::Results;
use hidden_neurons::run::{self, All, AnalysisData, ModelId, Network, Outcome, Overrides, RunError, RunSpec, Session, seeds};
use hidden_neurons::settings::{self, Setting, SettingError};
use hidden_neurons::train::{Optimizer, TrainConfig};
use hidden_neurons::weights::load_resnet;

use crate::checkpoint::Checkpoint;
use crate::observers::{Bar, Checkpoints, bar};
use crate::output::{self, Earlier};
use crate::{ModelArg, ModelFamily, Preset, ReproduceArgs, default_data_dir};

/// The layers ResNet50's experiments run on, as the paper named them: the first layer, an
/// intermediate block and the last block.
pub const STUDIED: [&str; 3] = ["conv1", "3d", "5c"];

pub fn run(args: ReproduceArgs) -> Result<()> {
    if args.model == ModelFamily::Resnet50 {
        return run_resnet(args);
    }
    let models: Vec<ModelArg> = if args.only.is_empty() {
        match args.model {
            ModelFamily::Mnist => vec![ModelArg::MlpRelu, ModelArg::MlpSigmoid],
            ModelFamily::Cifar | ModelFamily::Resnet50 => vec![ModelArg::CifarCnnRelu, ModelArg::CifarCnnLinear],
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
    // Every flag is checked before any data is read or memory reserved.
    let overrides = overrides(&args);
    let mut specs = Vec::new();
    for m in &models {
        specs.push(RunSpec::resolve(m.id(), args.preset.into(), args.seed, &overrides)?);
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
    let specs: Vec<RunSpec> = specs.into_iter().map(|s| s.with_data(split.name.clone(), split.train.len(), split.test.len())).collect();
    for spec in &specs {
        let (input, what) = spec.input();
        if let Err(problem) = settings::check_image_values(split.train.features, input, what) {
            bail!("--data {}: {problem}", args.data.clone().unwrap_or_else(default_data_dir).display());
        }
        settings::check_memory(spec.needed_bytes(), memory_budget())?;
    }
    println!("data: {} ({} train, {} test images of {} values)", split.name, split.train.len(), split.test.len(), split.train.features);
    if args.print_spec {
        for spec in &specs {
            println!("{}: fingerprint {}, training fingerprint {}", spec.model, spec.fingerprint(), spec.training_fingerprint());
            println!("{}", serde_json::to_string_pretty(spec)?);
        }
        return Ok(());
    }
    let mut sections = Vec::new();
    let mut table1 = Vec::new();
    for spec in specs {
        let done = match spec.network.clone() {
            Network::Mlp(cfg) => run_model(&args, &chosen, &split, spec, |d| cfg.init(d))?,
            Network::Cnn(cfg) => run_model(&args, &chosen, &split, spec, |d| cfg.init(d))?,
            // The CIFAR ResNet; ResNet50 on ImageNet runs through run_resnet.
            Network::Resnet(cfg) => run_model(&args, &chosen, &split, spec, |d| cfg.init(d))?,
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

/// The flags a preset yields to.
fn overrides(args: &ReproduceArgs) -> Overrides {
    Overrides {
        widths: args.hidden.clone(),
        init: args.init.map(Into::into),
        optimizer: args.optimizer.map(Into::into),
        label_smoothing: args.label_smoothing,
        weight_decay: args.weight_decay,
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.learning_rate,
        every: args.every,
        tracked: args.tracked,
        certainty_epsilon: args.certainty_epsilon,
        mode: Some(args.recording.into()),
        conv_signs: Some(args.conv_signs.into()),
        retrain_epochs: args.retrain_epochs,
        retrain_samples: args.retrain_samples,
        retrain_stop: args.retrain_stop.map(Into::into),
    }
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

/// `<out>/<model id>`; a folder of an older version under the model's old id (`cnn-relu`) is
/// renamed to the new one, so that `--resume` finds its checkpoint and results.
fn model_dir(out: &Path, model: ModelId) -> Result<PathBuf> {
    let dir = out.join(model.id());
    let legacy = out.join(model.legacy_id());
    if legacy != dir && legacy.is_dir() && !dir.exists() {
        std::fs::rename(&legacy, &dir).with_context(|| format!("renaming {} to {}", legacy.display(), dir.display()))?;
        println!("note: {} is now {} (model ids name their data set); renamed the folder", legacy.display(), dir.display());
    }
    Ok(dir)
}

/// A run's error in a user's words: a diverged loss says what is kept on disk.
fn run_error(e: RunError, ckpt: &Checkpoint) -> anyhow::Error {
    match e {
        RunError::Diverged { .. } => {
            let kept = if ckpt.exists() { "the last good checkpoint (the previous epoch's end) is kept" } else { "no checkpoint had been written yet" };
            anyhow::anyhow!("{e}; {kept}. A lower --learning-rate may help")
        }
        RunError::Observer(e) | RunError::Data(e) => anyhow::Error::from_boxed(e),
    }
}

/// Trains (or resumes) a session until done or `--stop-after` (`false`): `one_epoch` steps
/// through an epoch's data and ends it.
fn train<M: TappedModel>(args: &ReproduceArgs, session: &mut Session<M>, dir: &Path, one_epoch: &mut dyn FnMut(&mut Session<M>, &mut dyn run::Observer<M>) -> Result<(), RunError>) -> Result<bool> {
    let ckpt = Checkpoint::new(dir);
    let pb = bar(args.quiet, session.total_steps(), &session.spec().model.id());
    pb.set_position(session.progress().step);
    let (mut progress, mut writer) = (Bar(pb.clone()), Checkpoints(&ckpt));
    let first = session.progress().epochs_done;
    while !session.is_finished() {
        if args.stop_after.is_some_and(|n| session.progress().epochs_done - first >= n) {
            pb.abandon();
            return Ok(false);
        }
        let mut obs = All(vec![&mut progress, &mut writer]);
        one_epoch(session, &mut obs).map_err(|e| run_error(e, &ckpt))?;
    }
    pb.finish();
    Ok(true)
}

/// Trains, records and runs the experiments for one MLP or CNN; writes its folder.
fn run_model<M: TappedModel>(args: &ReproduceArgs, chosen: &Chosen, split: &Split, spec: RunSpec, build: impl FnOnce(&Device) -> M) -> Result<Option<(Results, Vec<NamedFigure>)>> {
    let id = spec.model.id();
    let dir = model_dir(&args.out, spec.model)?;
    let _lock = crate::files::lock_folder(&dir)?;
    let earlier = if args.resume { output::earlier_run(&dir, &spec)? } else { Earlier::Nothing };
    let retested = match earlier {
        Earlier::Finished(results, figs) => {
            println!("{id}: finished earlier with the same settings, keeping {}", dir.join("results.json").display());
            return Ok(Some((results, figs)));
        }
        Earlier::Retest(previous) => Some(previous),
        Earlier::Nothing => None,
    };
    let device = chosen.device.clone().autodiff();
    let mut session = Session::start(spec.clone(), &split.train, split.norm, &device, None, build);
    let t = spec.train.clone().expect("MLPs and CNNs train");
    let layers = session.layers().to_vec();
    println!(
        "{id}: {}; {} epochs, recording ({:?}) every {} batches on {} samples x {} neurons; sign counts take {:.1} MiB on the device",
        spec.architecture(),
        t.epochs,
        t.mode,
        t.every_batches,
        session.count_rows(),
        layers.iter().map(|l| l.neurons).sum::<usize>(),
        layers.iter().map(|l| 2 * 4 * session.count_rows() * l.neurons).sum::<usize>() as f64 / (1 << 20) as f64
    );
    let ckpt = Checkpoint::new(&dir);
    if args.resume && ckpt.exists() {
        // A checkpoint of an older version carries the whole spec's fingerprint or its settings
        // string: accepted when it is this spec's, or the spec's that finished in this folder
        // with the same training, and kept on for the checkpoints that follow.
        let stored = ckpt.load_progress()?.fingerprint;
        let same_training = |p: &RunSpec| p.training_fingerprint() == spec.training_fingerprint() && p.owns(&stored);
        let fingerprint = if spec.owns_training(&stored) || retested.as_ref().is_some_and(same_training) { stored } else { spec.training_fingerprint() };
        let limit = (64 << 20) + 2 * spec.needed_bytes();
        let (model, optim) = session.take_model();
        let (m, o, r, p) = ckpt.load(model, optim, &device, &fingerprint, &layers, session.count_rows(), t.mode, limit)?;
        println!("{id}: resuming after epoch {} (step {}, {} recordings)", p.epochs_done, p.step, r.recordings);
        session.resume(m, o, Some(r), p);
    }
    let mut one_epoch = |s: &mut Session<M>, obs: &mut dyn run::Observer<M>| -> Result<(), RunError> {
        let mut batches = 0;
        while !s.epoch_complete() {
            s.step(split, obs)?;
            batches += 1;
            // Losses are read in groups: one device read per 50 steps.
            if batches % 50 == 0 {
                s.settle(obs)?;
            }
        }
        s.end_epoch(&split.test, split.norm, obs)
    };
    if !train(args, &mut session, &dir, &mut one_epoch)? {
        return Ok(None);
    }
    let pb = bar(args.quiet, 1, "experiments");
    let done = run::finish_in_memory(session, split, &device, &chosen.name, &mut Bar(pb.clone())).map_err(anyhow::Error::from_boxed)?;
    pb.finish();
    let figs = figures(&done.results, &done.recorder, &done.signs, &done.spec.figure_layers);
    output::write_model(&dir, &done.results, &figs)?;
    Ok(Some((done.results, figs)))
}

/// ResNet50 on an ImageNet-format folder, with pretrained weights or trained here
/// (`--epochs N`: from scratch, or fine-tuned from `--weights`). No gradient-sign recording: the
/// paper studied ResNet50 through figures 3 and 4 and Table 1 only.
fn run_resnet(args: ReproduceArgs) -> Result<()> {
    let weights = args.weights.clone();
    if weights.is_none() && args.epochs.is_none() {
        bail!("--model resnet50 needs --weights (torchvision-layout ResNet50 weights: .safetensors, or a .pth state dict such as resnet50-11ad3fa6.pth), or --epochs N to train it here from scratch")
    }
    let Some(root) = args.data.clone() else {
        bail!("--model resnet50 needs --data: an ImageNet-format folder with train/<wnid>/ and val/ (class folders, or flat with {})", hidden_neurons::data::VAL_CSV)
    };
    ensure!((32..=1024).contains(&args.side), "--side: {} is out of range; allowed: 32 to 1024", args.side);
    ensure!((1..=256).contains(&args.width), "--width: {} is out of range; allowed: 1 to 256 (torchvision's ResNet50: 64)", args.width);
    if args.limit == Some(0) {
        bail!("--limit: 0 images per class would leave nothing to study");
    }
    if !args.only.is_empty() || args.hidden.is_some() {
        bail!("--only and --hidden do not apply to --model resnet50");
    }
    if let Some(e) = args.epochs {
        ensure!((1..=settings::MAX_EPOCHS).contains(&e), "--epochs: {e} is out of range; allowed: 1 to {}", settings::MAX_EPOCHS);
    }
    if args.stop_after == Some(0) || (args.stop_after.is_some() && args.epochs.is_none()) {
        bail!("--stop-after needs --epochs (training) and at least 1 epoch");
    }
    if let Some(lr) = args.learning_rate {
        settings::check_learning_rate(lr)?;
    }
    let seed = args.seed;
    let mut exp = match args.preset {
        Preset::Paper => ExperimentConfig::resnet_paper(seed),
        Preset::Fast => ExperimentConfig::resnet_fast(seed),
        Preset::Cpu => bail!("--preset cpu is a CIFAR preset (--model cifar); ResNet50 takes paper or fast"),
    };
    run::spec::override_retraining(&mut exp, &overrides(&args));
    if let Some(b) = args.batch {
        exp.batch_size = b;
    }
    if let Some(n) = args.train_samples {
        exp.stats_samples = n;
    }
    settings::check_experiments(&exp)?;

    // 1000-class ImageNet weights with a folder of wnid-named classes: classes are numbered by
    // their place among ImageNet-1k's wnids, as the weights number them.
    let weight_classes = match &weights {
        Some(w) => hidden_neurons::weights::classes_in_file(w, 32 * args.width)?,
        None => None,
    };
    let (train_folder, val, by_1k_wnids) = discover_splits(&root, args.limit, weight_classes)?;
    if by_1k_wnids {
        println!("classes: {} of ImageNet-1k's wnids, numbered by their place among its 1000 (as the weights number them)", train_folder.classes.len());
    }
    let test_samples = args.test_samples.or(match args.preset {
        Preset::Paper | Preset::Cpu => None,
        Preset::Fast => Some(100),
    });
    let classes = train_folder.classes.len();
    let stream = StreamConfig {
        batch: exp.batch_size,
        prefetch: 2,
        threads: 0,
        skip_bad: args.skip_bad_images,
        resize: (args.side as u32 * RESIZE_SHORTER).div_ceil(CROP),
        crop: args.side as u32,
    };
    let stats = ImageSource::new(train_folder.sample(exp.stats_samples, seed), stream);
    let retrain = ImageSource::new(train_folder.sample(exp.retrain_samples, seed.wrapping_add(1)), stream);
    let test = ImageSource::new(val.sample(test_samples.unwrap_or(usize::MAX), seed.wrapping_add(2)), stream);
    println!(
        "data: {} ({classes} classes): statistics on {} and probes trained on {} training images, tested on {} validation images, {}x{}",
        root.display(),
        stats.len(),
        retrain.len(),
        test.len(),
        args.side,
        args.side
    );
    // What the statistics subset's largest layer (conv1) keeps on the device at once: all of it,
    // or, beyond max_captured_values, one batch at a time (streamed).
    let conv1_values = stats.len() as u64 * (args.side as u64).div_ceil(2).pow(2) * args.width as u64;
    settings::check_memory(conv1_values.min(exp.max_captured_values as u64) * 4 * 3, memory_budget())?;

    let network = ResNetConfig { side: args.side, width: args.width, blocks: RESNET50_BLOCKS.to_vec(), classes, stem: Stem::Imagenet };
    let optimizer: Optimizer = args.optimizer.map_or(Optimizer::Adam, Into::into);
    let training = args.epochs.map(|epochs| TrainConfig {
        epochs,
        batch_size: exp.batch_size,
        learning_rate: args.learning_rate.unwrap_or(if weights.is_some() { 1e-4 } else { 1e-3 }),
        optimizer,
        ..TrainConfig::paper(seed)
    });
    let dataset = format!("ImageNet-format folder {} ({classes} classes{})", root.display(), args.limit.map(|n| format!(", at most {n} images per class")).unwrap_or_default());
    let n_train = train_folder.items.len();

    let dir = args.out.join("resnet50");
    let _lock = crate::files::lock_folder(&dir)?;
    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    device.seed(seed);
    let model = match &weights {
        Some(w) => load_resnet(network.init(&device), w).with_context(|| {
            format!("loading weights for {classes} classes (numbered by {SYNSETS} in {} if there, else by train/'s class folders)", root.display())
        })?,
        None => network.init(&device),
    };
    let studied: Vec<usize> = STUDIED.iter().filter_map(|name| model.layers().iter().position(|l| l.name == *name)).collect();
    let spec = RunSpec::resnet50(args.preset.into(), seed, network, weights.as_ref().map(|w| w.display().to_string()), training, exp.clone(), studied.clone())
        .with_data(dataset, n_train, test.len());
    let (model, progress) = match &spec.train {
        Some(t) => {
            // Parameters with gradients and two optimizer moments, and a batch's activations kept
            // for the backward pass (about 25 M values per 224 x 224 image at full width).
            let scale = (args.side * args.side) as u64 * args.width as u64 / (224 * 224 * 64);
            settings::check_memory(25_600_000 * 16 + t.batch_size as u64 * 100_000_000 * scale.max(1), memory_budget())?;
            let mut session = Session::start_unrecorded(spec.clone(), n_train, &device, |_| model);
            let ckpt = Checkpoint::new(&dir);
            if args.resume && ckpt.exists() {
                let limit = (64 << 20) + 16 * 25_600_000 * (args.width as u64 * args.width as u64).div_ceil(64 * 64);
                let (model, optim) = session.take_model();
                let stored = ckpt.load_progress()?.fingerprint;
                let fingerprint = if spec.owns_training(&stored) { stored } else { spec.training_fingerprint() };
                let (m, o, p) = ckpt.load_training(model, optim, &fingerprint, limit)?;
                println!("resnet50: resuming after epoch {} (step {})", p.epochs_done, p.step);
                session.resume(m, o, None, p);
            }
            let batch = t.batch_size;
            let mut one_epoch = |s: &mut Session<ResNet>, obs: &mut dyn run::Observer<ResNet>| -> Result<(), RunError> {
                let epoch = s.progress().epochs_done;
                let order = ImageSource::new(train_folder.sample(n_train, seeds::augment_seed(seed, epoch)), stream);
                let mut failed = None;
                order
                    .visit(batch, &device, &mut |x, y| {
                        if failed.is_none() {
                            failed = s.step_on(x, y, &[], obs).err();
                        }
                    })
                    .map_err(RunError::Data)?;
                if let Some(e) = failed {
                    return Err(e);
                }
                s.settle(obs)?;
                let acc = experiments::accuracy_of(s.model(), &test, &device, batch).map_err(RunError::Data)?;
                let rotation = hidden_neurons::rotation::cosine_distances(&s.model().weight_layers(), s.start_weights());
                s.end_epoch_with(acc, rotation, obs)
            };
            if !train(&args, &mut session, &dir, &mut one_epoch)? {
                println!("stopped after {} epoch(s) as asked; continue with --resume", args.stop_after.unwrap_or(0));
                return Ok(());
            }
            let (model, _, _, progress, _) = session.into_parts();
            (model, Some(progress))
        }
        None => (model, None),
    };
    let started = std::time::Instant::now();
    let test_accuracy = match progress.as_ref().and_then(|p| p.epoch_test_accuracy.last()) {
        Some(&a) => a,
        None => experiments::accuracy_of(&model, &test, &device, exp.batch_size).map_err(anyhow::Error::from_boxed)?,
    };
    let pb = bar(args.quiet, 1, "resnet50");
    let analysis = run::analyze(&model, &AnalysisData { stats: &stats, retrain: &retrain, test: &test }, &exp, &studied, &studied, &device, &mut Bar(pb.clone()))
        .map_err(anyhow::Error::from_boxed)?;
    pb.finish();
    let skipped = stats.skipped() + retrain.skipped() + test.skipped();
    if skipped > 0 {
        println!("skipped {skipped} unusable image(s) (--skip-bad-images)");
    }
    let layers = model.layers();
    let results = run::results(&Outcome {
        spec: &spec,
        backend: &chosen.name,
        test_accuracy,
        layers: &layers,
        signs: None,
        recorder: None,
        analysis: &analysis,
        progress: progress.as_ref(),
        rotation_layers: if progress.is_some() { model.weight_layers().into_iter().map(|(n, _)| n).collect() } else { Vec::new() },
        experiment_seconds: started.elapsed().as_secs_f64(),
    });
    let id = spec.model.id();
    let names: Vec<String> = STUDIED.iter().map(|s| s.to_string()).collect();
    let figs = vec![quantization_figure_of(&results, &names), window_figure_of(&results, &names)];
    output::write_model(&dir, &results, &figs)?;
    println!(
        "{id}: top-1 accuracy {:.4}; {}",
        results.test_accuracy,
        results.layers.iter().map(|(n, l)| format!("{n}: zero rank {:.1}", l.zero_percentile_rank)).collect::<Vec<_>>().join("; ")
    );
    let table1: Vec<ZeroRankRow> = results.layers.iter().map(|(n, l)| ZeroRankRow { model: id.clone(), layer: n.clone(), zero_percentile_rank: l.zero_percentile_rank }).collect();
    let section = ReportSection { model: id, summary: output::summary(&results), figures: figs };
    output::write_report(&args.out, &[section], &table1)?;
    println!("wrote {}", args.out.join("report.html").display());
    Ok(())
}
