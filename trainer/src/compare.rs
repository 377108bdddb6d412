//! `trainer compare`: our training throughput beside PyTorch's, same workloads, one run.
//!
//! Both sides read bench/workloads.json; PyTorch's side is scripts/torch_bench.py, run as a child
//! process after our side of each workload so that the two never share the cores.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;
use hidden_neurons::data::Split;
use hidden_neurons::model::TappedModel;
use hidden_neurons::train::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::bench::{Prepared, Stepper, Workload, prepare};
use crate::{CompareArgs, ModelArg, files, in_repo};

/// bench/workloads.json.
#[derive(Debug, Deserialize)]
struct Workloads {
    adam: Adam,
    warmup_steps: usize,
    workloads: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Adam {
    lr: f64,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    model: String,
    #[serde(default)]
    hidden: Vec<usize>,
    /// ResNet50's input side.
    #[serde(default = "default_side")]
    side: usize,
    batch: usize,
    steps: usize,
}

fn default_side() -> usize {
    224
}

/// One workload's numbers, as `--json` writes them.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    ours_samples_per_s: f64,
    ours_backend: String,
    pytorch_samples_per_s: Option<f64>,
    pytorch: Option<String>,
    /// Ours over PyTorch's samples/s: above 1 we are faster.
    ratio: Option<f64>,
    /// Each round's samples/s (`--rounds`); the numbers above are the best of them.
    ours_rounds: Vec<f64>,
    pytorch_rounds: Vec<f64>,
}

/// One line of torch_bench.py's output.
#[derive(Debug, Deserialize)]
struct TorchLine {
    name: String,
    samples_per_s: f64,
    torch: String,
    device: String,
    threads: usize,
    compiled: bool,
}

fn read_workloads(path: &Path) -> Result<Workloads> {
    let bytes = files::read(path)?;
    let w: Workloads = serde_json::from_slice(&bytes).with_context(|| format!("{}: not a workloads file", path.display()))?;
    if w.workloads.is_empty() {
        bail!("{}: lists no workloads", path.display());
    }
    for e in &w.workloads {
        ModelArg::from_str(&e.model, false)
            .map_err(|_| anyhow::anyhow!("{}: workload '{}': unknown model '{}' (mlp-relu, mlp-sigmoid, cnn-relu, cnn-linear, resnet50)", path.display(), e.name, e.model))?;
    }
    Ok(w)
}

/// Runs PyTorch's side of one workload. `Err` carries why there is no number (PyTorch missing,
/// the script failing), which is reported, never fatal.
fn torch_side(args: &CompareArgs, workloads: &Path, name: &str) -> std::result::Result<TorchLine, String> {
    if args.ours_only {
        return Err("not run (--ours-only)".into());
    }
    let script = in_repo("scripts/torch_bench.py");
    let mut cmd = Command::new(&args.python);
    cmd.arg(&script).arg("--workloads").arg(workloads).arg("--only").arg(name).arg("--device").arg(&args.torch_device);
    if args.torch_compile {
        cmd.arg("--compile");
    }
    let out = cmd.output().map_err(|e| format!("could not run {} ({e}); PyTorch's side needs Python 3 with torch", args.python))?;
    if out.status.code() == Some(3) {
        return Err("PyTorch is not installed (pip install torch): only our numbers".into());
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{} failed: {}", script.display(), err.lines().last().unwrap_or("")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with('{')).ok_or_else(|| format!("{} printed no result", script.display()))?;
    let parsed: TorchLine = serde_json::from_str(line).map_err(|e| format!("{}: unreadable result ({e})", script.display()))?;
    if parsed.name != name || !parsed.samples_per_s.is_finite() {
        return Err(format!("{}: answered for '{}' instead of '{name}'", script.display(), parsed.name));
    }
    Ok(parsed)
}

/// Seconds of `e.steps` plain training steps after the warm-up.
fn timed<M: TappedModel>(split: &Split, model: M, e: &Entry, config: &Workloads, optim: ModuleOptimizer, device: &Device) -> f64 {
    let mut stepper = Stepper::new(split, e.batch, optim, config.adam.lr);
    let (model, _) = stepper.steps(model, config.warmup_steps, None, device);
    stepper.steps(model, e.steps, None, device).1
}

pub fn run(args: CompareArgs) -> Result<()> {
    let path = args.workloads.clone().unwrap_or_else(|| in_repo("bench/workloads.json"));
    let config = read_workloads(&path)?;
    for name in &args.only {
        if !config.workloads.iter().any(|e| &e.name == name) {
            let names: Vec<&str> = config.workloads.iter().map(|e| e.name.as_str()).collect();
            bail!("--only {name}: no such workload in {} ({})", path.display(), names.join(", "));
        }
    }
    let chosen = hidden_neurons::backend::choose(args.backend.into());
    println!("ours: {}", chosen.reason);
    let device = chosen.device.clone().autodiff();
    let adam = || hidden_neurons::adam::adam(config.adam.beta1, config.adam.beta2, config.adam.eps);

    let mut rows = Vec::new();
    for e in config.workloads.iter().filter(|e| args.only.is_empty() || args.only.contains(&e.name)) {
        let model = ModelArg::from_str(&e.model, false).expect("checked when read");
        let w = Workload { model, hidden: Some(e.hidden.clone()), batch: e.batch, steps: e.steps, tracked: 1, data: args.data.clone(), side: e.side };
        let (mut ours_rounds, mut torch_rounds, mut torch_failure) = (Vec::new(), Vec::new(), None);
        for _ in 0..args.rounds {
            device.seed(1);
            let seconds = match prepare(&w, &device).with_context(|| format!("workload '{}'", e.name))? {
                Prepared::Mlp(split, model) => timed(&split, model, e, &config, adam(), &device),
                Prepared::Cnn(split, model, _) => timed(&split, model, e, &config, adam(), &device),
                Prepared::ResNet(split, model) => timed(&split, model, e, &config, adam(), &device),
            };
            ours_rounds.push((e.steps * e.batch) as f64 / seconds);
            match torch_side(&args, &path, &e.name) {
                Ok(t) => torch_rounds.push(t),
                Err(why) => torch_failure = Some(why),
            }
        }
        let ours = ours_rounds.iter().copied().fold(f64::MIN, f64::max);
        let torch = torch_rounds.iter().max_by(|a, b| a.samples_per_s.total_cmp(&b.samples_per_s)).ok_or_else(|| torch_failure.unwrap_or_default());
        let row = Row {
            name: e.name.clone(),
            ours_samples_per_s: ours,
            ours_backend: chosen.name.clone(),
            pytorch_samples_per_s: torch.as_ref().ok().map(|t| t.samples_per_s),
            pytorch: torch.as_ref().ok().map(|t| {
                format!("torch {} {}{}, {} threads", t.torch, t.device, if t.compiled { " compiled" } else { " eager" }, t.threads)
            }),
            ratio: torch.as_ref().ok().map(|t| ours / t.samples_per_s),
            ours_rounds,
            pytorch_rounds: torch_rounds.iter().map(|t| t.samples_per_s).collect(),
        };
        let head = format!("{:<10} {:>4} steps of {:<4} ours {:>8.0} samples/s", e.name, e.steps, e.batch, ours);
        let spread = |v: &[f64]| format!("{:.0}-{:.0}", v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(f64::MIN, f64::max));
        let rounds = match args.rounds {
            1 => String::new(),
            n => format!("   (best of {n} rounds; ours {}, PyTorch {})", spread(&row.ours_rounds), spread(&row.pytorch_rounds)),
        };
        match &torch {
            Ok(t) => println!(
                "{head}   PyTorch {:>8.0} samples/s ({})   ratio {:.2}x{rounds}",
                t.samples_per_s,
                row.pytorch.as_deref().unwrap_or(""),
                ours / t.samples_per_s
            ),
            Err(why) => println!("{head}   PyTorch: {why}"),
        }
        rows.push(row);
    }
    if let Some(out) = &args.json {
        files::write_atomic(out, &serde_json::to_vec_pretty(&rows)?)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
