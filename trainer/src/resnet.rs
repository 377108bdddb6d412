//! `trainer reproduce --model resnet50`: ResNet50 on an ImageNet-format folder, with pretrained
//! weights, or trained here (`--epochs N`: from scratch, or fine-tuned from `--weights`) with
//! epoch-end checkpoints and `--resume`. No gradient-sign recording (the paper studied ResNet50
//! through figures 3 and 4 and Table 1 only): the experiments of `hidden_neurons::experiments`
//! run on images decoded from disk batch by batch, and the same output code writes results.json,
//! the figures, Table 1 and report.html.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use hidden_neurons::analysis::{quantization_figure_of, window_figure_of};
use hidden_neurons::data::{CROP, ImageFolder, ImageSource, RESIZE_SHORTER, Source, StreamConfig};
use hidden_neurons::experiments::{self, ExperimentConfig, QuantizeAt};
use hidden_neurons::figures::Histogram;
use burn::tensor::Device;
use hidden_neurons::model::{RESNET50_BLOCKS, ResNet, ResNetConfig, TappedModel};
use hidden_neurons::finite::LossLog;
use hidden_neurons::train::{Optimizer, train_step};
use hidden_neurons::recording::RecordingMode;
use hidden_neurons::report::{ReportSection, ZeroRankRow};
use hidden_neurons::results::{LayerResults, RecordingSummary, Results};
use hidden_neurons::settings;
use hidden_neurons::train::TrainConfig;
use hidden_neurons::weights::load_resnet;

use crate::checkpoint::{Checkpoint, Progress};
use crate::{Preset, ReproduceArgs, output};

/// The layers the experiments run on, as the paper named them: the first layer, an intermediate
/// block and the last block.
pub const STUDIED: [&str; 3] = ["conv1", "3d", "5c"];

/// The CSV torchvision's flat validation folder comes with (Kaggle's ILSVRC2012 layout).
const VAL_CSV: &str = "LOC_val_solution.csv";
/// The 1000 wnids with their descriptions, in the same layout: when present, class indices are
/// places in it (as pretrained weights number them), whichever classes the folders hold.
const SYNSETS: &str = "LOC_synset_mapping.txt";

pub fn run(args: ReproduceArgs) -> Result<()> {
    let weights = args.weights.clone();
    if weights.is_none() && args.epochs.is_none() {
        bail!("--model resnet50 needs --weights (torchvision-layout ResNet50 weights: .safetensors, or a .pth state dict such as resnet50-11ad3fa6.pth), or --epochs N to train it here from scratch")
    }
    let Some(root) = args.data.clone() else {
        bail!("--model resnet50 needs --data: an ImageNet-format folder with train/<wnid>/ and val/ (class folders, or flat with {VAL_CSV})")
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
    let preset = args.preset.name();
    let mut exp = match args.preset {
        Preset::Paper => ExperimentConfig::resnet_paper(seed),
        Preset::Fast => ExperimentConfig::resnet_fast(seed),
        Preset::Cpu => bail!("--preset cpu is a CIFAR preset (--model cifar); ResNet50 takes paper or fast"),
    };
    crate::reproduce::override_retraining(&args, &mut exp);
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
    let (train, val) = discover(&root, args.limit, weight_classes)?;
    let test_samples = args.test_samples.or(match args.preset {
        Preset::Paper | Preset::Cpu => None,
        Preset::Fast => Some(100),
    });
    let classes = train.classes.len();
    let stream = StreamConfig {
        batch: exp.batch_size,
        prefetch: 2,
        threads: 0,
        skip_bad: args.skip_bad_images,
        resize: (args.side as u32 * RESIZE_SHORTER).div_ceil(CROP),
        crop: args.side as u32,
    };
    let stats = ImageSource::new(train.sample(exp.stats_samples, seed), stream);
    let retrain = ImageSource::new(train.sample(exp.retrain_samples, seed.wrapping_add(1)), stream);
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
    settings::check_memory(conv1_values.min(exp.max_captured_values as u64) * 4 * 3, crate::reproduce::memory_budget())?;

    let _lock = crate::files::lock_folder(&args.out.join("resnet50"))?;
    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    device.seed(seed);
    let cfg = ResNetConfig { side: args.side, width: args.width, blocks: RESNET50_BLOCKS.to_vec(), classes };
    let model = match &weights {
        Some(w) => load_resnet(cfg.init(&device), w).with_context(|| {
            format!("loading weights for {classes} classes (numbered by {SYNSETS} in {} if there, else by train/'s class folders)", root.display())
        })?,
        None => cfg.init(&device),
    };
    let layers = model.layers();
    let studied: Vec<usize> = STUDIED.iter().filter_map(|name| layers.iter().position(|l| l.name == *name)).collect();

    let id = "resnet50";
    let dir = args.out.join(id);
    let weights_shown = weights.as_ref().map_or("none (trained from scratch)".to_string(), |w| w.display().to_string());
    let fingerprint = format!(
        "resnet50 preset={preset} seed={seed} weights={weights_shown} data={} side={} width={} limit={:?} epochs={:?} batch={} lr={:?} optimizer={:?}",
        root.display(),
        args.side,
        args.width,
        args.limit,
        args.epochs,
        exp.batch_size,
        args.learning_rate,
        args.optimizer.unwrap_or(crate::OptimizerArg::Adam)
    );
    let (model, progress) = match args.epochs {
        Some(epochs) => {
            let t = Training { epochs, lr: args.learning_rate.unwrap_or(if weights.is_some() { 1e-4 } else { 1e-3 }), batch: exp.batch_size };
            match train_model(&args, &t, model, &train, &test, stream, &dir, &fingerprint, &device)? {
                Some(done) => done,
                None => {
                    println!("stopped after {} epoch(s) as asked; continue with --resume", args.stop_after.unwrap_or(0));
                    return Ok(());
                }
            }
        }
        None => (model, Progress::default()),
    };
    let started = Instant::now();
    let bar = crate::reproduce::bar(&args, (1 + studied.len() * (1 + exp.ranks.len() + exp.centres.len())) as u64, id);
    bar.set_message("test accuracy");
    let test_accuracy = match progress.epoch_test_accuracy.last() {
        Some(&a) => a,
        None => experiments::accuracy_of(&model, &test, &device, exp.batch_size).map_err(anyhow::Error::from_boxed)?,
    };
    bar.inc(1);
    let mut layer_results = BTreeMap::new();
    for &l in &studied {
        let name = layers[l].name.clone();
        bar.set_message(format!("{name} zero rank"));
        let zero = experiments::zero_percentile_rank_on(&model, l, &stats, &device, exp.batch_size).map_err(anyhow::Error::from_boxed)?;
        bar.inc(1);
        bar.set_message(format!("{name} quantization"));
        let quantization = experiments::quantization_on(&model, l, &stats, &test, &exp, QuantizeAt::Pre, &device, || bar.inc(1)).map_err(anyhow::Error::from_boxed)?;
        bar.set_message(format!("{name} sliding window, linear probes"));
        let window = experiments::sliding_window_on(&model, l, &stats, &retrain, &test, &exp, &device, || bar.inc(1)).map_err(anyhow::Error::from_boxed)?;
        layer_results.insert(name, unrecorded_layer(layers[l].neurons, zero, quantization, window));
    }
    bar.finish();
    let skipped = stats.skipped() + retrain.skipped() + test.skipped();
    if skipped > 0 {
        println!("skipped {skipped} unusable image(s) (--skip-bad-images)");
    }
    let results = Results {
        model: id.into(),
        dataset: format!("ImageNet-format folder {} ({classes} classes{})", root.display(), args.limit.map(|n| format!(", at most {n} images per class")).unwrap_or_default()),
        preset: preset.into(),
        seed,
        test_accuracy,
        recording: RecordingSummary {
            mode: RecordingMode::Tracked,
            every_batches: 0,
            recordings: 0,
            tracked_samples: 0,
            note: "none: the paper studied ResNet50 through figures 3, 4 and Table 1 only".into(),
        },
        layers: layer_results,
        backend: chosen.name.clone(),
        architecture: format!(
            "ResNet50 in torchvision's layout (bottleneck blocks, stride on the 3x3 conv), base width {}, {}x{} inputs, initial weights {weights_shown}{}",
            args.width,
            args.side,
            args.side,
            args.epochs.map(|e| format!(", then trained {e} epoch(s) here")).unwrap_or_default()
        ),
        train: TrainConfig { epochs: args.epochs.unwrap_or(0), batch_size: exp.batch_size, optimizer: args.optimizer.map_or(Optimizer::Adam, Into::into), ..TrainConfig::fast(seed) },
        experiments: exp,
        epoch_loss: progress.epoch_loss.clone(),
        epoch_test_accuracy: progress.epoch_test_accuracy.clone(),
        train_seconds: progress.train_seconds,
        experiment_seconds: started.elapsed().as_secs_f64(),
        layer_rotation: Vec::new(),
        settings: Some(fingerprint),
    };
    let names: Vec<String> = STUDIED.iter().map(|s| s.to_string()).collect();
    let figs = vec![quantization_figure_of(&results, &names), window_figure_of(&results, &names)];
    output::write_model(&dir, &results, &figs)?;
    println!(
        "{id}: top-1 accuracy {:.4}; {}",
        results.test_accuracy,
        results.layers.iter().map(|(n, l)| format!("{n}: zero rank {:.1}", l.zero_percentile_rank)).collect::<Vec<_>>().join("; ")
    );
    let table1: Vec<ZeroRankRow> = results.layers.iter().map(|(n, l)| ZeroRankRow { model: id.into(), layer: n.clone(), zero_percentile_rank: l.zero_percentile_rank }).collect();
    let section = ReportSection { model: id.into(), summary: output::summary(&results), figures: figs };
    output::write_report(&args.out, &[section], &table1)?;
    println!("wrote {}", args.out.join("report.html").display());
    Ok(())
}

struct Training {
    epochs: usize,
    lr: f64,
    batch: usize,
}

/// Trains `model` on every image of `train` (a seeded new order each epoch, no augmentation),
/// with a checkpoint at each epoch's end; `None` when `--stop-after` stopped it.
#[allow(clippy::too_many_arguments)]
fn train_model(
    args: &ReproduceArgs,
    t: &Training,
    model: ResNet,
    train: &ImageFolder,
    test: &ImageSource,
    stream: StreamConfig,
    dir: &Path,
    fingerprint: &str,
    device: &Device,
) -> Result<Option<(ResNet, Progress)>> {
    // Parameters with gradients and two optimizer moments, and a batch's activations kept for the
    // backward pass (about 25 M values per 224 x 224 image at full width).
    let scale = (args.side * args.side) as u64 * args.width as u64 / (224 * 224 * 64);
    settings::check_memory(25_600_000 * 16 + t.batch as u64 * 100_000_000 * scale.max(1), crate::reproduce::memory_budget())?;
    let optimizer: Optimizer = args.optimizer.map_or(Optimizer::Adam, Into::into);
    let ckpt = Checkpoint::new(dir);
    let (mut model, mut optim, mut progress) = if args.resume && ckpt.exists() {
        let limit = (64 << 20) + 16 * 25_600_000 * (args.width as u64 * args.width as u64).div_ceil(64 * 64);
        let (m, o, p) = ckpt.load_training(model, optimizer.init(), fingerprint, limit)?;
        println!("resnet50: resuming after epoch {} (step {})", p.epochs_done, p.step);
        (m, o, p)
    } else {
        (model, optimizer.init(), Progress { fingerprint: fingerprint.to_string(), ..Default::default() })
    };
    let per_epoch = train.len().div_ceil(t.batch);
    let pb = crate::reproduce::bar(args, (t.epochs * per_epoch) as u64, "resnet50");
    pb.set_position(progress.step);
    let first = progress.epochs_done;
    for epoch in first..t.epochs {
        if args.stop_after.is_some_and(|n| epoch - first >= n) {
            pb.abandon();
            return Ok(None);
        }
        device.seed(args.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let order = ImageSource::new(train.sample(train.len(), args.seed.wrapping_mul(7_000_003).wrapping_add(epoch as u64)), stream);
        let started = Instant::now();
        let mut losses = LossLog::default();
        let mut current = Some(model);
        order
            .visit(t.batch, device, &mut |x, y| {
                let (m, loss, _) = train_step(current.take().expect("the model"), &mut optim, t.lr, x, y, None);
                current = Some(m);
                losses.push(progress.step, loss);
                progress.step += 1;
                pb.inc(1);
            })
            .map_err(anyhow::Error::from_boxed)?;
        model = current.expect("the model");
        losses.check().map_err(|bad| crate::reproduce::diverged(&bad, per_epoch, &ckpt))?;
        let mean = losses.mean() as f32;
        let acc = experiments::accuracy_of(&model, test, device, t.batch).map_err(anyhow::Error::from_boxed)?;
        progress.epochs_done = epoch + 1;
        progress.epoch_loss.push(mean as f64);
        progress.epoch_test_accuracy.push(acc);
        progress.train_seconds += started.elapsed().as_secs_f64();
        pb.set_message(format!("epoch {} loss {mean:.4} test acc {acc:.4}", epoch + 1));
        progress = ckpt.save(&model, &optim, None, &progress)?;
    }
    pb.finish();
    Ok(Some((model, progress)))
}

/// `root/train/<wnid>/` and `root/val/`, the latter with class folders or flat with its CSV.
/// Classes are numbered by `LOC_synset_mapping.txt` where there is one, else by ImageNet-1k's
/// wnid list where the weights have 1000 classes and every folder is one of its wnids, else in
/// the folders' name order.
fn discover(root: &Path, limit: Option<usize>, weight_classes: Option<usize>) -> Result<(ImageFolder, ImageFolder)> {
    let mut train = ImageFolder::discover(&root.join("train"), limit)?;
    let synsets = root.join(SYNSETS);
    if synsets.is_file() {
        train = train.relabel(ImageFolder::synsets(&synsets)?, &synsets)?;
    } else if weight_classes == Some(1000) && train.classes_are_imagenet_1k() {
        println!("classes: {} of ImageNet-1k's wnids, numbered by their place among its 1000 (as the weights number them)", train.classes.len());
        train = train.relabel(hidden_neurons::data::imagenet_1k_wnids(), &root.join("train"))?;
    }
    let val_dir = root.join("val");
    let has_class_folders = std::fs::read_dir(&val_dir)
        .with_context(|| format!("{}: cannot read the validation folder", val_dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().is_dir());
    let val = if has_class_folders {
        let val = ImageFolder::discover(&val_dir, limit)?;
        if val.classes == train.classes { val } else { val.relabel(train.classes.clone(), &val_dir)? }
    } else {
        let csv: PathBuf = [root.join(VAL_CSV), val_dir.join(VAL_CSV)].into_iter().find(|p| p.is_file()).with_context(|| {
            format!("{}: flat (no class folders), and no {VAL_CSV} beside it or in {} to label its images", val_dir.display(), root.display())
        })?;
        ImageFolder::flat(&val_dir, &csv, Some(train.classes.clone()), limit)?
    };
    Ok((train, val))
}

/// A layer's entry without gradient-sign recordings: the sign statistics are empty (null).
fn unrecorded_layer(neurons: usize, zero: f64, quantization: Vec<experiments::RankAccuracy>, window: Vec<experiments::CentreAccuracy>) -> LayerResults {
    let empty = Histogram::empty(-1.0, 1.0, 20);
    LayerResults {
        neurons,
        avg_sign_histogram: empty.clone(),
        example_neuron: 0,
        example_neuron_histogram: empty,
        outer_fraction: f64::NAN,
        zero_percentile_rank: zero,
        quantization,
        post_quantization: Vec::new(),
        sliding_window: window,
        class_low_fraction_histogram: Histogram::empty(0.0, 1.0, 20),
        position_signs: None,
    }
}
