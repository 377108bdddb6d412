//! `trainer study`: the paper's claims across settings and seeds.
//!
//! A grid (settings x seeds) of ordinary `trainer reproduce` runs, each a child process in its own
//! folder, resumable and skipped once finished; then every claim judged per setting by
//! [`hidden_neurons::claims`], averaged over seeds, into `study.md`, `study.html` and
//! `study.json`. `--shard i/n` runs one share of the grid (a job array spreads it over machines);
//! `--merge` judges what a folder holds, e.g. the shards' folders copied into one.
//!
//! A folder's own `study.json` also counts: a run it judged whose folder is not there (a study
//! carried from machine to machine in its committed report, without the run folders) keeps its
//! recorded metrics and is not run again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use hidden_neurons::claims::{Claim, HEADLINE_NOTE, LayerSummary, Metric, Metrics, correlation, run_metrics};
use hidden_neurons::figures::{Curve, CurveFigure, Figure, render_svg};
use serde::{Deserialize, Serialize};

use crate::files::{read, write_atomic};
use crate::{BackendArg, Cli, ModelFamily, StudyArgs, output};

/// A grid file (`trainer/grids/*.json` holds the built-in ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub description: String,
    pub model: String,
    /// `reproduce --preset`.
    pub preset: String,
    /// `reproduce` flags every run gets.
    #[serde(default)]
    pub flags: Vec<String>,
    /// The settings: every combination of the axes' values, the last axis fastest.
    pub axes: Vec<Axis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// `activation` (which model of the family), `model` (a model id of the family, e.g.
    /// `cifar-resnet`), `retrain` (experiment 4's retraining budget), or a `reproduce` flag
    /// without its dashes.
    pub name: String,
    pub values: Vec<String>,
}

/// Axes a grid may vary: `activation` and `model` pick the model, `retrain` the experiments'
/// retraining budget (`held-out`, or `EPOCHSxSAMPLES` for a fixed one), the others are
/// `reproduce` flags.
const AXES: &[&str] = &[
    "activation",
    "model",
    "retrain",
    "init",
    "optimizer",
    "epochs",
    "learning-rate",
    "batch",
    "hidden",
    "every",
    "tracked",
    "certainty-epsilon",
    "recording",
    "retrain-epochs",
    "retrain-samples",
    "retrain-stop",
    "train-samples",
    "test-samples",
];

/// Axes that change only the experiments: runs that differ in these alone study one trained
/// network (the first of them trains it; the others start from its checkpoint).
const EXPERIMENT_AXES: &[&str] = &["retrain", "retrain-stop", "retrain-epochs", "retrain-samples"];

/// Flags the study sets itself, per run.
const OWN_FLAGS: &[&str] = &["--out", "--seed", "--resume", "--model", "--preset", "--only", "--data", "--backend", "--quiet", "--stop-after"];

const BUILT_IN: &[(&str, &str)] = &[
    ("mnist", include_str!("../grids/mnist.json")),
    ("cifar", include_str!("../grids/cifar.json")),
    ("cifar-cpu", include_str!("../grids/cifar-cpu.json")),
];

/// One run: a setting and a seed.
#[derive(Clone, Debug)]
struct Run {
    setting: Vec<(String, String)>,
    /// Position of the setting in the grid.
    index: usize,
    seed: u64,
    dir: PathBuf,
    args: Vec<String>,
    /// The run that trains this run's network, when this one differs from it only in its
    /// experiments.
    twin: Option<PathBuf>,
}

impl Grid {
    fn parse(text: &str, origin: &str) -> Result<Self> {
        let g: Grid = serde_json::from_str(text).with_context(|| format!("{origin}: not a study grid"))?;
        g.check().with_context(|| format!("{origin}: not a usable study grid"))?;
        Ok(g)
    }

    fn check(&self) -> Result<()> {
        for a in self.axes.iter().filter(|a| a.name == "model") {
            for v in &a.values {
                let model = <crate::ModelArg as clap::ValueEnum>::from_str(v, false).map_err(|_| anyhow::anyhow!("axis model: {v:?} is not a model id"))?;
                let family = model.family().map(|f| format!("{f:?}").to_lowercase());
                ensure!(family.as_deref() == Some(self.model.as_str()), "axis model: {v} is not a model of {}", self.model);
            }
        }
        ensure!(matches!(self.model.as_str(), "mnist" | "cifar"), "model {:?}: expected mnist or cifar", self.model);
        ensure!(matches!(self.preset.as_str(), "paper" | "fast" | "cpu"), "preset {:?}: expected paper, fast or cpu", self.preset);
        ensure!(self.preset != "cpu" || self.model == "cifar", "preset \"cpu\" is a CIFAR preset: model must be cifar");
        for f in &self.flags {
            if let Some(own) = OWN_FLAGS.iter().find(|o| f == *o || f.starts_with(&format!("{o}="))) {
                bail!("flags: {own} is set by the study itself");
            }
        }
        let mut seen = Vec::new();
        for a in &self.axes {
            ensure!(AXES.contains(&a.name.as_str()), "axis {:?}: not one of {}", a.name, AXES.join(", "));
            ensure!(!seen.contains(&&a.name), "axis {:?} appears twice", a.name);
            ensure!(!a.values.is_empty(), "axis {:?} has no values", a.name);
            ensure!(a.values.iter().all(|v| !v.is_empty() && v.len() <= 64), "axis {:?}: values must be 1 to 64 characters", a.name);
            ensure!(!self.flags.iter().any(|f| f == &format!("--{}", a.name)), "--{} is both an axis and a fixed flag", a.name);
            if a.name == "retrain" {
                for v in &a.values {
                    retrain_flags(v)?;
                }
                ensure!(!self.flags.iter().any(|f| f.starts_with("--retrain-")), "axis retrain sets the --retrain-* flags itself");
            }
            seen.push(&a.name);
        }
        ensure!(!(seen.iter().any(|n| *n == "activation") && seen.iter().any(|n| *n == "model")), "axes activation and model both pick the model: use one");
        ensure!(!(seen.iter().any(|n| *n == "retrain") && seen.iter().any(|n| n.starts_with("retrain-"))), "axis retrain sets the --retrain-* flags: vary it alone");
        let settings: usize = self.axes.iter().map(|a| a.values.len()).product();
        ensure!(settings <= 10_000, "{settings} settings: at most 10 000");
        Ok(())
    }

    /// Every setting, the last axis fastest.
    fn settings(&self) -> Vec<Vec<(String, String)>> {
        self.axes.iter().fold(vec![Vec::new()], |acc, axis| {
            acc.into_iter()
                .flat_map(|s| {
                    axis.values.iter().map(move |v| {
                        let mut s = s.clone();
                        s.push((axis.name.clone(), v.clone()));
                        s
                    })
                })
                .collect()
        })
    }

    fn model_id(&self, activation: &str) -> String {
        let family = if self.model == "mnist" { "mlp" } else { "cifar-cnn" };
        format!("{family}-{activation}")
    }
}

/// `i/n`, 1 <= i <= n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected i/n, e.g. 2/8"))?;
        let (index, count): (usize, usize) = (i.trim().parse().map_err(|_| format!("{i:?}: not a number"))?, n.trim().parse().map_err(|_| format!("{n:?}: not a number"))?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("{s}: needs 1 <= i <= n"));
        }
        Ok(Shard { index, count })
    }
}

pub fn run(args: StudyArgs) -> Result<()> {
    let grid = resolve_grid(&args)?;
    ensure!((1..=100).contains(&args.seeds), "--seeds {}: 1 to 100", args.seeds);
    let runs = plan(&grid, &args)?;
    let grid_file = args.out.join("grid.json");
    match read(&grid_file) {
        Ok(bytes) => {
            let stored = Grid::parse(&String::from_utf8_lossy(&bytes), &grid_file.display().to_string())?;
            ensure!(stored == grid, "{}: this study folder holds another grid; use another --out", grid_file.display());
        }
        Err(_) if !grid_file.exists() => write_atomic(&grid_file, serde_json::to_string_pretty(&grid)?.as_bytes())?,
        Err(e) => return Err(e),
    }
    let recorded = Recorded::load(&args.out.join("study.json"))?;
    if !args.merge {
        let mine: Vec<&Run> = runs.iter().enumerate().filter(|(i, _)| args.shard.is_none_or(|s| i % s.count == s.index - 1)).map(|(_, r)| r).collect();
        println!("study: {} settings x {} seeds = {} runs{}; folder {}", runs.len() / args.seeds as usize, args.seeds, runs.len(), args.shard.map(|s| format!(", shard {}/{}: {} runs", s.index, s.count, mine.len())).unwrap_or_default(), args.out.display());
        if args.dry_run {
            for r in &mine {
                if recorded.replaces(r) {
                    println!("{}  (seed {})  recorded in study.json: not run", label(&r.setting), r.seed);
                } else {
                    println!("{}  (seed {})  trainer {}", label(&r.setting), r.seed, r.args.join(" "));
                }
            }
            return Ok(());
        }
        execute(&mine, &recorded)?;
        if let Some(s) = args.shard {
            println!("shard {}/{} done. Gather every shard's {} into one folder (the run folders do not overlap), then: trainer study --merge --out DIR", s.index, s.count, args.out.display());
            return Ok(());
        }
    }
    let study = evaluate(&grid, &runs, &recorded)?;
    write_study(&args.out, &grid, &study)?;
    println!(
        "{} of {} runs judged ({} failed, {} not run{}); wrote {}, study.html, study.json",
        study.done,
        runs.len(),
        study.failed.len(),
        study.missing,
        if study.recorded > 0 { format!("; {} of them as the earlier study.json recorded them", study.recorded) } else { String::new() },
        args.out.join("study.md").display()
    );
    Ok(())
}

fn resolve_grid(args: &StudyArgs) -> Result<Grid> {
    let stored = args.out.join("grid.json");
    let grid = match &args.grid {
        Some(name) => match BUILT_IN.iter().find(|(n, _)| n == name) {
            Some((n, text)) => Grid::parse(text, &format!("built-in grid {n}"))?,
            None => {
                let path = Path::new(name);
                let text = String::from_utf8(read(path)?).with_context(|| format!("{}: not UTF-8", path.display()))?;
                Grid::parse(&text, &path.display().to_string())?
            }
        },
        None if args.merge && stored.is_file() => Grid::parse(&String::from_utf8_lossy(&read(&stored)?), &stored.display().to_string())?,
        None => {
            let name = match args.model.unwrap_or(ModelFamily::Mnist) {
                ModelFamily::Mnist => "mnist",
                ModelFamily::Cifar => "cifar",
                ModelFamily::Resnet50 => bail!("no study grid for resnet50: it is not trained here"),
            };
            let text = BUILT_IN.iter().find(|(n, _)| *n == name).expect("built-in grid").1;
            Grid::parse(text, &format!("built-in grid {name}"))?
        }
    };
    if let Some(m) = args.model {
        let want = match m {
            ModelFamily::Mnist => "mnist",
            ModelFamily::Cifar => "cifar",
            ModelFamily::Resnet50 => bail!("no study grid for resnet50: it is not trained here"),
        };
        ensure!(grid.model == want, "--model {want}, but the grid is for {}", grid.model);
    }
    Ok(grid)
}

/// Every run of the grid, seed-major (a partly run study covers every setting with some seeds),
/// each checked by `reproduce`'s own parser before anything runs.
fn plan(grid: &Grid, args: &StudyArgs) -> Result<Vec<Run>> {
    let settings = grid.settings();
    let mut runs = Vec::new();
    for seed in 1..=args.seeds {
        for (index, setting) in settings.iter().enumerate() {
            let dir = args.out.join("runs").join(slug(setting)).join(format!("seed{seed}"));
            let mut a: Vec<String> = ["reproduce", "--model", &grid.model, "--preset", &grid.preset, "--seed", &seed.to_string(), "--resume", "--quiet"].map(String::from).to_vec();
            a.extend(["--out".into(), dir.display().to_string()]);
            if let Some(d) = &args.data {
                a.extend(["--data".into(), d.display().to_string()]);
            }
            if args.backend != BackendArg::Auto {
                a.extend(["--backend".into(), format!("{:?}", args.backend).to_lowercase()]);
            }
            a.extend(grid.flags.iter().cloned());
            for (name, value) in setting {
                if name == "activation" {
                    a.extend(["--only".into(), grid.model_id(value)]);
                } else if name == "model" {
                    a.extend(["--only".into(), value.clone()]);
                } else if name == "retrain" {
                    a.extend(retrain_flags(value)?);
                } else {
                    a.extend([format!("--{name}"), value.clone()]);
                }
            }
            let parsed = Cli::try_parse_from(std::iter::once("trainer".to_string()).chain(a.iter().cloned()));
            if let Err(e) = parsed {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                bail!("setting {}: trainer {}: {first}", label(setting), a.join(" "));
            }
            let training: Vec<&(String, String)> = setting.iter().filter(|(n, _)| !EXPERIMENT_AXES.contains(&n.as_str())).collect();
            let twin = runs
                .iter()
                .find(|r: &&Run| r.seed == seed && r.setting.iter().filter(|(n, _)| !EXPERIMENT_AXES.contains(&n.as_str())).collect::<Vec<_>>() == training)
                .map(|r| r.dir.clone());
            runs.push(Run { setting: setting.clone(), index, seed, dir, args: a, twin });
        }
    }
    Ok(runs)
}

/// The `reproduce` flags of a `retrain` axis value: `held-out`, or `EPOCHSxSAMPLES` (a fixed
/// budget, e.g. `1x20000`).
fn retrain_flags(value: &str) -> Result<Vec<String>> {
    if value == "held-out" {
        return Ok(vec!["--retrain-stop".into(), "held-out".into()]);
    }
    let parsed = value.split_once('x').and_then(|(e, n)| Some((e.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    let Some((epochs, samples)) = parsed else {
        bail!("axis retrain: {value:?} is not held-out or EPOCHSxSAMPLES (e.g. 1x20000)");
    };
    Ok(vec!["--retrain-stop".into(), "epochs".into(), "--retrain-epochs".into(), epochs.to_string(), "--retrain-samples".into(), samples.to_string()])
}

/// Copies the checkpoints of `twin`'s model folders into `dir`'s where `dir` has none, so that a
/// run differing only in its experiments studies the network `twin` trained. Only a checkpoint
/// that names its training (a training fingerprint) is copied, under the twin's folder lock: its
/// progress and the one set of parts that progress names.
fn adopt_training(twin: &Path, dir: &Path) -> Result<()> {
    for model in model_dirs_with(twin, "checkpoint")? {
        let Some(name) = model.file_name() else { continue };
        let target = dir.join(name).join("checkpoint");
        if target.exists() {
            continue;
        }
        let _lock = crate::files::lock_folder(&model)?;
        let source = model.join("checkpoint");
        let Ok(progress) = crate::checkpoint::Checkpoint::new(&model).load_progress() else { continue };
        if !progress.fingerprint.starts_with("train-v1:") {
            continue;
        }
        let staging = dir.join(name).join("checkpoint.adopting");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let slot = format!(".{}", progress.slot);
        for entry in std::fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))? {
            let from = entry?.path();
            let Some(file) = from.file_name().and_then(|f| f.to_str()) else { continue };
            if from.is_file() && (file == "progress.json" || file.ends_with(&slot)) {
                let to = staging.join(file);
                std::fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
        }
        std::fs::rename(&staging, &target).with_context(|| format!("renaming {} to {}", staging.display(), target.display()))?;
    }
    Ok(())
}

/// A folder name for a setting: `activation-relu__init-burn__epochs-3`.
fn slug(setting: &[(String, String)]) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect::<String>();
    if setting.is_empty() {
        return "default".into();
    }
    setting.iter().map(|(n, v)| format!("{}-{}", clean(n), clean(v))).collect::<Vec<_>>().join("__")
}

fn label(setting: &[(String, String)]) -> String {
    setting.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}

/// Runs each of `runs` that has not finished, one after another, as child processes of this
/// binary; a failed run is noted in its folder (`failed.txt`) and the study goes on.
fn execute(runs: &[&Run], recorded: &Recorded) -> Result<()> {
    let exe = std::env::current_exe().context("locating this trainer binary")?;
    let started = Instant::now();
    for (k, r) in runs.iter().enumerate() {
        let head = format!("[{}/{}] {} seed {}", k + 1, runs.len(), label(&r.setting), r.seed);
        if r.dir.join("report.html").is_file() {
            println!("{head}: done earlier");
            continue;
        }
        if recorded.replaces(r) {
            println!("{head}: done earlier (recorded in study.json; its folder is not here)");
            continue;
        }
        std::fs::create_dir_all(&r.dir).with_context(|| format!("creating {}", r.dir.display()))?;
        if let Some(twin) = r.twin.as_ref().filter(|t| **t != r.dir) {
            adopt_training(twin, &r.dir)?;
        }
        let log_path = r.dir.join("log.txt");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).with_context(|| format!("opening {}", log_path.display()))?;
        let t = Instant::now();
        let status = Command::new(&exe)
            .args(&r.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("starting {}", exe.display()))?;
        let failed = r.dir.join("failed.txt");
        if status.success() {
            let _ = std::fs::remove_file(&failed);
            println!("{head}: done in {:.0} s (study: {:.1} min)", t.elapsed().as_secs_f64(), started.elapsed().as_secs_f64() / 60.0);
        } else {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = text.lines().rev().find(|l| l.starts_with("error:")).unwrap_or("no error line; see log.txt").to_string();
            write_atomic(&failed, format!("{status}\n{why}\n").as_bytes())?;
            println!("{head}: FAILED ({why}); log in {}", log_path.display());
        }
    }
    Ok(())
}

/// One row of the report: a model under one setting (the activation axis picks the model).
#[derive(Debug, Serialize)]
struct Row {
    label: String,
    model: String,
    setting: Vec<(String, String)>,
    seeds: Vec<u64>,
    /// Per seed, per layer.
    runs: Vec<BTreeMap<String, Metrics>>,
    /// Per layer: the mean over seeds, each claim's verdict on it, and the headline's spread.
    layers: BTreeMap<String, LayerSummary>,
}

#[derive(Debug, Serialize)]
struct Study {
    rows: Vec<Row>,
    layers: Vec<String>,
    /// Per layer: the correlation between zero rank and best quantization rank over every run.
    zero_vs_best: BTreeMap<String, (usize, Option<f64>)>,
    done: usize,
    /// Of `done`, the runs taken from the folder's earlier study.json.
    recorded: usize,
    missing: usize,
    failed: Vec<(String, u64, String)>,
}

/// The runs an earlier study.json of the folder judged: per setting and seed, each model's
/// per-layer metrics.
#[derive(Default)]
struct Recorded(Vec<RecordedRow>);

#[derive(Deserialize)]
struct RecordedRow {
    model: String,
    setting: Vec<(String, String)>,
    seeds: Vec<u64>,
    runs: Vec<BTreeMap<String, Metrics>>,
}

impl Recorded {
    fn load(path: &Path) -> Result<Recorded> {
        #[derive(Deserialize)]
        struct Stored {
            rows: Vec<RecordedRow>,
        }
        if !path.exists() {
            return Ok(Recorded::default());
        }
        let bytes = read(path)?;
        let stored: Stored = serde_json::from_slice(&bytes).with_context(|| {
            format!("{}: not a study report this trainer can read; move it away to judge only the run folders", path.display())
        })?;
        for (i, row) in stored.rows.iter().enumerate() {
            let at = format!("{}: row {} ({})", path.display(), i + 1, row.model);
            ensure!(row.seeds.len() == row.runs.len(), "{at} has {} seeds but {} runs", row.seeds.len(), row.runs.len());
            ensure!(row.seeds.iter().enumerate().all(|(k, s)| !row.seeds[..k].contains(s)), "{at} names a seed twice");
            let twice = stored.rows[..i].iter().any(|r| r.model == row.model && r.setting == row.setting);
            ensure!(!twice, "{at} repeats an earlier row's model and setting");
        }
        Ok(Recorded(stored.rows))
    }

    /// Whether `r` is not run because the record holds it and its folder is not there.
    fn replaces(&self, r: &Run) -> bool {
        !r.dir.exists() && !self.of(&r.setting, r.seed).is_empty()
    }

    /// Each model's metrics in the run of `setting` with `seed`.
    fn of(&self, setting: &[(String, String)], seed: u64) -> Vec<(&str, &BTreeMap<String, Metrics>)> {
        self.0
            .iter()
            .filter(|row| row.setting == setting)
            .filter_map(|row| row.seeds.iter().position(|s| *s == seed).map(|i| (row.model.as_str(), &row.runs[i])))
            .collect()
    }
}

fn evaluate(grid: &Grid, runs: &[Run], recorded: &Recorded) -> Result<Study> {
    let settings = grid.settings();
    let mut rows: BTreeMap<(usize, String), Row> = BTreeMap::new();
    let (mut done, mut from_record, mut missing, mut failed) = (0, 0, 0, Vec::new());
    for r in runs {
        let failure = r.dir.join("failed.txt");
        let mut measured: Vec<(String, BTreeMap<String, Metrics>)> = Vec::new();
        for model_dir in model_dirs(&r.dir)? {
            let res = output::read_results(&model_dir.join("results.json"))?;
            measured.push((res.model.clone(), run_metrics(&res)));
        }
        if measured.is_empty() && !failure.is_file() {
            measured = recorded.of(&settings[r.index], r.seed).into_iter().map(|(m, metrics)| (m.to_string(), metrics.clone())).collect();
            from_record += usize::from(!measured.is_empty());
        }
        let found = !measured.is_empty();
        for (model, metrics) in measured {
            let row = rows.entry((r.index, model.clone())).or_insert_with(|| Row {
                label: row_label(&model, &settings[r.index]),
                model,
                setting: settings[r.index].clone(),
                seeds: Vec::new(),
                runs: Vec::new(),
                layers: BTreeMap::new(),
            });
            row.seeds.push(r.seed);
            row.runs.push(metrics);
        }
        if found {
            done += 1;
        } else if failure.is_file() {
            let why = std::fs::read_to_string(&failure).unwrap_or_default().lines().nth(1).unwrap_or_default().to_string();
            failed.push((label(&r.setting), r.seed, why));
        } else {
            missing += 1;
        }
    }
    let mut layers: Vec<String> = Vec::new();
    let mut zero_best: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for row in rows.values_mut() {
        let names: Vec<String> = row.runs.iter().flat_map(|m| m.keys().cloned()).collect();
        for name in names {
            if !layers.contains(&name) {
                layers.push(name.clone());
            }
            if row.layers.contains_key(&name) {
                continue;
            }
            let per_seed: Vec<&Metrics> = row.runs.iter().filter_map(|m| m.get(&name)).collect();
            for m in &per_seed {
                if let (Some(z), Some(b)) = (m.get(Metric::ZeroRank), m.get(Metric::BestRank)) {
                    zero_best.entry(name.clone()).or_default().push((z, b));
                }
            }
            row.layers.insert(name, LayerSummary::judge(&per_seed));
        }
    }
    let zero_vs_best = layers.iter().map(|l| {
        let pairs = zero_best.get(l).cloned().unwrap_or_default();
        (l.clone(), (pairs.len(), correlation(&pairs)))
    }).collect();
    Ok(Study { rows: rows.into_values().collect(), layers, zero_vs_best, done, recorded: from_record, missing, failed })
}

/// The model folders of a finished run (those holding a results.json).
fn model_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    model_dirs_with(dir, "results.json")
}

/// The folders in `dir` that hold `entry`.
fn model_dirs_with(dir: &Path, entry: &str) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join(entry).exists()).collect();
    out.sort();
    Ok(out)
}

fn row_label(model: &str, setting: &[(String, String)]) -> String {
    let rest: Vec<String> = setting.iter().filter(|(n, _)| n != "activation" && n != "model").map(|(n, v)| format!("{n} {v}")).collect();
    if rest.is_empty() { model.to_string() } else { format!("{model}, {}", rest.join(", ")) }
}


fn write_study(out: &Path, grid: &Grid, s: &Study) -> Result<()> {
    write_atomic(&out.join("study.json"), serde_json::to_string_pretty(s)?.as_bytes())?;
    write_atomic(&out.join("study.md"), markdown(grid, s).as_bytes())?;
    let mut plots = Vec::new();
    for c in Claim::ALL {
        let svg = render_svg(&plot(s, c), 900, 420).with_context(|| format!("drawing the plot of {}", c.title()))?;
        write_atomic(&out.join("plots").join(format!("{}.svg", serde_json::to_value(c)?.as_str().unwrap_or("claim"))), svg.as_bytes())?;
        plots.push(svg);
    }
    write_atomic(&out.join("study.html"), html(grid, s, &plots).as_bytes())?;
    Ok(())
}

fn summary_line(grid: &Grid, s: &Study) -> String {
    let settings: usize = grid.axes.iter().map(|a| a.values.len()).product();
    format!(
        "Grid: {} ({settings} settings; preset `{}`{}). Runs judged: {}{}; failed: {}; not run yet: {}.",
        grid.description,
        grid.preset,
        if grid.flags.is_empty() { String::new() } else { format!(", flags `{}`", grid.flags.join(" ")) },
        s.done,
        if s.recorded > 0 { format!(" ({} of them as an earlier study.json of this folder recorded them, their run folders not kept)", s.recorded) } else { String::new() },
        s.failed.len(),
        s.missing
    )
}

fn markdown(grid: &Grid, s: &Study) -> String {
    let mut md = String::from("# The paper's claims across settings and seeds\n\n");
    let _ = writeln!(md, "{}\n", summary_line(grid, s));
    let _ = writeln!(md, "Axes: {}.\n", grid.axes.iter().map(|a| format!("{} {{{}}}", a.name, a.values.join(", "))).collect::<Vec<_>>().join(" x "));
    md += "## Criteria\n\n";
    for c in Claim::ALL {
        let _ = writeln!(md, "- **{}**: {}.", c.title(), c.criterion());
    }
    let _ = writeln!(md, "\n{}\n", HEADLINE_NOTE);
    for layer in &s.layers {
        let _ = writeln!(md, "## Verdicts: {layer}\n");
        md += "| # | setting | seeds |";
        for c in Claim::ALL {
            let _ = write!(md, " {} |", c.title());
        }
        md += "\n|---|---|---|";
        md += &"---|".repeat(Claim::ALL.len());
        md += "\n";
        for (i, row) in s.rows.iter().enumerate() {
            let Some(l) = row.layers.get(layer) else { continue };
            let _ = write!(md, "| {} | {} | {} |", i + 1, row.label, row.seeds.len());
            for c in Claim::ALL {
                let (v, text) = l.cell(c);
                let _ = write!(md, " {} {} {} |", v.mark(), v.word(), text);
            }
            md += "\n";
        }
        md += "\n";
    }
    md += "## Zero rank against the best quantization rank\n\nPearson's correlation, over every judged run, between a layer's zero pre-activation rank and the rank of its best two-value quantization (the middle of the ranks within 0.2 points of the best accuracy: a single best rank swings with noise). Near 1: the best threshold follows zero; near 0: it is not tied to it.\n\n| layer | runs | correlation |\n|---|---|---|\n";
    for (layer, (n, r)) in &s.zero_vs_best {
        let _ = writeln!(md, "| {layer} | {n} | {} |", r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "undefined".into()));
    }
    md += "\n## Numbers per setting (means over seeds)\n\n| # | setting | layer | test acc. | \\|avg sign\\| >= 0.8 | < -0.8 / >= 0.8 | high category | q(r=50) | q(r=50) after the activation | both values on one side of 0 (r=50) | worst drop r=30..80 | best ranks (within 0.2 pts) | window low / middle / high | zero rank | classes >= 90% in one category |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let pct = |m: &Metrics, k| m.get(k).map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into());
    let acc = |m: &Metrics, k| m.get(k).map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    let rank = |m: &Metrics, k| m.get(k).map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    for (i, row) in s.rows.iter().enumerate() {
        for (layer, l) in &row.layers {
            let m = &l.mean;
            let _ = writeln!(
                md,
                "| {} | {} | {layer} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} |",
                i + 1,
                row.label,
                acc(m, Metric::TestAccuracy),
                pct(m, Metric::Outer),
                pct(m, Metric::OuterHigh),
                pct(m, Metric::OuterLow),
                pct(m, Metric::HighShare),
                acc(m, Metric::Q50),
                acc(m, Metric::Q50Post),
                pct(m, Metric::SameSide50),
                m.get(Metric::QWorstDrop).map(|v| format!("{:.1} pts", v * 100.0)).unwrap_or_else(|| "-".into()),
                match (m.get(Metric::BestRankLow), m.get(Metric::BestRankHigh)) {
                    (Some(lo), Some(hi)) => format!("{lo:.0}-{hi:.0}"),
                    _ => "-".into(),
                },
                acc(m, Metric::WindowLowEnd),
                acc(m, Metric::WindowMiddle),
                acc(m, Metric::WindowHighEnd),
                match m.get(Metric::ZeroInBestRange) {
                    Some(share) => format!("{} ({:.0}% of seeds within the best ranks)", rank(m, Metric::ZeroRank), share * 100.0),
                    None => rank(m, Metric::ZeroRank),
                },
                pct(m, Metric::ClearClasses),
            );
        }
    }
    if !s.failed.is_empty() {
        md += "\n## Runs that failed\n\n| setting | seed | error |\n|---|---|---|\n";
        for (setting, seed, why) in &s.failed {
            let _ = writeln!(md, "| {setting} | {seed} | {} |", why.replace('|', "\\|"));
        }
    }
    md
}

/// Each claim's headline number (mean over seeds) against the settings' numbers, one curve per
/// layer; the dashed line is the threshold at which the claim holds.
fn plot(s: &Study, c: Claim) -> Figure {
    let (threshold, meaning) = match c {
        Claim::ConstantSigns => (0.7, "holds at or above"),
        Claim::EqualCategories => (0.5, "equal sizes"),
        Claim::Quantization => (3.0, "holds at or below (at r = 50)"),
        Claim::UShapedWindow => (0.5, "holds at or above"),
        Claim::ZeroRankFar => (50.0, "the claim: far from it"),
        Claim::ClassesWhole => (0.6, "holds at or above"),
    };
    // Drops and depths in points, so that they share the plot with their threshold.
    let scale = if matches!(c, Claim::Quantization | Claim::UShapedWindow) { 100.0 } else { 1.0 };
    let curves = s
        .layers
        .iter()
        .map(|layer| {
            let (xs, ys) = s
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| ((i + 1) as f64, row.layers.get(layer).and_then(|l| l.mean.get(c.headline())).map_or(f64::NAN, |v| v * scale)))
                .unzip();
            Curve { label: layer.clone(), xs, ys, reference: None, marker: None }
        })
        .chain(std::iter::once(Curve {
            label: format!("{threshold}: {meaning}"),
            xs: vec![1.0, s.rows.len().max(1) as f64],
            ys: vec![threshold; 2],
            reference: None,
            marker: None,
        }))
        .collect();
    Figure::Curves(CurveFigure {
        title: format!("{}: {}", c.title(), c.headline().label()),
        x_label: "setting (numbered as in the tables)".into(),
        y_label: c.headline().label().into(),
        curves,
        marker_label: None,
    })
}

fn html(grid: &Grid, s: &Study, plots: &[String]) -> String {
    let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>hidden-neurons: the paper's claims across settings and seeds</title><style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;line-height:1.4}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:0.3em 0.5em;text-align:left}td.v{color:#fff;font-weight:600}svg{max-width:100%;height:auto}</style></head><body><h1>The paper's claims across settings and seeds</h1>",
    );
    let _ = write!(h, "<p>{}</p><h2>Criteria</h2><ul>", esc(&summary_line(grid, s)));
    for c in Claim::ALL {
        let _ = write!(h, "<li><b>{}</b>: {}.</li>", esc(c.title()), esc(c.criterion()));
    }
    let _ = write!(h, "</ul><p>{}</p>", esc(HEADLINE_NOTE));
    for layer in &s.layers {
        let _ = write!(h, "<h2>Verdicts: {}</h2><table><tr><th>#</th><th>setting</th><th>seeds</th>", esc(layer));
        for c in Claim::ALL {
            let _ = write!(h, "<th>{}</th>", esc(c.title()));
        }
        h += "</tr>";
        for (i, row) in s.rows.iter().enumerate() {
            let Some(l) = row.layers.get(layer) else { continue };
            let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td>", i + 1, esc(&row.label), row.seeds.len());
            for c in Claim::ALL {
                let (v, text) = l.cell(c);
                let _ = write!(h, "<td class=\"v\" style=\"background:{}\" title=\"{}\">{} {}</td>", v.colour(), v.word(), v.word(), esc(&text));
            }
            h += "</tr>";
        }
        h += "</table>";
    }
    h += "<h2>Each criterion against the settings</h2>";
    for p in plots {
        let _ = write!(h, "<figure>{p}</figure>");
    }
    // The tables of the markdown report, as preformatted text (one source for the numbers).
    let md = markdown(grid, s);
    let tail = md.split_once("## Zero rank").map(|(_, t)| format!("## Zero rank{t}")).unwrap_or_default();
    let _ = write!(h, "<h2>Numbers</h2><pre>{}</pre></body></html>", esc(&tail));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study_args(extra: &[&str]) -> StudyArgs {
        let argv = ["trainer", "study"].iter().chain(extra).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Study(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn built_in_grids_parse_and_every_run_passes_reproduce_s_parser() {
        for (name, text) in BUILT_IN {
            let g = Grid::parse(text, name).unwrap();
            let args = study_args(&["--grid", name]);
            let runs = plan(&g, &args).unwrap();
            assert_eq!(runs.len(), g.settings().len() * 3, "{name}");
        }
    }

    #[test]
    fn the_mnist_grid_covers_what_the_issue_asks() {
        let g = Grid::parse(BUILT_IN[0].1, "mnist").unwrap();
        let axis = |n: &str| g.axes.iter().find(|a| a.name == n).map(|a| a.values.clone()).unwrap_or_default();
        assert_eq!(axis("activation"), ["relu", "sigmoid"]);
        assert_eq!(axis("init"), ["burn", "keras"]);
        assert_eq!(axis("optimizer"), ["adam", "sgd"]);
        assert_eq!(axis("epochs"), ["3", "20"]);
    }

    #[test]
    fn bad_grids_and_shards_are_refused() {
        let base = r#"{"description":"d","model":"mnist","preset":"fast","axes":[AXES]}"#;
        let bad = |axes: &str| Grid::parse(&base.replace("AXES", axes), "g.json").unwrap_err().to_string();
        assert!(bad(r#"{"name":"colour","values":["red"]}"#).contains("g.json"));
        let e = Grid::parse(r#"{"description":"d","model":"mnist","preset":"fast","flags":["--seed","3"],"axes":[]}"#, "g.json").unwrap_err();
        assert!(format!("{e:#}").contains("--seed is set by the study"), "{e:#}");
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        // A value reproduce would refuse is caught before any run starts.
        let g = Grid::parse(&base.replace("AXES", r#"{"name":"optimizer","values":["adam","lbfgs"]}"#), "g.json").unwrap();
        let args = study_args(&[]);
        let e = plan(&g, &args).unwrap_err().to_string();
        assert!(e.contains("optimizer=lbfgs"), "{e}");
    }
}
