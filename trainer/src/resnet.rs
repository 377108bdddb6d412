//! `trainer reproduce --model resnet50`: pretrained ResNet50 weights on an ImageNet-format
//! folder. No training and no gradient-sign recording (the paper studied ResNet50 through
//! figures 3 and 4 and Table 1 only): the experiments of `hidden_neurons::experiments` run on
//! images decoded from disk batch by batch, and the same output code writes results.json, the
//! figures, Table 1 and report.html.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use hidden_neurons::analysis::{quantization_figure_of, window_figure_of};
use hidden_neurons::data::{CROP, ImageFolder, ImageSource, RESIZE_SHORTER, Source, StreamConfig};
use hidden_neurons::experiments::{self, ExperimentConfig, QuantizeAt};
use hidden_neurons::figures::Histogram;
use hidden_neurons::model::{RESNET50_BLOCKS, ResNetConfig, TappedModel};
use hidden_neurons::recording::RecordingMode;
use hidden_neurons::report::{ReportSection, ZeroRankRow};
use hidden_neurons::results::{LayerResults, RecordingSummary, Results};
use hidden_neurons::settings;
use hidden_neurons::train::TrainConfig;
use hidden_neurons::weights::load_resnet;

use crate::{Preset, ReproduceArgs, output};

/// The layers the experiments run on, as the paper named them: the first layer, an intermediate
/// block and the last block.
pub const STUDIED: [&str; 3] = ["conv1", "3d", "5c"];

/// The CSV torchvision's flat validation folder comes with (Kaggle's ILSVRC2012 layout).
const VAL_CSV: &str = "LOC_val_solution.csv";

pub fn run(args: ReproduceArgs) -> Result<()> {
    let Some(weights) = args.weights.clone() else {
        bail!("--model resnet50 needs --weights: torchvision-layout ResNet50 weights (.safetensors, or a .pth state dict such as resnet50-11ad3fa6.pth)")
    };
    let Some(root) = args.data.clone() else {
        bail!("--model resnet50 needs --data: an ImageNet-format folder with train/<wnid>/ and val/ (class folders, or flat with {VAL_CSV})")
    };
    ensure!((32..=1024).contains(&args.side), "--side: {} is out of range; allowed: 32 to 1024", args.side);
    ensure!((1..=256).contains(&args.width), "--width: {} is out of range; allowed: 1 to 256 (torchvision's ResNet50: 64)", args.width);
    if args.limit == Some(0) {
        bail!("--limit: 0 images per class would leave nothing to study");
    }
    if !args.only.is_empty() || args.hidden.is_some() || args.epochs.is_some() || args.stop_after.is_some() {
        bail!("--only, --hidden, --epochs and --stop-after do not apply to --model resnet50 (pretrained weights; nothing is trained)");
    }
    let seed = args.seed;
    let (mut exp, preset) = match args.preset {
        Preset::Paper => (ExperimentConfig::resnet_paper(seed), "paper"),
        Preset::Fast => (ExperimentConfig::resnet_fast(seed), "fast"),
    };
    if let Some(n) = args.retrain_samples {
        exp.retrain_samples = n;
    }
    if let Some(e) = args.retrain_epochs {
        exp.retrain_epochs = e;
    }
    if let Some(b) = args.batch {
        exp.batch_size = b;
    }
    if let Some(n) = args.train_samples {
        exp.stats_samples = n;
    }
    settings::check_experiments(&exp)?;

    let (train, val) = discover(&root, args.limit)?;
    let test_samples = args.test_samples.or(match args.preset {
        Preset::Paper => None,
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
    // What the statistics subset's largest layer keeps on the device at once (conv1).
    let conv1_values = stats.len() as u64 * (args.side as u64).div_ceil(2).pow(2) * args.width as u64;
    settings::check_memory(conv1_values * 4 * 3, crate::reproduce::memory_budget())?;

    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("backend: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    device.seed(seed);
    let cfg = ResNetConfig { side: args.side, width: args.width, blocks: RESNET50_BLOCKS.to_vec(), classes };
    let model = load_resnet(cfg.init(&device), &weights)?;
    let layers = model.layers();
    let studied: Vec<usize> = STUDIED.iter().filter_map(|name| layers.iter().position(|l| l.name == *name)).collect();

    let id = "resnet50";
    let dir = args.out.join(id);
    let started = Instant::now();
    let bar = crate::reproduce::bar(&args, (1 + studied.len() * (1 + exp.ranks.len() + exp.centres.len())) as u64, id);
    bar.set_message("test accuracy");
    let test_accuracy = experiments::accuracy_of(&model, &test, &device, exp.batch_size).map_err(anyhow::Error::from_boxed)?;
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
            note: "none: pretrained weights, not trained here; the paper studied ResNet50 through figures 3, 4 and Table 1".into(),
        },
        layers: layer_results,
        backend: chosen.name.clone(),
        architecture: format!(
            "ResNet50 in torchvision's layout (bottleneck blocks, stride on the 3x3 conv), base width {}, {}x{} inputs, weights {}",
            args.width,
            args.side,
            args.side,
            weights.display()
        ),
        train: TrainConfig { epochs: 0, ..TrainConfig::fast(seed) },
        experiments: exp,
        epoch_loss: Vec::new(),
        epoch_test_accuracy: Vec::new(),
        train_seconds: 0.0,
        experiment_seconds: started.elapsed().as_secs_f64(),
        layer_rotation: Vec::new(),
        settings: Some(format!("resnet50 preset={preset} seed={seed} weights={} data={} side={} width={} limit={:?}", weights.display(), root.display(), args.side, args.width, args.limit)),
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

/// `root/train/<wnid>/` and `root/val/`, the latter with class folders or flat with its CSV.
fn discover(root: &Path, limit: Option<usize>) -> Result<(ImageFolder, ImageFolder)> {
    let train = ImageFolder::discover(&root.join("train"), limit)?;
    let val_dir = root.join("val");
    let has_class_folders = std::fs::read_dir(&val_dir)
        .with_context(|| format!("{}: cannot read the validation folder", val_dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().is_dir());
    let val = if has_class_folders {
        ImageFolder::discover(&val_dir, limit)?
    } else {
        let csv: PathBuf = [root.join(VAL_CSV), val_dir.join(VAL_CSV)].into_iter().find(|p| p.is_file()).with_context(|| {
            format!("{}: flat (no class folders), and no {VAL_CSV} beside it or in {} to label its images", val_dir.display(), root.display())
        })?;
        ImageFolder::flat(&val_dir, &csv, Some(train.classes.clone()), limit)?
    };
    if val.classes != train.classes {
        bail!("{}: its {} classes are not the training folder's {}", val_dir.display(), val.classes.len(), train.classes.len());
    }
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
