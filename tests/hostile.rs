//! Hostile input and odd settings, end to end: every case spawns the trainer binary, so a panic
//! or an abort anywhere counts. Each must end with a clean non-zero exit and a one-line message
//! that names the flag or the file, and no run may have grown past 2 GiB of memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};


/// The most memory (peak RSS) any trainer spawned here may reach.
const MEMORY_LIMIT: u64 = 2 << 30;

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hn-hostile-{name}-{}", std::process::id()))
}

fn scratch(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).env("RUST_BACKTRACE", "0").output().expect("trainer runs")
}

/// Runs the trainer, which must fail cleanly with a message containing every one of `expect`.
fn refuses(args: &[&str], expect: &[&str]) -> String {
    let o = trainer(args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let what = format!("trainer {}\n{stderr}", args.join(" "));
    assert_eq!(o.status.code(), Some(1), "a clean error exit, not a crash or a success: {what}");
    assert!(!stderr.contains("panicked") && !stderr.contains("memory allocation"), "{what}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("error: "), "{what}");
    for e in expect {
        assert!(stderr.contains(e), "message should name {e:?}: {what}");
    }
    stderr
}

/// Runs the trainer, which must succeed.
fn succeeds(args: &[&str]) -> String {
    let o = trainer(args);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "trainer {} failed:\n{stdout}\n{}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    stdout
}

#[path = "common/mod.rs"]
mod common;
use common::{gz, idx, read_safetensors, write_fake_cifar, write_safetensors};

/// An MNIST-style folder of `n` train and test images of `side` x `side` pixels.
fn idx_folder(name: &str, n: u32, side: u32) -> PathBuf {
    let dir = scratch(name);
    let pixels = vec![7u8; (n * side * side) as usize];
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for prefix in ["train", "t10k"] {
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&[n, side, side], &pixels)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[n], &labels)).unwrap();
    }
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The largest resident set any child of this process has had, in bytes.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss as u64 * 1024
}

/// A small but complete MNIST run (repo data); `extra` adds flags or overrides these.
fn tiny_mnist(out: &Path, extra: &[&str]) -> Vec<String> {
    let base = [
        ("--preset", "fast"), ("--backend", "cpu"), ("--only", "mlp-relu"), ("--epochs", "2"), ("--train-samples", "600"),
        ("--test-samples", "200"), ("--tracked", "50"), ("--hidden", "16,16"), ("--every", "5"), ("--retrain-samples", "300"),
        ("--retrain-epochs", "1"), ("--out", s(out)),
    ];
    let mut args = vec!["reproduce".to_string(), "--quiet".to_string()];
    for (flag, value) in base {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// One test function runs the cases one after another, so that the peak-memory check at its end
// covers every one of them.
/// Held by each test here for its whole run. The kill storm's kill points are fractions of a
/// run time it measures: a neighbouring test loading the cores while that run is timed, and not
/// while the killed runs go, moves every kill point past their end (it failed once so).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn every_hostile_input_is_a_clean_error_within_two_gib() {
    let _turn = one_at_a_time();
    settings_that_make_no_sense();
    data_that_does_not_fit_the_model();
    files_too_large_to_read();
    corrupt_and_odd_archives();
    checkpoints_from_other_runs();
    outputs_reopen();
    non_finite_numbers();
    two_runs_in_one_folder();
    pretrained_classes_by_wnid();
    let peak = children_peak_rss();
    assert!(peak < MEMORY_LIMIT, "a trainer run reached {} MiB", peak >> 20);
    println!("peak RSS of any trainer run: {} MiB", peak >> 20);
}

fn settings_that_make_no_sense() {
    let out = scratch("settings");
    let o = s(&out);
    let mnist = |extra: &[&str], flag: &str| {
        let mut args = vec!["reproduce", "--backend", "cpu", "--quiet", "--out", o];
        args.extend_from_slice(extra);
        refuses(&args, &[flag, "allowed"]);
    };
    mnist(&["--hidden", "0,512"], "--hidden");
    mnist(&["--hidden", "512,0"], "--hidden");
    mnist(&["--hidden", "4000000000"], "--hidden");
    mnist(&["--hidden", "65536,65536,65536,65536,65536,65536,65536,65536"], "GiB");
    // Figure 2's traces of a recording every step for 10 000 epochs: about 150 GB by the end.
    mnist(&["--every", "1", "--epochs", "10000"], "GiB");
    mnist(&["--tracked", "0"], "--tracked");
    mnist(&["--tracked", "1000000000"], "--tracked");
    mnist(&["--train-samples", "0"], "--train-samples");
    mnist(&["--test-samples", "0"], "--test-samples");
    mnist(&["--retrain-samples", "0"], "--retrain-samples");
    mnist(&["--retrain-epochs", "0"], "--retrain-epochs");
    mnist(&["--epochs", "0"], "--epochs");
    mnist(&["--batch", "0"], "--batch");
    mnist(&["--batch", "100000000"], "--batch");
    mnist(&["--every", "0"], "--every");
    mnist(&["--stop-after", "0"], "--stop-after");
    mnist(&["--learning-rate", "0"], "--learning-rate");
    mnist(&["--learning-rate", "NaN"], "--learning-rate");
    for eps in ["NaN", "inf", "1", "2.5", "-1"] {
        mnist(&[&format!("--certainty-epsilon={eps}")], "--certainty-epsilon");
    }
    // A CNN with more stages than a 32x32 image has halvings, or a zero-width stage: refused
    // before the (absent) data is even looked at.
    let cifar = |hidden: &str| {
        refuses(&["reproduce", "--model", "cifar", "--data", "/nonexistent", "--hidden", hidden, "--quiet", "--out", o], &["--hidden", "allowed"])
    };
    let e = cifar("8,8,8,8,8,8,8");
    assert!(e.contains("7 stages"), "{e}");
    cifar("8,0,8,8");
    cifar("100000");
    refuses(&["bench", "--backend", "cpu", "--steps", "0"], &["--steps"]);
    refuses(&["bench", "--backend", "cpu", "--batch", "0"], &["--batch"]);
    refuses(&["bench", "--backend", "cpu", "--batch", "70000"], &["--batch"]);
    refuses(&["bench", "--backend", "cpu", "--tracked", "0"], &["--tracked"]);
    refuses(&["bench", "--backend", "cpu", "--hidden", "0"], &["--hidden"]);
    refuses(&["bench", "--model", "cnn-relu", "--backend", "cpu", "--hidden", "4,4,4,4,4,4,4,4"], &["--hidden"]);
}

fn data_that_does_not_fit_the_model() {
    let out = scratch("fit-out");
    for (name, side) in [("fit32", 32), ("fit1", 1)] {
        let dir = idx_folder(name, 20, side);
        let e = refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &[s(&dir), "784"]);
        assert!(e.contains(&format!("{}x{}", side, side)), "{e}");
        refuses(&["bench", "--backend", "cpu", "--batch", "4", "--data", s(&dir)], &[s(&dir), "784"]);
    }
    // An IDX file with zero images.
    let dir = idx_folder("zero", 0, 28);
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["train-images-idx3-ubyte", "no images"]);
    // Labels that are no class, truncated data, a header declaring more than the file holds.
    let dir = idx_folder("labels", 20, 28);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[20], &[77; 20])).unwrap();
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["t10k-labels-idx1-ubyte", "77"]);
    let dir = idx_folder("truncated", 20, 28);
    std::fs::write(dir.join("train-images-idx3-ubyte"), &idx(&[20, 28, 28], &[1; 20 * 784])[..5000]).unwrap();
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["train-images-idx3-ubyte", "truncated"]);
}

fn files_too_large_to_read() {
    let out = scratch("large-out");
    // A sparse 5 GB IDX file: refused from its size, without reading it.
    let dir = idx_folder("sparse", 20, 28);
    let f = std::fs::OpenOptions::new().write(true).open(dir.join("train-images-idx3-ubyte")).unwrap();
    f.set_len(5 << 30).unwrap();
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["train-images-idx3-ubyte", "more than"]);
    // A header that declares gigabytes (the file is small): refused before allocating.
    let dir = idx_folder("declared", 20, 28);
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx(&[3_000_000, 28, 28], &[0; 100])).unwrap();
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["train-images-idx3-ubyte", "limit"]);
    // A gzip whose payload goes on far past what its header declares (a decompression bomb).
    let dir = idx_folder("bomb", 20, 28);
    let mut bomb = idx(&[20], &(0..20).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    bomb.extend(std::iter::repeat_n(0u8, 64 << 20));
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte")).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&bomb)).unwrap();
    refuses(&["reproduce", "--backend", "cpu", "--quiet", "--data", s(&dir), "--out", s(&out)], &["train-labels-idx1-ubyte.gz", "trailing"]);

    // CIFAR: a sparse 5 GB batch file.
    let data = scratch("cifar-sparse");
    let bin = data.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"] {
        std::fs::write(bin.join(name), vec![1u8; 3073 * 2]).unwrap();
    }
    std::fs::OpenOptions::new().write(true).open(bin.join("data_batch_4.bin")).unwrap().set_len(5 << 30).unwrap();
    refuses(&["reproduce", "--model", "cifar", "--backend", "cpu", "--quiet", "--data", s(&data), "--out", s(&out)], &["data_batch_4.bin", "more than"]);
    // A tarball whose member claims 5 GB.
    let tarball = data.join("huge.tar.gz");
    let mut header = tar::Header::new_gnu();
    header.set_path("cifar-10-batches-bin/data_batch_1.bin").unwrap();
    header.set_size(5 << 30);
    header.set_cksum();
    let mut raw = header.as_bytes().to_vec();
    raw.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&tarball, gz(&raw)).unwrap();
    refuses(&["reproduce", "--model", "cifar", "--backend", "cpu", "--quiet", "--data", s(&tarball), "--out", s(&out)], &["huge.tar.gz", "data_batch_1.bin"]);
    // The sparse files hold no disk blocks, but a 5 GB file left in the temp folder surprises.
    for dir in [scratch_path("sparse"), data] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A tar archive of the given (name, bytes) members.
fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A CIFAR tarball of the given (name, bytes) members, gzip-compressed.
fn cifar_tarball(path: &Path, members: &[(String, Vec<u8>)]) {
    std::fs::write(path, gz(&tar_of(members))).unwrap();
}

fn corrupt_and_odd_archives() {
    let data = scratch("archives");
    let out = data.join("out");
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(label * 20, 3072));
        r
    };
    let batch: Vec<u8> = (0..4).flat_map(|i| record(i % 10)).collect();
    let all = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
    let members = |names: &[&str]| names.iter().map(|n| (format!("cifar-10-batches-bin/{n}"), batch.clone())).collect::<Vec<_>>();
    let run = |tarball: &Path, expect: &[&str]| {
        refuses(&["reproduce", "--model", "cifar", "--backend", "cpu", "--quiet", "--data", s(tarball), "--out", s(&out)], expect)
    };
    // The same batch file twice.
    let twice = data.join("twice.tar.gz");
    let mut m = members(&all);
    m.push(m[0].clone());
    cifar_tarball(&twice, &m);
    run(&twice, &["twice.tar.gz", "twice"]);
    // A garbled archive, and one cut short.
    let garbled = data.join("garbled.tar.gz");
    std::fs::write(&garbled, b"\x1f\x8b\x08\x00garbage that is no deflate stream").unwrap();
    run(&garbled, &["garbled.tar.gz"]);
    let cut = data.join("cut.tar.gz");
    cifar_tarball(&cut, &members(&all));
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    run(&cut, &["cut.tar.gz"]);
    // A member cut mid-record, and a label that is no class.
    let odd = data.join("odd.tar.gz");
    let mut m = members(&all);
    m[2].1.truncate(3073 + 10);
    m[5].1[0] = 200;
    cifar_tarball(&odd, &m);
    run(&odd, &["data_batch_3.bin", "whole number"]);
    // Members with path traversal in their names are only ever read into memory.
    let traversal = data.join("traversal.tar.gz");
    let mut raw = tar::Builder::new(Vec::new());
    for n in all {
        let mut header = tar::Header::new_gnu();
        header.set_size(batch.len() as u64);
        header.set_mode(0o644);
        // tar::Builder refuses ".." in names: write the name into the header by hand.
        let name = format!("../../{n}");
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        raw.append(&header, batch.as_slice()).unwrap();
    }
    std::fs::write(&traversal, gz(&raw.into_inner().unwrap())).unwrap();
    let o = trainer(&["reproduce", "--model", "cifar", "--backend", "cpu", "--quiet", "--data", s(&traversal), "--out", s(&out), "--hidden", "2",
        "--epochs", "1", "--tracked", "4", "--retrain-samples", "4"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    assert!(!data.parent().unwrap().join("data_batch_1.bin").exists());
    // Multi-member gzip (pigz, `cat a.gz b.gz`) is read whole.
    let multi = data.join("multi.tar.gz");
    let tar_bytes = tar_of(&members(&all));
    let (a, b) = tar_bytes.split_at(tar_bytes.len() / 3);
    std::fs::write(&multi, [gz(a), gz(b)].concat()).unwrap();
    let split = hidden_neurons::data::load_cifar(&multi).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (20, 4));
}

fn checkpoints_from_other_runs() {
    let a = scratch("ckpt-a");
    let b = scratch("ckpt-b");
    succeeds(&strs(&tiny_mnist(&a, &["--stop-after", "1"])));
    succeeds(&strs(&tiny_mnist(&b, &["--stop-after", "1", "--hidden", "8,8", "--tracked", "40"])));
    // Resuming with other settings: refused by the progress file.
    let e = refuses(&strs(&tiny_mnist(&a, &["--resume", "--hidden", "8,8"])), &["checkpoint", "other settings"]);
    assert!(e.contains("mlp-relu"), "{e}");
    // Each part from the other run, put into this run's checkpoint: refused, naming the file.
    let slot = |dir: &Path, part: &str| dir.join(format!("mlp-relu/checkpoint/{part}.0"));
    for part in ["model.bpk", "optim.bpk", "recorder.bin"] {
        let own = std::fs::read(slot(&a, part)).unwrap();
        std::fs::copy(slot(&b, part), slot(&a, part)).unwrap();
        refuses(&strs(&tiny_mnist(&a, &["--resume"])), &[&format!("{part}.0"), "other settings"]);
        // A damaged part (one byte flipped in its payload), and one cut short.
        let mut damaged = own.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        std::fs::write(slot(&a, part), &damaged).unwrap();
        refuses(&strs(&tiny_mnist(&a, &["--resume"])), &[&format!("{part}.0"), "checksum"]);
        std::fs::write(slot(&a, part), &own[..own.len() / 2]).unwrap();
        refuses(&strs(&tiny_mnist(&a, &["--resume"])), &[&format!("{part}.0")]);
        std::fs::write(slot(&a, part), &own).unwrap();
    }
    // A progress file that is not JSON.
    let progress = a.join("mlp-relu/checkpoint/progress.json");
    let good = std::fs::read(&progress).unwrap();
    std::fs::write(&progress, b"{\"epochs_done\": 1, \"slot\": 9").unwrap();
    refuses(&strs(&tiny_mnist(&a, &["--resume"])), &["progress.json"]);
    std::fs::write(&progress, good).unwrap();
    // Intact again: the run resumes and finishes.
    let stdout = succeeds(&strs(&tiny_mnist(&a, &["--resume"])));
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    // A finished model with other settings is not silently kept.
    refuses(&strs(&tiny_mnist(&a, &["--resume", "--seed", "2"])), &["results.json", "other settings"]);
    let stdout = succeeds(&strs(&tiny_mnist(&a, &["--resume"])));
    assert!(stdout.contains("finished earlier"), "{stdout}");
    // A results.json that is not UTF-8: named by --resume and by validate.
    let results = a.join("mlp-relu/results.json");
    std::fs::write(&results, b"{\"model\": \"\xff\xfe\"}").unwrap();
    refuses(&strs(&tiny_mnist(&a, &["--resume"])), &["results.json", "UTF-8"]);
    refuses(&["validate", s(&results)], &["results.json", "UTF-8"]);
}

fn outputs_reopen() {
    // Everything a run writes reads back: results.json through `trainer validate`, figures.json
    // through the schema, the checkpoint through --resume (checked above); here with an online
    // run on a tiny tracked set, where empty categories are likely.
    let out = scratch("reopen");
    succeeds(&strs(&tiny_mnist(&out, &["--recording", "online", "--tracked", "3", "--epochs", "1"])));
    let stdout = succeeds(&["validate", s(&out.join("mlp-relu/results.json"))]);
    assert!(stdout.contains("valid results.json"), "{stdout}");
    let figs: Vec<hidden_neurons::figures::NamedFigure> =
        serde_json::from_slice(&std::fs::read(out.join("mlp-relu/figures.json")).unwrap()).unwrap();
    assert!(!figs.is_empty());
}

/// Rewrites the payload of a sealed checkpoint part (see trainer/src/checkpoint.rs: magic, the
/// settings' length and text, the payload's length and CRC-32, the payload) with `fill` bytes
/// over 64 bytes three quarters in (the weights' values), and seals it again with a valid
/// checksum: damage that the checksum cannot see.
fn overwrite_payload(part: &Path, fill: u8) {
    let mut bytes = std::fs::read(part).unwrap();
    assert_eq!(&bytes[..8], b"HNPART01");
    let settings = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let len_at = 16 + settings;
    let payload_len = u64::from_le_bytes(bytes[len_at..len_at + 8].try_into().unwrap()) as usize;
    let payload_at = len_at + 12;
    assert_eq!(bytes.len(), payload_at + payload_len);
    let at = payload_at + payload_len * 3 / 4;
    bytes[at..at + 64].fill(fill);
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[payload_at..]);
    bytes[len_at + 8..len_at + 12].copy_from_slice(&crc.sum().to_le_bytes());
    std::fs::write(part, bytes).unwrap();
}

fn non_finite_numbers() {
    // A checkpoint whose weights hold NaN (0xFFFFFFFF) under a valid checksum: refused, named.
    let out = scratch("nan-checkpoint");
    succeeds(&strs(&tiny_mnist(&out, &["--stop-after", "1"])));
    let part = out.join("mlp-relu/checkpoint/model.bpk.0");
    let good = std::fs::read(&part).unwrap();
    overwrite_payload(&part, 0xFF);
    let e = refuses(&strs(&tiny_mnist(&out, &["--resume"])), &["model.bpk.0", "NaN or infinite", "hidden.0.weight"]);
    assert!(e.contains("delete"), "{e}");
    // The same damage in place of the checkpoint's own bytes is what the check saw: restored, it resumes.
    std::fs::write(&part, good).unwrap();
    succeeds(&strs(&tiny_mnist(&out, &["--resume"])));

    // A loss that overflows during an epoch stops the run at that step, before any checkpoint
    // holds its weights; no results are written.
    let out = scratch("diverge");
    let e = refuses(
        &strs(&tiny_mnist(&out, &["--optimizer", "sgd", "--learning-rate", "10", "--hidden", "512,512", "--epochs", "3"])),
        &["diverged at step", "loss is", "--learning-rate"],
    );
    assert!(e.contains("epoch 1") || e.contains("the last good checkpoint"), "{e}");
    assert!(!out.join("mlp-relu/results.json").exists());
}

fn two_runs_in_one_folder() {
    let out = scratch("lock");
    let long = tiny_mnist(&out, &["--epochs", "200"]);
    let mut first = Command::new(env!("CARGO_BIN_EXE_trainer")).args(&long).stdout(std::process::Stdio::null()).spawn().unwrap();
    let lock = out.join("mlp-relu/.lock");
    let pid = first.id().to_string();
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(started.elapsed().as_secs() < 120, "the first run never took its lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second run into the same folder is refused, naming the lock and its holder; the first
    // run's files are untouched by it.
    let e = refuses(&strs(&tiny_mnist(&out, &["--epochs", "1"])), &[".lock", &pid, "another --out"]);
    assert!(e.contains("another run"), "{e}");
    assert!(first.try_wait().unwrap().is_none(), "the first run goes on");
    // Killed with SIGKILL, the first run leaves no stuck lock.
    first.kill().unwrap();
    first.wait().unwrap();
    succeeds(&strs(&tiny_mnist(&out, &["--epochs", "1"])));
}

/// `train/<class>/` and `val/<class>/` of small JPEGs, `per_class` each.
fn image_folder(root: &Path, classes: &[&str], per_class: usize) {
    use image::{ImageBuffer, ImageFormat, Rgb};
    for (k, class) in classes.iter().enumerate() {
        for split in ["train", "val"] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let img = ImageBuffer::from_fn(40, 36, |x, y| Rgb([(x * 5 + 40 * k as u32) as u8, (y * 6 + i as u32 * 9) as u8, (70 * k as u32) as u8]));
                let mut bytes = std::io::Cursor::new(Vec::new());
                img.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
                std::fs::write(dir.join(format!("{class}_{i}.JPEG")), bytes.into_inner()).unwrap();
            }
        }
    }
}

fn pretrained_classes_by_wnid() {
    // The committed reduced-width ResNet50 fixture (width 4: 128 features) with a 1000-class
    // classifier, as ImageNet weights have.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/resnet/tiny.safetensors");
    let tensors: Vec<_> = read_safetensors(&fixture)
        .into_iter()
        .map(|(name, shape, values)| match name.as_str() {
            "fc.weight" => (name, vec![1000, shape[1]], (0..1000 * shape[1]).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect()),
            "fc.bias" => (name, vec![1000], vec![0.0; 1000]),
            _ => (name, shape, values),
        })
        .collect();
    let dir = scratch("wnids");
    let weights = dir.join("imagenet1k.safetensors");
    write_safetensors(&weights, &tensors);
    let run = |data: &Path, out: &Path| {
        let (w, d, o) = (s(&weights), s(data), s(out));
        vec![
            "reproduce", "--model", "resnet50", "--weights", w, "--data", d, "--out", o, "--preset", "fast", "--backend", "cpu",
            "--side", "32", "--width", "4", "--quiet", "--train-samples", "6", "--retrain-samples", "6", "--retrain-epochs", "1",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    // Three of ImageNet's classes (the first two and the last), no synset file: runs as is,
    // classes numbered by ImageNet-1k's wnid list.
    let data = dir.join("subset");
    image_folder(&data, &["n01440764", "n01443537", "n15075141"], 2);
    let stdout = succeeds(&strs(&run(&data, &dir.join("out"))));
    assert!(stdout.contains("ImageNet-1k"), "{stdout}");
    // Folders that are not wnids: the error says so in classes, and what to do.
    let data = dir.join("named");
    image_folder(&data, &["cat", "dog", "fish"], 2);
    let e = refuses(&strs(&run(&data, &dir.join("out2"))), &["imagenet1k.safetensors", "the weights have 1000 classes, the data 3", "wnid"]);
    assert!(!e.contains("ShapeMismatch") && !e.contains("allow_partial"), "{e}");
}

/// Results of a finished run with the wall-clock times taken out (all else must be equal).
fn timeless(results: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("train_seconds");
    o.remove("experiment_seconds");
    v
}

/// The run `args` (without `--out`) uninterrupted, then killed with SIGKILL at `kills` points
/// spread over its running time and resumed each time: the resumed results must equal the
/// uninterrupted run's.
fn survives_kill_storm(name: &str, args: &[String], model: &str, kills: usize) {
    let whole = scratch(&format!("{name}-whole"));
    let with_out = |out: &Path, extra: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--out".to_string(), s(out).to_string()]);
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let started = std::time::Instant::now();
    succeeds(&strs(&with_out(&whole, &[])));
    let full_ms = started.elapsed().as_millis() as u64;
    let expected = timeless(&whole.join(model).join("results.json"));

    // Kill points from a fixed sequence over 5%..95% of the uninterrupted run's time: start-up,
    // training, checkpoint writes and the experiments all get hit across the storm. A resumed
    // run may go faster than the timed one (warm caches, a quieter machine): when the first
    // kill of a storm finds the run already done, the storm starts over on a halved time scale,
    // so some kill always lands however the machine's speed moves.
    let mut scale_ms = full_ms as f64;
    let (storm, resumed, killed) = 'storms: loop {
        let storm = scratch(&format!("{name}-storm"));
        let resumed = with_out(&storm, &["--resume"]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ kills as u64;
        let mut killed = 0;
        for _ in 0..kills {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let fraction = 0.05 + 0.9 * ((state >> 33) as f64 / (1u64 << 31) as f64);
            let mut child = Command::new(env!("CARGO_BIN_EXE_trainer")).args(&resumed).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis((fraction * scale_ms) as u64));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                killed += 1;
            }
            child.wait().unwrap();
            if killed == 0 && scale_ms > 20.0 {
                scale_ms /= 2.0;
                eprintln!("{name}: the first kill found the run done; again on a {scale_ms:.0} ms scale");
                continue 'storms;
            }
        }
        break (storm, resumed, killed);
    };
    assert!(killed > 0, "{name}: no kill landed while the run was going");
    succeeds(&strs(&resumed));
    assert_eq!(timeless(&storm.join(model).join("results.json")), expected, "{name}: resumed after {killed} kills");
}

#[test]
fn kill_storms_resume_exactly() {
    let _turn = one_at_a_time();
    // CIFAR with augmentation (random crops and flips drawn per epoch).
    let data = scratch("storm-cifar-data");
    write_fake_cifar(&data, 40);
    let cifar: Vec<String> = [
        "reproduce", "--model", "cifar", "--preset", "fast", "--backend", "cpu", "--only", "cnn-relu", "--hidden", "4,4,8,8",
        "--epochs", "4", "--every", "3", "--tracked", "24", "--batch", "16", "--retrain-samples", "64", "--quiet", "--data", s(&data),
    ]
    .into_iter()
    .map(String::from)
    .collect();
    survives_kill_storm("cifar", &cifar, "cifar-cnn-relu", 4);

    // ResNet50 trained here for one epoch on a small folder, then studied.
    let folder = scratch("storm-imagenet");
    image_folder(&folder, &["a", "b", "c"], 4);
    let resnet: Vec<String> = [
        "reproduce", "--model", "resnet50", "--epochs", "1", "--data", s(&folder), "--preset", "fast", "--backend", "cpu", "--side", "32",
        "--width", "2", "--quiet", "--train-samples", "6", "--retrain-samples", "6", "--retrain-epochs", "1", "--batch", "4",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    survives_kill_storm("resnet", &resnet, "resnet50", 3);
}
