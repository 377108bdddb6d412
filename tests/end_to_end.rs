//! The trainer binary end to end on a small slice of the repo's MNIST: outputs, schema, and a
//! run interrupted and resumed giving the same results as an uninterrupted one.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hidden_neurons::figures::NamedFigure;
use hidden_neurons::model::Init;
use hidden_neurons::results::Results;
use hidden_neurons::run::Network;
use hidden_neurons::train::Optimizer;

#[path = "common/mod.rs"]
mod common;
use common::write_fake_cifar;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn trainer<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().expect("trainer runs")
}

/// Stdout of a run that must succeed.
fn succeeded(o: Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "trainer failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    stdout
}

/// Stderr of a run that must fail, without a panic.
fn failed(o: Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "trainer should have failed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A small but complete configuration: 2 epochs on 3000 samples, 64-64 MLP.
fn reproduce(out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "reproduce", "--preset", "fast", "--backend", "cpu", "--only", "mlp-relu", "--epochs", "2",
        "--train-samples", "3000", "--tracked", "200", "--hidden", "64,64", "--every", "5",
        "--retrain-samples", "2000", "--retrain-epochs", "1", "--quiet", "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(extra);
    succeeded(trainer(&args))
}

fn results(out: &Path) -> Results {
    let text = std::fs::read_to_string(out.join("mlp-relu/results.json")).unwrap();
    Results::from_json(&text).unwrap()
}

#[test]
fn small_run_writes_every_output_and_resumes_exactly() {
    let full = out_dir("full");
    let stdout = reproduce(&full, &[]);
    assert!(stdout.contains("backend: --backend cpu"), "{stdout}");
    let r = results(&full);

    // results.json: the schema's required keys, through serde_json::Value as a user would read it.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(full.join("mlp-relu/results.json")).unwrap()).unwrap();
    for key in ["model", "dataset", "preset", "seed", "test_accuracy", "recording", "layers"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in ["mode", "every_batches", "recordings", "tracked_samples"] {
        assert!(v["recording"].get(key).is_some(), "missing recording.{key}");
    }
    assert_eq!(r.model, "mlp-relu");
    assert_eq!(r.preset, "fast");
    assert!(r.test_accuracy > 0.6, "2 epochs on 3000 samples, far above chance (0.1): {}", r.test_accuracy);
    // 2 epochs x 24 batches of 128, a recording every 5 batches.
    assert_eq!(r.recording.as_ref().unwrap().recordings, 10);
    assert_eq!(r.recording.as_ref().unwrap().tracked_samples, 200);
    let names: Vec<&String> = r.layers.keys().collect();
    assert_eq!(names, ["dense1-relu", "dense2-relu"]);
    // Layer rotation: every weighted layer, every epoch, a cosine distance that training moved.
    let rotated: Vec<&str> = r.layer_rotation.iter().map(|l| l.layer.as_str()).collect();
    assert_eq!(rotated, ["dense1", "dense2", "output"]);
    for l in &r.layer_rotation {
        assert_eq!(l.per_epoch.len(), 2, "{}", l.layer);
        assert!(l.per_epoch.iter().all(|&d| d > 1e-4 && d < 1.0), "{}: {:?}", l.layer, l.per_epoch);
    }
    for (name, l) in &r.layers {
        let h = &l.avg_sign_histogram;
        assert_eq!(h.edges.len(), 21, "{name}");
        assert!((h.edges[0] + 1.0).abs() < 1e-12 && (h.edges[20] - 1.0).abs() < 1e-12);
        assert!(h.total() <= 200 * 64 && h.total() > 100 * 64, "{name}: {} pairs with a defined sign", h.total());
        assert!(l.example_neuron_histogram.total() <= 200);
        assert_eq!(l.quantization.len(), 11);
        assert_eq!(l.quantization[5].rank, 50.0);
        assert_eq!(l.sliding_window.len(), 19);
        assert_eq!(l.sliding_window[0].center, 5.0);
        assert!(l.quantization.iter().all(|q| (0.0..=1.0).contains(&q.test_accuracy)));
        // The post-activation variant beside it, and the same-side share per rank.
        assert_eq!(l.post_quantization.iter().map(|q| q.rank).collect::<Vec<_>>(), l.quantization.iter().map(|q| q.rank).collect::<Vec<_>>());
        assert!(l.quantization.iter().chain(&l.post_quantization).all(|q| q.same_side_share.is_some_and(|s| (0.0..=1.0).contains(&s))));
        // At rank 0 and 100 a neuron has one value: both "sides" are that value.
        assert_eq!(l.quantization[0].same_side_share, Some(1.0), "{name}");
        assert!((0.0..=100.0).contains(&l.zero_percentile_rank));
        assert!(l.class_low_fraction_histogram.total() > 0);
    }

    // Every figure has its data (figures.json, CSV) and both images.
    let figs: Vec<NamedFigure> = serde_json::from_str(&std::fs::read_to_string(full.join("mlp-relu/figures.json")).unwrap()).unwrap();
    let stems: Vec<&str> = figs.iter().map(|f| f.stem.as_str()).collect();
    for want in ["fig1_one_neuron", "fig5_whole_layer", "fig3_quantization", "fig4_sliding_window", "fig8_class_vs_category"] {
        assert!(stems.contains(&want), "{want} missing from {stems:?}");
    }
    assert!(stems.iter().any(|s| s.starts_with("fig2_dense2-relu")));
    for f in &figs {
        for ext in ["svg", "png", "csv"] {
            let p = full.join(format!("mlp-relu/{}.{ext}", f.stem));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 100).unwrap_or(false), "{} missing or empty", p.display());
        }
    }
    let report = std::fs::read_to_string(full.join("report.html")).unwrap();
    assert!(report.contains("mlp-relu/fig5_whole_layer.svg"));
    let table = std::fs::read_to_string(full.join("table1.md")).unwrap();
    assert!(table.contains("dense2-relu"));

    // Interrupted after one epoch, then resumed: identical recorded statistics and accuracy.
    let split = out_dir("split");
    let stdout = reproduce(&split, &["--stop-after", "1"]);
    assert!(stdout.contains("stopped after 1"), "{stdout}");
    assert!(!split.join("mlp-relu/results.json").exists());
    // Resuming with other settings is refused with a clear message, and the checkpoint survives.
    let err = failed(trainer([
        "reproduce", "--preset", "fast", "--backend", "cpu", "--only", "mlp-relu", "--epochs", "3", "--train-samples", "3000",
        "--tracked", "200", "--hidden", "64,64", "--every", "5", "--quiet", "--resume", "--out", split.to_str().unwrap(),
    ]));
    assert!(err.contains("other settings"), "{err}");
    let err = failed(trainer([
        "reproduce", "--preset", "fast", "--backend", "cpu", "--only", "mlp-relu", "--epochs", "2", "--train-samples", "3000",
        "--tracked", "200", "--hidden", "64,64", "--every", "5", "--quiet", "--resume", "--optimizer", "sgd", "--out", split.to_str().unwrap(),
    ]));
    assert!(err.contains("other settings"), "another optimizer must not resume this run: {err}");
    let stdout = reproduce(&split, &["--resume"]);
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    let resumed = results(&split);
    assert_eq!(resumed.recording.as_ref().unwrap().recordings, r.recording.as_ref().unwrap().recordings);
    for (name, l) in &r.layers {
        assert_eq!(resumed.layers[name].avg_sign_histogram, l.avg_sign_histogram, "{name}");
    }
    assert_eq!(resumed.test_accuracy, r.test_accuracy);
    assert_eq!(resumed.layer_rotation, r.layer_rotation, "a resumed run rebuilds the initial weights");

    // A finished run is not redone.
    let stdout = reproduce(&split, &["--resume"]);
    assert!(stdout.contains("finished earlier"), "{stdout}");

    // Other experiment settings on the same training: the experiments run again on the trained
    // network from its checkpoint, and the training is not repeated.
    let restudied = trainer([
        "reproduce", "--preset", "fast", "--backend", "cpu", "--only", "mlp-relu", "--epochs", "2", "--train-samples", "3000",
        "--tracked", "200", "--hidden", "64,64", "--every", "5", "--retrain-samples", "1000", "--retrain-epochs", "1", "--quiet",
        "--resume", "--out", split.to_str().unwrap(),
    ]);
    let stdout = succeeded(restudied);
    assert!(stdout.contains("the experiments run again on the trained network"), "{stdout}");
    assert!(stdout.contains("resuming after epoch 2"), "{stdout}");
    let again = results(&split);
    assert_eq!(again.spec.as_ref().unwrap().experiments.retrain_samples, 1000);
    assert_ne!(again.settings, resumed.settings);
    assert_eq!((again.test_accuracy, again.train_seconds), (resumed.test_accuracy, resumed.train_seconds), "trained once");
    assert_eq!(again.layer_rotation, resumed.layer_rotation);
    for (name, l) in &resumed.layers {
        assert_eq!(again.layers[name].avg_sign_histogram, l.avg_sign_histogram, "{name}");
        assert_eq!(again.layers[name].quantization, l.quantization, "{name}: quantization reads the statistics subset, not the retraining set");
    }
    // Without the checkpoint there is no trained network to study again: refused, results kept.
    std::fs::remove_dir_all(split.join("mlp-relu/checkpoint")).unwrap();
    let err = failed(trainer([
        "reproduce", "--preset", "fast", "--backend", "cpu", "--only", "mlp-relu", "--epochs", "2", "--train-samples", "3000",
        "--tracked", "200", "--hidden", "64,64", "--every", "5", "--retrain-samples", "500", "--retrain-epochs", "1", "--quiet",
        "--resume", "--out", split.to_str().unwrap(),
    ]));
    assert!(err.contains("its checkpoint (the trained network) is gone"), "{err}");
    assert_eq!(results(&split).settings, again.settings, "the finished results stay");

}

#[test]
fn keras_settings_train_and_resume_with_their_own_optimizer() {
    // RMSprop's state (not Adam's) goes through the checkpoint and back.
    let out = out_dir("keras");
    let stdout = reproduce(&out, &["--init", "keras", "--optimizer", "rmsprop", "--stop-after", "1"]);
    assert!(stdout.contains("stopped after 1"), "{stdout}");
    let stdout = reproduce(&out, &["--init", "keras", "--optimizer", "rmsprop", "--resume"]);
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    let r = results(&out);
    assert!(r.test_accuracy > 0.6, "RMSprop with Keras' init, 2 epochs: {}", r.test_accuracy);
    let spec = r.spec.expect("the spec in results.json");
    let Network::Mlp(cfg) = &spec.network else { panic!("an MLP") };
    assert_eq!((cfg.init, spec.train.unwrap().optimizer), (Init::Keras, Optimizer::Rmsprop));
}

#[test]
fn the_paper_preset_starts_as_keras_does() {
    let tiny = ["--backend", "cpu", "--only", "mlp-relu", "--epochs", "1", "--train-samples", "300", "--test-samples", "100", "--tracked", "20", "--hidden", "8,8", "--every", "50", "--retrain-samples", "100", "--retrain-epochs", "1", "--quiet"];
    for (preset, init) in [("paper", Some("keras")), ("fast", None)] {
        let out = out_dir(&format!("preset-{preset}"));
        let mut args = vec!["reproduce", "--preset", preset, "--out", out.to_str().unwrap()];
        args.extend_from_slice(&tiny);
        succeeded(trainer(&args));
        let spec = results(&out).spec.unwrap();
        let Network::Mlp(cfg) = &spec.network else { panic!("an MLP") };
        assert_eq!(cfg.init == Init::Keras, init.is_some(), "{preset}: {:?}", cfg.init);
    }
}

#[test]
fn bad_data_folder_gives_a_clear_error() {
    let dir = out_dir("bad-data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), b"\x1f\x8bnot really gzip").unwrap();
    for f in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        std::fs::write(dir.join(f), [0u8, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    }
    let out = dir.join("out");
    let err = failed(trainer([OsStr::new("reproduce"), "--backend".as_ref(), "cpu".as_ref(), "--quiet".as_ref(), "--data".as_ref(), dir.as_os_str(), "--out".as_ref(), out.as_os_str()]));
    assert!(err.contains("train-images-idx3-ubyte.gz") && err.contains("gzip"), "{err}");
}

/// CIFAR-10 binary batch files with random pixels: 5 train files of `per_file` records and a
/// test file.
fn reproduce_cifar(data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "reproduce", "--model", "cifar", "--preset", "fast", "--backend", "cpu", "--only", "cnn-linear",
        "--hidden", "4,4,8,8", "--epochs", "2", "--every", "3", "--tracked", "24", "--batch", "16",
        "--retrain-samples", "64", "--quiet",
    ];
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    args.extend_from_slice(&["--data", d, "--out", o]);
    args.extend_from_slice(extra);
    succeeded(trainer(&args))
}

#[test]
fn cifar_cnn_runs_and_resumes_exactly() {
    let data = out_dir("cifar-data");
    write_fake_cifar(&data, 40);
    let full = out_dir("cifar-full");
    reproduce_cifar(&data, &full, &[]);
    let text = std::fs::read_to_string(full.join("cifar-cnn-linear/results.json")).unwrap();
    let r = Results::from_json(&text).unwrap();
    assert_eq!(r.dataset, "cifar10");
    assert_eq!(r.layers.len(), 12);
    assert!(r.layers.contains_key("stage0layer0-linear") && r.layers.contains_key("stage3layer2-linear"));
    // 200 train samples, batch 16: 2 x 13 batches, a recording every 3 (steps 0, 3, ..., 24).
    assert_eq!(r.recording.as_ref().unwrap().recordings, 9);
    let with_experiments: Vec<&String> = r.layers.iter().filter(|(_, l)| !l.quantization.is_empty()).map(|(n, _)| n).collect();
    assert_eq!(with_experiments, ["stage0layer0-linear", "stage1layer2-linear", "stage3layer2-linear"]);
    for (name, l) in &r.layers {
        let pairs = l.avg_sign_histogram.total();
        assert!(pairs > 0 && pairs <= 24 * l.neurons as u64, "{name}: {pairs} pairs");
    }
    let files: Vec<String> =
        std::fs::read_dir(full.join("cifar-cnn-linear")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(files.iter().any(|f| f.starts_with("fig7_stage3layer2-linear") && f.ends_with(".svg")), "{files:?}");

    let split = out_dir("cifar-split");
    reproduce_cifar(&data, &split, &["--stop-after", "1"]);
    let stdout = reproduce_cifar(&data, &split, &["--resume"]);
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    let resumed = Results::from_json(&std::fs::read_to_string(split.join("cifar-cnn-linear/results.json")).unwrap()).unwrap();
    for (name, l) in &r.layers {
        assert_eq!(resumed.layers[name].avg_sign_histogram, l.avg_sign_histogram, "{name}");
    }
    assert_eq!(resumed.test_accuracy, r.test_accuracy);
}

#[test]
fn cifar_resnet_trains_records_and_studies_the_paper_s_three_layers() {
    let data = out_dir("cifar-resnet-data");
    write_fake_cifar(&data, 40);
    let out = out_dir("cifar-resnet");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "reproduce", "--model", "cifar", "--preset", "fast", "--backend", "cpu", "--only", "cifar-resnet", "--epochs", "1", "--every", "3",
        "--tracked", "24", "--batch", "16", "--retrain-samples", "64", "--test-samples", "48", "--quiet", "--data", d, "--out", o,
    ];
    let stdout = succeeded(trainer(args));
    assert!(stdout.contains("CIFAR stem"), "{stdout}");
    let r = Results::from_json(&std::fs::read_to_string(out.join("cifar-resnet/results.json")).unwrap()).unwrap();
    assert_eq!((r.model.as_str(), r.dataset.as_str()), ("cifar-resnet", "cifar10"));
    // conv1 and the 16 blocks 2a..5c, each recorded; experiments on conv1, 3d and 5c.
    assert_eq!(r.layers.len(), 17);
    for (name, l) in &r.layers {
        assert!(l.avg_sign_histogram.total() > 0, "{name}: signs recorded");
    }
    let studied: Vec<&String> = r.layers.iter().filter(|(_, l)| !l.quantization.is_empty()).map(|(n, _)| n).collect();
    assert_eq!(studied, ["3d", "5c", "conv1"]);
    // The CIFAR stem keeps the side: conv1 and stage 2 see 32x32, 5c 4x4.
    assert_eq!((r.layers["conv1"].neurons, r.layers["5c"].neurons), (8, 256));
    for l in ["3d", "5c", "conv1"] {
        assert_eq!(r.layers[l].sliding_window.len(), 10, "{l}: the fast preset's centres");
    }
    assert!(out.join("cifar-resnet/fig4_sliding_window.svg").is_file() && out.join("table1.md").is_file());
    // No preset of the paper's for it, and no --hidden.
    let e = failed(trainer(["reproduce", "--model", "cifar", "--preset", "paper", "--only", "cifar-resnet", "--data", d]));
    assert!(e.contains("--preset") && e.contains("cpu and fast"), "{e}");
    let e = failed(trainer(["reproduce", "--model", "cifar", "--preset", "cpu", "--only", "cifar-resnet", "--hidden", "8,8", "--data", d]));
    assert!(e.contains("--hidden"), "{e}");
}

#[test]
fn cifar_signs_per_position_beside_channels_and_resumed_exactly() {
    let data = out_dir("cifar-pos-data");
    write_fake_cifar(&data, 40);
    let full = out_dir("cifar-pos-full");
    reproduce_cifar(&data, &full, &["--conv-signs", "positions"]);
    let r = Results::from_json(&std::fs::read_to_string(full.join("cifar-cnn-linear/results.json")).unwrap()).unwrap();
    assert_eq!(r.train.as_ref().map(|t| t.conv_signs), Some(hidden_neurons::train::ConvSigns::Positions));
    for (name, l) in &r.layers {
        let p = l.position_signs.as_ref().unwrap_or_else(|| panic!("{name}: no per-position signs"));
        // 16 positions per channel: every layer of 32x32 images down to 4x4 has at least 16.
        assert_eq!(p.positions_per_neuron, 16, "{name}");
        let triples = p.avg_sign_histogram.total();
        assert!(triples > l.avg_sign_histogram.total() && triples <= 24 * 16 * l.neurons as u64, "{name}: {triples} triples");
        assert!((0.0..=1.0).contains(&p.outer_fraction));
    }
    assert!(full.join("cifar-cnn-linear/fig5_positions.svg").is_file() && full.join("cifar-cnn-linear/fig5_positions.csv").is_file());

    let split = out_dir("cifar-pos-split");
    reproduce_cifar(&data, &split, &["--conv-signs", "positions", "--stop-after", "1"]);
    let stdout = reproduce_cifar(&data, &split, &["--conv-signs", "positions", "--resume"]);
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    let resumed = Results::from_json(&std::fs::read_to_string(split.join("cifar-cnn-linear/results.json")).unwrap()).unwrap();
    for (name, l) in &r.layers {
        assert_eq!(resumed.layers[name].position_signs, l.position_signs, "{name}");
        assert_eq!(resumed.layers[name].avg_sign_histogram, l.avg_sign_histogram, "{name}");
    }
    // Resuming with the other counting is another run.
    let e = failed(trainer(["reproduce", "--model", "cifar", "--preset", "fast", "--backend", "cpu", "--only", "cnn-linear", "--hidden", "4,4,8,8", "--epochs", "2", "--every", "3", "--tracked", "24", "--batch", "16", "--retrain-samples", "64", "--quiet", "--data", data.to_str().unwrap(), "--out", split.to_str().unwrap(), "--resume"]));
    assert!(e.contains("other settings"), "{e}");
    // Online recording has one derivative per channel only.
    let e = failed(trainer(["reproduce", "--model", "cifar", "--conv-signs", "positions", "--recording", "online", "--data", data.to_str().unwrap()]));
    assert!(e.contains("--conv-signs positions needs --recording tracked"), "{e}");
}

#[test]
fn cifar_loader_errors_name_the_file() {
    let data = out_dir("cifar-bad");
    write_fake_cifar(&data, 3);
    let f = data.join("cifar-10-batches-bin/data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 10]).unwrap();
    let (d, out) = (data.to_str().unwrap().to_string(), data.join("out").to_str().unwrap().to_string());
    let cifar = || trainer(["reproduce", "--model", "cifar", "--backend", "cpu", "--quiet", "--data", &d, "--out", &out]);
    let err = failed(cifar());
    assert!(err.contains("data_batch_3.bin") && err.contains("whole number"), "{err}");
    std::fs::remove_file(data.join("cifar-10-batches-bin/test_batch.bin")).unwrap();
    std::fs::remove_file(data.join("cifar-10-batches-bin/data_batch_1.bin")).unwrap();
    let err = failed(cifar());
    assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
}
