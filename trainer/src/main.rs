//! `trainer`: reproduce the paper's figures and tables natively, on a GPU through wgpu or on the
//! CPU.

mod bench;
mod bench_percentiles;
mod checkpoint;
mod compare;
mod download;
mod files;
mod output;
mod profile;
mod observers;
mod reproduce;
mod study;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use hidden_neurons::backend::BackendChoice;
use hidden_neurons::recording::RecordingMode;

#[derive(Parser)]
#[command(name = "trainer", version, about = "Hidden neurons as binary classifiers: reproduce the paper's figures and tables")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the models, record gradient signs, run the test-time experiments, write results and figures.
    Reproduce(ReproduceArgs),
    /// Print training samples/s and the cost of recording for one model.
    Bench(BenchArgs),
    /// Training samples/s of ours and PyTorch's side by side (bench/workloads.json; PyTorch's
    /// side is scripts/torch_bench.py and needs Python with torch).
    Compare(CompareArgs),
    /// The paper's claims across settings and seeds: a grid of `reproduce` runs (each resumable,
    /// in its own folder), then a verdict per claim, setting and layer (study.md, study.html).
    Study(StudyArgs),
    /// Check that a results.json (from this trainer or exported by the web page) follows the schema.
    Validate {
        /// The results.json to read.
        file: std::path::PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelFamily {
    /// The two MNIST MLPs (mlp-relu, mlp-sigmoid; --only mnist-cnn-relu for the page's CNN).
    Mnist,
    /// The two CIFAR-10 CNNs (cifar-cnn-relu, cifar-cnn-linear); without --data, the official
    /// archive is downloaded once.
    Cifar,
    /// Pretrained ResNet50 on an ImageNet-format folder; --weights and --data are required.
    Resnet50,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The paper's recording cadence (MNIST: every 10 batches, ~2350 recordings; CIFAR: every
    /// 100 batches, ~1600 recordings) and full-size experiments.
    Paper,
    /// Minutes on two CPU cores: MNIST for 3 epochs; CIFAR with a narrow CNN on 5000 images for
    /// 2 epochs; lighter experiments.
    Fast,
    /// CIFAR only: a narrow CNN (16-32-64-128) that learns on two CPU cores: all 50 000 images
    /// with augmentation, 10 epochs of SGD with Nesterov momentum, a one-cycle schedule peaking
    /// at 0.1, label smoothing 0.1 and weight decay 5e-4 (about 45 minutes a network).
    Cpu,
}

impl From<Preset> for hidden_neurons::run::Preset {
    fn from(p: Preset) -> Self {
        match p {
            Preset::Paper => Self::Paper,
            Preset::Fast => Self::Fast,
            Preset::Cpu => Self::Cpu,
        }
    }
}

impl Preset {
    pub fn name(self) -> &'static str {
        hidden_neurons::run::Preset::from(self).name()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// wgpu on a real GPU adapter; otherwise burn's CPU backend.
    Auto,
    Wgpu,
    /// burn's flex CPU backend (the fastest of burn's CPU backends measured here; see
    /// docs/performance.md).
    Cpu,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Wgpu => BackendChoice::Wgpu,
            BackendArg::Cpu => BackendChoice::Cpu,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    Burn,
    Keras,
}

impl From<InitArg> for hidden_neurons::model::Init {
    fn from(i: InitArg) -> Self {
        match i {
            InitArg::Burn => Self::Burn,
            InitArg::Keras => Self::Keras,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Adam,
    Sgd,
    Rmsprop,
    Nesterov,
}

impl From<OptimizerArg> for hidden_neurons::train::Optimizer {
    fn from(o: OptimizerArg) -> Self {
        match o {
            OptimizerArg::Adam => Self::Adam,
            OptimizerArg::Sgd => Self::Sgd,
            OptimizerArg::Rmsprop => Self::Rmsprop,
            OptimizerArg::Nesterov => Self::Nesterov,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvSignsArg {
    /// One sign per (sample, channel): the derivative summed over positions.
    Channel,
    /// Also one per (sample, position, channel), at 16 fixed random positions per channel.
    Positions,
}

impl From<ConvSignsArg> for hidden_neurons::train::ConvSigns {
    fn from(c: ConvSignsArg) -> Self {
        match c {
            ConvSignsArg::Channel => Self::Channel,
            ConvSignsArg::Positions => Self::Positions,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A separate pass over a fixed tracked set every K batches, dropout off (the paper's method).
    Tracked,
    /// Signs from the training batches' own backward pass (free; dropout on; whole training set).
    Online,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RetrainStopArg {
    /// Until the loss on a held-out tenth of the retraining set stops improving (at most
    /// --retrain-epochs); the suffix with the lowest held-out loss is tested.
    HeldOut,
    /// Exactly --retrain-epochs epochs (the paper's rule).
    Epochs,
}

impl From<RetrainStopArg> for hidden_neurons::experiments::RetrainStop {
    fn from(a: RetrainStopArg) -> Self {
        match a {
            RetrainStopArg::HeldOut => Self::HELD_OUT,
            RetrainStopArg::Epochs => Self::Epochs,
        }
    }
}

impl From<ModeArg> for RecordingMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Tracked => RecordingMode::Tracked,
            ModeArg::Online => RecordingMode::Online,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    MlpRelu,
    MlpSigmoid,
    /// The page's small MNIST CNN (8-16-32 channels, batch-norm).
    MnistCnnRelu,
    MnistCnnSigmoid,
    /// The paper's 12-layer CIFAR-10 CNN (`cnn-relu` before model ids named their data set).
    #[value(alias = "cnn-relu")]
    CifarCnnRelu,
    #[value(alias = "cnn-linear")]
    CifarCnnLinear,
    /// ResNet50's bottleneck blocks (3-4-6-3) on CIFAR-10: a 3x3 stride-1 stem, no max-pool,
    /// widths / 8 (presets cpu and fast).
    CifarResnet,
    /// torchvision's ResNet50 (bench, compare; `reproduce --model resnet50` for the study).
    Resnet50,
}

impl ModelArg {
    /// The `reproduce --model` family it belongs to.
    pub fn family(self) -> Option<ModelFamily> {
        match self {
            ModelArg::MlpRelu | ModelArg::MlpSigmoid | ModelArg::MnistCnnRelu | ModelArg::MnistCnnSigmoid => Some(ModelFamily::Mnist),
            ModelArg::CifarCnnRelu | ModelArg::CifarCnnLinear | ModelArg::CifarResnet => Some(ModelFamily::Cifar),
            ModelArg::Resnet50 => Some(ModelFamily::Resnet50),
        }
    }

    pub fn activation(self) -> hidden_neurons::model::Activation {
        self.id().activation
    }

    /// The network's id in results.json and output folders.
    pub fn id(self) -> hidden_neurons::run::ModelId {
        use hidden_neurons::model::Activation;
        use hidden_neurons::run::{Family, ModelId};
        match self {
            ModelArg::MlpRelu => ModelId::new(Family::Mlp, Activation::Relu),
            ModelArg::MlpSigmoid => ModelId::new(Family::Mlp, Activation::Sigmoid),
            ModelArg::MnistCnnRelu => ModelId::new(Family::MnistCnn, Activation::Relu),
            ModelArg::MnistCnnSigmoid => ModelId::new(Family::MnistCnn, Activation::Sigmoid),
            ModelArg::CifarCnnRelu => ModelId::new(Family::CifarCnn, Activation::Relu),
            ModelArg::CifarCnnLinear => ModelId::new(Family::CifarCnn, Activation::None),
            ModelArg::CifarResnet => ModelId::new(Family::CifarResnet, Activation::Relu),
            ModelArg::Resnet50 => ModelId::new(Family::Resnet50, Activation::Relu),
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct ReproduceArgs {
    /// Which paper models to reproduce.
    #[arg(long, value_enum, default_value = "mnist")]
    model: ModelFamily,
    /// MNIST: folder with the four MNIST-style IDX files (.gz or raw); default: the MNIST shipped
    /// in the repo. CIFAR: cifar-10-binary.tar.gz, or a folder holding it or the batch files;
    /// default: the official archive, downloaded once into ~/.cache/hidden-neurons/data
    /// ($XDG_CACHE_HOME) and checked against its MD5.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "paper")]
    preset: Preset,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// Continue a killed run from its last epoch-end checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Where the gradient signs come from.
    #[arg(long, value_enum, default_value = "tracked")]
    recording: ModeArg,
    /// Only these models of the family (default: both).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<ModelArg>,
    /// Override the preset's number of epochs (1 to 10000).
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the widths: the MLP's hidden layers (e.g. 512,512; 1 to 16 layers of 1 to 65536)
    /// or the CNN's stages (e.g. 64,128,256,512; 1 to 8192 each, at most 6 stages for 32x32
    /// images). Sizes whose estimated memory exceeds this machine's are refused.
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Override the batch size (1 to 65536).
    #[arg(long)]
    batch: Option<usize>,
    /// Override the learning rate (above 0, at most 10; default: the preset's, 0.01 for SGD).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Initial weights: burn's defaults, or Keras' (Glorot-uniform weights, zero biases). Default:
    /// keras for the paper preset (the paper used Keras), burn for the fast preset.
    #[arg(long, value_enum)]
    init: Option<InitArg>,
    /// The optimizer: adam (ours), sgd (momentum 0.9), nesterov (SGD with Nesterov momentum 0.9)
    /// or rmsprop (Keras' rho 0.9, eps 1e-7). Default: the preset's (nesterov for cpu, else adam).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Override the label smoothing of the training loss (0: off; below 1; tracked recording).
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// Override the L2 weight decay of the SGD optimizers (0: off; at most 1).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// CNNs: count gradient signs per channel (the derivative summed over positions), or per
    /// position too (tracked recording; 16 fixed random positions per channel), reported beside.
    #[arg(long, value_enum, default_value = "channel")]
    conv_signs: ConvSignsArg,
    /// Override the recording cadence (batches between recordings, 1 to 1000000).
    #[arg(long)]
    every: Option<usize>,
    /// Samples whose true-class probability is at least 1 - this count as having exact zero
    /// gradients, as in the Keras/TensorFlow cross-entropy the paper used (0: off; below 1).
    #[arg(long)]
    certainty_epsilon: Option<f32>,
    /// Override the number of tracked samples (1 to 100000; more than the training samples
    /// tracks them all).
    #[arg(long)]
    tracked: Option<usize>,
    /// Override the number of training samples used (the first N, at least 1); for quick tests.
    #[arg(long)]
    train_samples: Option<usize>,
    /// Override the number of test samples used (the first N, at least 1).
    #[arg(long)]
    test_samples: Option<usize>,
    /// Override the experiments' retraining epochs (1 to 1000; with --retrain-stop held-out, the
    /// most it may take).
    #[arg(long)]
    retrain_epochs: Option<usize>,
    /// Override the experiments' retraining samples (at least 1).
    #[arg(long)]
    retrain_samples: Option<usize>,
    /// Override when the experiments' retraining stops (the fast and cpu presets: held-out; paper,
    /// ResNet50's presets: epochs).
    #[arg(long, value_enum)]
    retrain_stop: Option<RetrainStopArg>,
    /// Stop after this many epochs in this invocation (at least 1), leaving a checkpoint that
    /// --resume continues (for time-limited sessions).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Print each run's resolved spec (JSON) with its fingerprint and training fingerprint once the
    /// data is read, then stop: what a run would do, and why a checkpoint is or is not resumed.
    #[arg(long)]
    print_spec: bool,
    /// No progress bars (for logs).
    #[arg(long)]
    quiet: bool,
    /// ResNet50: torchvision-layout weights (.safetensors or a .pth state dict).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// ResNet50: the input side (images resized to side x 256/224, then centre-cropped).
    #[arg(long, default_value_t = 224)]
    side: usize,
    /// ResNet50: the base width (torchvision's ResNet50: 64; smaller for test fixtures).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// ResNet50: at most N images per class of each folder (the first in name order).
    #[arg(long)]
    limit: Option<usize>,
    /// ResNet50: count and leave out unreadable or corrupt images instead of stopping.
    #[arg(long)]
    skip_bad_images: bool,
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "mlp-relu")]
    model: ModelArg,
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// Timed training steps after warm-up (1 to 100000).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Batch size (1 to the training samples: 60000 for MNIST, 5000 random CIFAR-shaped images).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Tracked samples per recording (1 to 100000).
    #[arg(long, default_value_t = 1000)]
    tracked: usize,
    /// Widths (default: the paper preset's, 512,512 or 64,128,256,512).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// MNIST-style folder (default: the repo's MNIST). For CNNs the bench uses random images.
    #[arg(long)]
    data: Option<PathBuf>,
    /// CNNs: also time each conv layer's forward, input-gradient and weight-gradient products
    /// alone, beside a matrix product of the same size.
    #[arg(long)]
    profile: bool,
    /// ResNet50: the side of its (random) input images.
    #[arg(long, default_value_t = 224)]
    side: usize,
    /// Instead of training: time the per-neuron percentile selection against the sort it
    /// replaced (values/s, peak memory) at 10^6, 10^7 and 10^8 values.
    #[arg(long)]
    percentiles: bool,
    /// With --percentiles: only these sizes (values; default 10^6, 10^7, 10^8).
    #[arg(long, value_delimiter = ',')]
    percentile_sizes: Option<Vec<usize>>,
    #[arg(long, hide = true, value_enum)]
    percentiles_child: Option<bench_percentiles::Method>,
    #[arg(long, hide = true, default_value_t = 1_000_000)]
    percentile_values: usize,
}

#[derive(clap::Args, Clone, Debug)]
pub struct CompareArgs {
    /// The workloads (default: bench/workloads.json of this repository).
    #[arg(long)]
    workloads: Option<PathBuf>,
    /// Run only this workload (repeatable; default: all).
    #[arg(long)]
    only: Vec<String>,
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// MNIST-style folder for the MLP workloads (default: the repo's MNIST).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The Python that has torch.
    #[arg(long, default_value = "python3")]
    python: String,
    /// PyTorch's device (cpu, cuda).
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// torch.compile PyTorch's model.
    #[arg(long)]
    torch_compile: bool,
    /// Only our side (no Python run).
    #[arg(long)]
    ours_only: bool,
    /// Also write the numbers to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run each workload this many times, ours and PyTorch's in turn, and compare each side's
    /// best: on a shared machine other jobs only ever slow a run down (1 to 20).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
}

#[derive(clap::Args, Clone, Debug)]
pub struct StudyArgs {
    /// Which models (picks the built-in grid when --grid is not given).
    #[arg(long, value_enum)]
    model: Option<ModelFamily>,
    /// A grid file (JSON: description, model, preset, flags, axes), or a built-in grid: mnist
    /// (the default), cifar.
    #[arg(long)]
    grid: Option<String>,
    /// Seeds per setting (1 to 100): seeds 1..=N.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// The study's folder: runs/<setting>/seed<k>/ and the reports.
    #[arg(long, default_value = "study")]
    out: PathBuf,
    /// Run only share i of n of the runs (e.g. a job array's index: --shard 3/8).
    #[arg(long)]
    shard: Option<study::Shard>,
    /// Run nothing: judge the runs the folder holds (e.g. every shard's folder copied into one).
    #[arg(long)]
    merge: bool,
    /// List the runs and their reproduce flags, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Passed to every run (see reproduce --data).
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
}

/// A path of this repository: under the current folder, else beside the workspace this binary was
/// built from.
pub fn in_repo(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// The repo's MNIST.
pub fn default_data_dir() -> PathBuf {
    in_repo("data/mnist")
}

/// glibc hands every freed block above 128 KB back to the system, and the next allocation of
/// that size faults its pages in afresh. A CNN training step allocates and frees hundreds of MB
/// of activations and gradients: 10 paper-CNN steps took 940 000 page faults and 2.5-3 s of
/// system time that way, 115 000 and 0.7-1.0 s with freed memory kept for reuse (8-20% faster
/// steps, the same peak memory; docs/performance.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any thread exists.
    unsafe {
        // Blocks up to 32 MB (glibc's largest threshold) come from the heap instead of mmap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // The heap is not trimmed back to the system below 1 GB of free memory at its top.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // Each growth of the heap asks for 64 MB more than needed, so it grows seldom.
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // The Vulkan loader prints an error per adapter probe without it (headless machines, CI).
        // SAFETY: first thing in main, before any thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Reproduce(args) => reproduce::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Study(args) => study::run(args),
        Command::Validate { file } => validate(&file),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn validate(file: &std::path::Path) -> anyhow::Result<()> {
    let r = output::read_results(file)?;
    for (name, l) in &r.layers {
        let bins = l.avg_sign_histogram.counts.len();
        anyhow::ensure!(l.avg_sign_histogram.edges.len() == bins + 1, "{}: {name}: histogram edges and counts disagree", file.display());
    }
    println!(
        "{}: valid results.json: {} on {} ({}), test accuracy {:.4}, layers {}",
        file.display(),
        r.model,
        r.dataset,
        r.backend,
        r.test_accuracy,
        r.layers.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
