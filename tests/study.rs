//! `trainer study` end to end on a tiny grid: shards and merge, skipping finished runs, a failed
//! run reported and not fatal, and verdicts that follow from the runs' own results.json.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hidden_neurons::claims::{Claim, Metrics, Verdict, run_metrics};
use hidden_neurons::results::Results;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-study-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two activations x two optimizers, tiny MLPs on 600 MNIST images: seconds per run.
const GRID: &str = r#"{
  "description": "tiny",
  "model": "mnist",
  "preset": "fast",
  "flags": ["--train-samples", "600", "--test-samples", "300", "--tracked", "60", "--every", "5",
            "--retrain-samples", "300", "--hidden", "16,16", "--epochs", "1"],
  "axes": [
    { "name": "activation", "values": ["relu", "sigmoid"] },
    { "name": "optimizer", "values": ["adam", "sgd"] }
  ]
}"#;

fn study(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(["study", "--backend", "cpu"]).args(args).env("RUST_BACKTRACE", "0").output().expect("trainer runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: Output) -> String {
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t
}

fn results_of(run: &Path) -> Vec<Results> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(run).unwrap() {
        let p = e.unwrap().path().join("results.json");
        if p.is_file() {
            out.push(Results::from_json(&std::fs::read_to_string(p).unwrap()).unwrap());
        }
    }
    out
}

#[test]
fn shards_merge_into_verdicts_that_follow_from_the_runs() {
    let dir = scratch("shards");
    let grid = dir.join("grid.json");
    std::fs::write(&grid, GRID).unwrap();
    let out = dir.join("study");
    let (g, o) = (grid.to_str().unwrap(), out.to_str().unwrap());
    // Two machines' shares of 4 settings x 2 seeds, into one folder.
    let first = ok(study(&["--grid", g, "--seeds", "2", "--out", o, "--shard", "1/2"]));
    assert!(first.contains("shard 1/2: 4 runs"), "{first}");
    assert!(!out.join("study.md").exists(), "a shard judges nothing");
    ok(study(&["--grid", g, "--seeds", "2", "--out", o, "--shard", "2/2"]));
    let merged = ok(study(&["--merge", "--seeds", "2", "--out", o]));
    assert!(merged.contains("8 of 8 runs judged (0 failed, 0 not run)"), "{merged}");

    // Running again runs nothing.
    let again = ok(study(&["--grid", g, "--seeds", "2", "--out", o]));
    assert_eq!(again.matches("done earlier").count(), 8, "{again}");

    // The report's numbers are the runs' own: recompute one row's mean and verdicts by hand.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let row = rows.iter().find(|r| r["label"] == "mlp-sigmoid, optimizer sgd").expect("a row per model and setting");
    let per_seed: Vec<_> = (1..=2)
        .map(|s| {
            let r = results_of(&out.join(format!("runs/activation-sigmoid__optimizer-sgd/seed{s}")));
            assert_eq!(r.len(), 1);
            run_metrics(&r[0])
        })
        .collect();
    for layer in ["dense1", "dense2"] {
        let mean = Metrics::mean(&per_seed.iter().map(|m| &m[layer]).collect::<Vec<_>>());
        let got: Metrics = serde_json::from_value(row["layers"][layer]["mean"].clone()).unwrap();
        assert_eq!(got.0.keys().collect::<Vec<_>>(), mean.0.keys().collect::<Vec<_>>(), "{layer}: the metrics measured");
        for (k, v) in &mean.0 {
            assert!((got.0[k] - v).abs() <= 1e-12 * v.abs().max(1.0), "{layer}: {k:?} {} != {v}", got.0[k]);
        }
        for c in Claim::ALL {
            let key = serde_json::to_value(c).unwrap();
            let v: Verdict = serde_json::from_value(row["layers"][layer]["verdicts"][key.as_str().unwrap()].clone()).unwrap();
            assert_eq!(v, c.verdict(&mean), "{layer}: {c:?}");
        }
    }
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    for want in ["## Verdicts: dense1", "## Verdicts: dense2", "## Criteria", "## Zero rank against the best quantization rank", "mlp-relu, optimizer adam"] {
        assert!(md.contains(want), "study.md lacks {want:?}");
    }
    let html = std::fs::read_to_string(out.join("study.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), Claim::ALL.len(), "a plot per claim");
    for c in ["constant_signs", "quantization", "zero_rank_far"] {
        assert!(out.join(format!("plots/{c}.svg")).is_file());
    }
}

/// A retraining-budget axis: the held-out rule and two fixed budgets, on one trained network.
const RETRAIN_GRID: &str = r#"{
  "description": "tiny budgets",
  "model": "mnist",
  "preset": "fast",
  "flags": ["--train-samples", "600", "--test-samples", "300", "--tracked", "60", "--every", "5", "--hidden", "16,16", "--epochs", "1"],
  "axes": [
    { "name": "activation", "values": ["relu"] },
    { "name": "retrain", "values": ["held-out", "1x300", "3x300"] }
  ]
}"#;

#[test]
fn runs_that_differ_only_in_their_retraining_study_one_trained_network() {
    use hidden_neurons::experiments::RetrainStop;
    let dir = scratch("retrain");
    let grid = dir.join("grid.json");
    std::fs::write(&grid, RETRAIN_GRID).unwrap();
    let out = dir.join("study");
    ok(study(&["--grid", grid.to_str().unwrap(), "--seeds", "1", "--out", out.to_str().unwrap()]));
    let run = |v: &str| {
        let r = results_of(&out.join(format!("runs/activation-relu__retrain-{v}/seed1")));
        assert_eq!(r.len(), 1, "{v}");
        r.into_iter().next().unwrap()
    };
    let (held, one, three) = (run("held-out"), run("1x300"), run("3x300"));
    let exp = |r: &Results| r.spec.as_ref().unwrap().experiments.clone();
    assert_eq!(exp(&held).retrain_stop, RetrainStop::HELD_OUT);
    assert_eq!((exp(&one).retrain_stop, exp(&one).retrain_epochs, exp(&one).retrain_samples), (RetrainStop::Epochs, 1, 300));
    assert_eq!((exp(&three).retrain_stop, exp(&three).retrain_epochs), (RetrainStop::Epochs, 3));
    for fixed in [&one, &three] {
        // Trained once: the fixed budgets study the held-out run's network.
        assert_eq!((fixed.test_accuracy, fixed.train_seconds), (held.test_accuracy, held.train_seconds));
        assert_eq!(fixed.layer_rotation, held.layer_rotation);
        for (name, l) in &held.layers {
            assert_eq!(fixed.layers[name].avg_sign_histogram, l.avg_sign_histogram, "{name}");
            assert_eq!(fixed.layers[name].quantization, l.quantization, "{name}");
            assert!(fixed.layers[name].sliding_window.iter().all(|c| c.retrain_epochs.is_none()));
        }
    }
    assert!(held.layers.values().all(|l| l.sliding_window.iter().all(|c| c.retrain_epochs.is_some())));
    assert_ne!(one.layers["dense1-relu"].sliding_window, three.layers["dense1-relu"].sliding_window, "the budgets retrain differently");
    let log = std::fs::read_to_string(out.join("runs/activation-relu__retrain-3x300/seed1/log.txt")).unwrap();
    assert!(log.contains("resuming after epoch 1"), "{log}");
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    assert!(md.contains("mlp-relu, retrain 1x300"), "a row per budget");
}

#[test]
fn a_failed_run_is_reported_and_the_study_goes_on() {
    let dir = scratch("failed");
    // A width whose memory no machine has: reproduce refuses it after the study started it.
    let grid = GRID.replace(r#""--hidden", "16,16", "#, "").replace(
        r#"{ "name": "optimizer", "values": ["adam", "sgd"] }"#,
        r#"{ "name": "hidden", "values": ["16,16", "65536,65536,65536,65536,65536,65536,65536,65536"] }"#,
    );
    let file = dir.join("grid.json");
    std::fs::write(&file, grid).unwrap();
    let out = dir.join("study");
    let o = study(&["--grid", file.to_str().unwrap(), "--seeds", "1", "--out", out.to_str().unwrap()]);
    let t = ok(o);
    assert_eq!(t.matches("FAILED").count(), 2, "{t}");
    assert!(t.contains("2 of 4 runs judged (2 failed, 0 not run)"), "{t}");
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    assert!(md.contains("## Runs that failed") && md.contains("memory"), "{md}");
}

#[test]
fn bad_grids_are_refused_before_anything_runs() {
    let dir = scratch("bad");
    let out = dir.join("study");
    let o = out.to_str().unwrap();
    let file = dir.join("grid.json");
    // A value reproduce would refuse.
    std::fs::write(&file, GRID.replace(r#"["adam", "sgd"]"#, r#"["adam", "lbfgs"]"#)).unwrap();
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o]));
    assert!(e.contains("error:") && e.contains("optimizer=lbfgs"), "{e}");
    assert!(!out.join("runs").exists(), "nothing ran");
    // A model of another family.
    std::fs::write(&file, GRID.replace(r#"{ "name": "activation", "values": ["relu", "sigmoid"] }"#, r#"{ "name": "model", "values": ["mlp-relu", "cifar-resnet"] }"#)).unwrap();
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o]));
    assert!(e.contains("error:") && e.contains("axis model: cifar-resnet is not a model of mnist"), "{e}");
    // A retraining budget that is not one, and one beside a fixed --retrain-samples.
    std::fs::write(&file, RETRAIN_GRID.replace("3x300", "3 epochs")).unwrap();
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o]));
    assert!(e.contains("error:") && e.contains("\"3 epochs\" is not held-out or EPOCHSxSAMPLES"), "{e}");
    std::fs::write(&file, RETRAIN_GRID.replace(r#""--epochs", "1""#, r#""--epochs", "1", "--retrain-samples", "50""#)).unwrap();
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o]));
    assert!(e.contains("error:") && e.contains("axis retrain sets the --retrain-* flags itself"), "{e}");
    assert!(!out.join("runs").exists(), "nothing ran");
    // Not JSON.
    std::fs::write(&file, "{").unwrap();
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o]));
    assert!(e.contains("error:") && e.contains("grid.json") && e.contains("not a study grid"), "{e}");
    // Another grid into a folder that holds one.
    std::fs::write(&file, GRID).unwrap();
    ok(study(&["--grid", file.to_str().unwrap(), "--out", o, "--dry-run"]));
    let e = text(&study(&["--grid", "mnist", "--out", o, "--dry-run"]));
    assert!(e.contains("holds another grid"), "{e}");
    let e = text(&study(&["--grid", file.to_str().unwrap(), "--out", o, "--shard", "3/2"]));
    assert!(e.contains("error") && e.contains("3/2"), "{e}");
}

/// A study carried from machine to machine in its committed report (study.json, grid.json),
/// without the run folders: the runs it recorded are judged as recorded and not run again, and
/// the report equals the one of a folder that kept every run.
#[test]
fn a_study_carried_in_its_report_keeps_the_runs_it_recorded() {
    let dir = scratch("carried");
    let grid = dir.join("grid.json");
    std::fs::write(&grid, GRID.replace(r#"["adam", "sgd"]"#, r#"["sgd"]"#)).unwrap();
    let g = grid.to_str().unwrap();
    let kept = dir.join("kept");
    ok(study(&["--grid", g, "--seeds", "1", "--out", kept.to_str().unwrap()]));

    let carried = dir.join("carried");
    std::fs::create_dir_all(&carried).unwrap();
    for f in ["grid.json", "study.json"] {
        std::fs::copy(kept.join(f), carried.join(f)).unwrap();
    }
    let t = ok(study(&["--grid", g, "--seeds", "2", "--out", carried.to_str().unwrap()]));
    assert_eq!(t.matches("done earlier (recorded in study.json").count(), 2, "{t}");
    assert!(t.contains("4 of 4 runs judged (0 failed, 0 not run; 2 of them as the earlier study.json recorded them)"), "{t}");
    assert!(!carried.join("runs/activation-relu__optimizer-sgd/seed1").exists(), "a recorded run is not run again");
    let md = std::fs::read_to_string(carried.join("study.md")).unwrap();
    assert!(md.contains("2 of them as an earlier study.json of this folder recorded them"), "{md}");

    // The folder that kept its runs, taken to two seeds, judges the same (training is seeded).
    ok(study(&["--grid", g, "--seeds", "2", "--out", kept.to_str().unwrap()]));
    let rows = |d: &Path| {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("study.json")).unwrap()).unwrap();
        v["rows"].clone()
    };
    same(&rows(&carried), &rows(&kept), "rows");
    // Merging again keeps the seed-1 runs from the report it wrote itself.
    let again = ok(study(&["--merge", "--seeds", "2", "--out", carried.to_str().unwrap()]));
    assert!(again.contains("4 of 4 runs judged"), "{again}");
    same(&rows(&carried), &rows(&kept), "rows");

    // A report that is not one is named, not skipped; nor is a run recorded twice.
    let report = std::fs::read_to_string(carried.join("study.json")).unwrap();
    std::fs::write(carried.join("study.json"), "{\"rows\": 3}").unwrap();
    let e = text(&study(&["--merge", "--seeds", "2", "--out", carried.to_str().unwrap()]));
    assert!(e.contains("error:") && e.contains("study.json") && e.contains("not a study report"), "{e}");
    let mut twice: serde_json::Value = serde_json::from_str(&report).unwrap();
    let row = twice["rows"][0].clone();
    twice["rows"].as_array_mut().unwrap().push(row);
    std::fs::write(carried.join("study.json"), twice.to_string()).unwrap();
    let e = text(&study(&["--merge", "--seeds", "2", "--out", carried.to_str().unwrap()]));
    assert!(e.contains("error:") && e.contains("row 3") && e.contains("repeats an earlier row"), "{e}");
}

/// Equal JSON but for the last place of a number: serde_json's default parser may read a
/// written f64 back one unit in the last place off.
fn same(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{at}: {x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                same(u, v, &format!("{at}/{i}"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys");
            for (k, u) in x {
                same(u, &y[k], &format!("{at}/{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}
