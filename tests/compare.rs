//! `trainer compare`: both sides of a workload, the ratio, and clear errors. PyTorch's side is
//! played by small shell scripts standing in for Python, so these tests never need torch.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny MLP workload (two steps of 16), fast on any CPU.
const WORKLOADS: &str = r#"{
  "adam": { "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-5 },
  "warmup_steps": 1,
  "workloads": [ { "name": "tiny", "model": "mlp-relu", "hidden": [8], "batch": 16, "steps": 2 } ]
}"#;

/// A stand-in for `python3` that prints `body` and exits with `code`, whatever its arguments.
fn fake_python(dir: &Path, body: &str, code: i32) -> PathBuf {
    let path = dir.join("python");
    std::fs::write(&path, format!("#!/bin/sh\necho '{body}'\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn compare(dir: &Path, workloads: &str, extra: &[&str]) -> Output {
    let file = dir.join("workloads.json");
    std::fs::write(&file, workloads).unwrap();
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["compare", "--backend", "cpu", "--workloads", file.to_str().unwrap()])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("trainer runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `--rounds`: ours and PyTorch's in turn, each side's best compared, every round kept.
#[test]
fn rounds_compare_each_sides_best() {
    let dir = scratch("rounds");
    // PyTorch's stand-in answers 1000, then 3000, then 2000 samples/s.
    let python = dir.join("python");
    let count = dir.join("calls");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\ncase $n in 1) v=1000;; 2) v=3000;; *) v=2000;; esac\necho \"{{\\\"name\\\": \\\"tiny\\\", \\\"samples_per_s\\\": $v, \\\"torch\\\": \\\"9.9\\\", \\\"device\\\": \\\"cpu\\\", \\\"threads\\\": 2, \\\"compiled\\\": false}}\"\n",
            c = count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let json = dir.join("out.json");
    let o = compare(&dir, WORKLOADS, &["--python", python.to_str().unwrap(), "--json", json.to_str().unwrap(), "--rounds", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let row = &rows[0];
    assert_eq!(row["pytorch_rounds"], serde_json::json!([1000.0, 3000.0, 2000.0]), "{row}");
    assert_eq!(row["pytorch_samples_per_s"].as_f64(), Some(3000.0));
    let ours: Vec<f64> = row["ours_rounds"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(ours.len(), 3);
    let best = ours.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(row["ours_samples_per_s"].as_f64(), Some(best));
    assert!((row["ratio"].as_f64().unwrap() - best / 3000.0).abs() < 1e-9, "{row}");
    assert!(text(&o).contains("best of 3 rounds") && text(&o).contains("PyTorch 1000-3000"), "{}", text(&o));
    let o = compare(&dir, WORKLOADS, &["--rounds", "0"]);
    assert!(!o.status.success() && text(&o).contains("--rounds"), "{}", text(&o));
}

#[test]
fn compare_prints_both_sides_and_their_ratio() {
    let dir = scratch("ratio");
    let python = fake_python(&dir, r#"{"name": "tiny", "samples_per_s": 1000.0, "torch": "9.9", "device": "cpu", "threads": 2, "compiled": false}"#, 0);
    let json = dir.join("out.json");
    let o = compare(&dir, WORKLOADS, &["--python", python.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("tiny") && out.contains("PyTorch") && out.contains("torch 9.9 cpu eager, 2 threads"), "{out}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let row = &rows[0];
    let ours = row["ours_samples_per_s"].as_f64().unwrap();
    assert!(ours > 0.0 && ours.is_finite());
    assert_eq!(row["pytorch_samples_per_s"].as_f64(), Some(1000.0));
    let ratio = row["ratio"].as_f64().unwrap();
    assert!((ratio - ours / 1000.0).abs() < 1e-9 * ratio.max(1.0), "ratio {ratio} for {ours} vs 1000");
    assert!(out.contains(&format!("ratio {ratio:.2}x")), "{out}");
}

#[test]
fn compare_says_why_there_is_no_pytorch_number() {
    let dir = scratch("missing");
    // torch_bench.py exits with 3 when torch cannot be imported.
    let python = fake_python(&dir, "", 3);
    let o = compare(&dir, WORKLOADS, &["--python", python.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("PyTorch is not installed"), "{}", text(&o));
    // A Python that answers for another workload is not believed.
    let python = fake_python(&dir, r#"{"name": "other", "samples_per_s": 5.0, "torch": "9.9", "device": "cpu", "threads": 1, "compiled": false}"#, 0);
    let o = compare(&dir, WORKLOADS, &["--python", python.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("instead of 'tiny'"), "{}", text(&o));
    // No Python at all.
    let o = compare(&dir, WORKLOADS, &["--python", dir.join("no-such-python").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("could not run"), "{}", text(&o));
}

#[test]
fn a_bad_workloads_file_or_name_is_a_clear_error() {
    let dir = scratch("bad");
    for (body, expect) in [
        ("{ not json", "not a workloads file"),
        (r#"{"adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-5}, "warmup_steps": 1, "workloads": []}"#, "lists no workloads"),
        (&WORKLOADS.replace("mlp-relu", "transformer"), "unknown model 'transformer'"),
        (&WORKLOADS.replace("\"batch\": 16", "\"batch\": 0"), "--batch"),
    ] {
        let o = compare(&dir, body, &["--ours-only"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains(expect) && !out.contains("panicked"), "expected {expect:?}: {out}");
    }
    let o = compare(&dir, WORKLOADS, &["--ours-only", "--only", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--only nope: no such workload") && text(&o).contains("tiny"), "{}", text(&o));
}

#[test]
fn the_committed_workloads_name_the_issue_s_models() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/workloads.json");
    let w: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let names: Vec<&str> = w["workloads"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mlp", "cnn-fast", "cnn-paper", "resnet50"]);
    // The trainer reads it too (every model known, every setting in range).
    let dir = scratch("committed");
    let o = compare(&dir, &std::fs::read_to_string(&path).unwrap(), &["--ours-only", "--only", "no-such"]);
    assert!(text(&o).contains("mlp, cnn-fast, cnn-paper, resnet50"), "{}", text(&o));
}

#[test]
fn resnet50_trains_on_small_images_and_bad_sides_are_refused() {
    let dir = scratch("resnet");
    let small = r#"{ "adam": { "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-5 }, "warmup_steps": 1,
      "workloads": [ { "name": "r", "model": "resnet50", "side": 32, "batch": 2, "steps": 1 } ] }"#;
    let json = dir.join("out.json");
    let o = compare(&dir, small, &["--ours-only", "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(rows[0]["ours_samples_per_s"].as_f64().is_some_and(|v| v > 0.0 && v.is_finite()));
    let o = compare(&dir, &small.replace("\"side\": 32", "\"side\": 8"), &["--ours-only"]);
    assert!(!o.status.success() && text(&o).contains("--side: 8 is out of range"), "{}", text(&o));
}
