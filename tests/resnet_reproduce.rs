//! `trainer reproduce --model resnet50` end to end: the committed reduced-width ResNet50 fixture
//! (random weights, torchvision's layout) on a generated ImageNet-format folder with the odd
//! files ImageNet holds (grayscale, CMYK, a PNG named .JPEG, images smaller than the crop) and a
//! corrupt one. The run's test accuracy and conv1's zero rank are recomputed here from the images
//! and the weights, independently of the trainer's experiment code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::data::{ImageFolder, preprocess};
use hidden_neurons::model::{CaptureTap, RESNET50_BLOCKS, ResNetConfig, Stem, TappedModel, flatten_items};
use hidden_neurons::results::Results;
use hidden_neurons::stats::read_f32;
use hidden_neurons::weights::load_resnet;
use image::{ImageBuffer, ImageFormat, Luma, Rgb};

const SIDE: usize = 64;
const RESIZE: u32 = 74; // 64 * 256 / 224, rounded up, as the trainer does
const WNIDS: [&str; 10] = ["n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-resnet-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_image(path: &Path, k: usize, i: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = std::io::Cursor::new(Vec::new());
    let (w, h) = (50 + 9 * i as u32, 40 + 5 * k as u32);
    match i % 4 {
        // Grayscale JPEG.
        1 => ImageBuffer::from_fn(w, h, |x, _| Luma([(20 * k as u32 + x) as u8])).write_to(&mut bytes, ImageFormat::Jpeg).unwrap(),
        // A PNG named .JPEG.
        2 => ImageBuffer::from_fn(w, h, |x, y| Rgb([(25 * k) as u8, (x * 3) as u8, (y * 5) as u8])).write_to(&mut bytes, ImageFormat::Png).unwrap(),
        // Smaller than the crop.
        3 => ImageBuffer::from_fn(20, 17, |x, y| Rgb([(x * 9) as u8, (25 * k) as u8, (y * 7) as u8])).write_to(&mut bytes, ImageFormat::Jpeg).unwrap(),
        _ => ImageBuffer::from_fn(w, h, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, (25 * k) as u8])).write_to(&mut bytes, ImageFormat::Jpeg).unwrap(),
    }
    std::fs::write(path, bytes.into_inner()).unwrap();
}

/// `train/<wnid>/` (4 images each, one class also holding a CMYK JPEG) and a flat `val/` labelled
/// by `LOC_val_solution.csv` (2 images per class), plus a truncated JPEG in `val/`.
fn imagenet_folder(root: &Path) {
    for (k, wnid) in WNIDS.iter().enumerate() {
        for i in 0..4 {
            write_image(&root.join("train").join(wnid).join(format!("{wnid}_{i}.JPEG")), k, i);
        }
    }
    std::fs::copy(fixture("imagenet/cmyk_red.jpg"), root.join("train/n03/n03_cmyk.JPEG")).unwrap();
    let mut csv = String::from("ImageId,PredictionString\n");
    for (k, wnid) in WNIDS.iter().enumerate() {
        for i in 0..2 {
            let id = format!("ILSVRC2012_val_{:08}", 1 + 2 * k + i);
            write_image(&root.join("val").join(format!("{id}.JPEG")), k, i + 2 * (k % 2));
            csv += &format!("{id},{wnid} 1 2 3 4\n");
        }
    }
    std::fs::write(root.join("val/ILSVRC2012_val_00000021.JPEG"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    csv += "ILSVRC2012_val_00000021,n05 1 2 3 4\n";
    std::fs::write(root.join("LOC_val_solution.csv"), csv).unwrap();
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().expect("trainer runs")
}

fn images(folder: &ImageFolder, device: &Device) -> (Tensor<2>, Vec<usize>) {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (path, label) in &folder.items {
        let Ok(v) = preprocess(&std::fs::read(path).unwrap(), RESIZE, SIDE as u32) else { continue };
        values.extend(v);
        labels.push(*label);
    }
    let n = labels.len();
    (Tensor::from_data(TensorData::new(values, [n, 3 * SIDE * SIDE]), device), labels)
}

#[test]
fn resnet50_reproduces_on_an_imagenet_folder() {
    let root = scratch("data");
    imagenet_folder(&root);
    let out = scratch("out");
    let weights = fixture("resnet/tiny.safetensors");
    let (w, d, o) = (weights.to_str().unwrap(), root.to_str().unwrap(), out.to_str().unwrap());
    let base = [
        "reproduce", "--model", "resnet50", "--weights", w, "--data", d, "--out", o, "--preset", "fast", "--backend", "cpu", "--side", "64", "--width", "4",
        "--quiet", "--train-samples", "1000", "--retrain-epochs", "3",
    ];

    // The corrupt validation image stops the run, named, unless skipped.
    let failed = trainer(&base);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("ILSVRC2012_val_00000021.JPEG") && !stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("resnet50/results.json").exists());

    let ok = trainer(&[&base[..], &["--skip-bad-images"]].concat());
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("skipped 1 unusable image"), "{stdout}");
    let r = Results::from_json(&std::fs::read_to_string(out.join("resnet50/results.json")).unwrap()).unwrap();
    assert_eq!(r.layers.keys().collect::<Vec<_>>(), ["3d", "5c", "conv1"]);
    for (name, l) in &r.layers {
        assert_eq!(l.quantization.iter().map(|q| q.rank).collect::<Vec<_>>(), (0..=10).map(|i| i as f64 * 10.0).collect::<Vec<_>>(), "{name}");
        assert_eq!(l.sliding_window.len(), 10, "{name}");
        assert!(l.quantization.iter().all(|q| (0.0..=1.0).contains(&q.test_accuracy)));
        assert!(l.sliding_window.iter().all(|w| (0.0..=1.0).contains(&w.test_accuracy)));
        assert!((0.0..=100.0).contains(&l.zero_percentile_rank), "{name}");
    }
    for f in ["fig3_quantization.csv", "fig3_quantization.svg", "fig4_sliding_window.csv", "figures.json"] {
        assert!(out.join("resnet50").join(f).is_file(), "{f}");
    }
    let table1 = std::fs::read_to_string(out.join("table1.md")).unwrap();
    assert!(table1.contains("conv1") && table1.contains("5c"), "{table1}");
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("resnet50"));

    // Independently: the same weights, the usable validation images, PyTorch's convention of
    // class index = sorted wnid.
    let device = Device::flex();
    let cfg = ResNetConfig { side: SIDE, width: 4, blocks: RESNET50_BLOCKS.to_vec(), classes: 10, stem: Stem::Imagenet };
    let model = load_resnet(cfg.init(&device), &weights).unwrap();
    let train = ImageFolder::discover(&root.join("train"), None).unwrap();
    let val = ImageFolder::flat(&root.join("val"), &root.join("LOC_val_solution.csv"), Some(train.classes.clone()), None).unwrap();
    let (x, labels) = images(&val, &device);
    assert_eq!(labels.len(), 20);
    let predicted = read_f32(model.forward(x).argmax(1).float());
    let correct = predicted.iter().zip(&labels).filter(|(p, l)| **p as usize == **l).count();
    assert_eq!(r.test_accuracy, correct as f64 / 20.0);
    // conv1's zero rank over all training images (the statistics subset is all of them here).
    let (x, _) = images(&train, &device);
    let mut tap = CaptureTap::only(vec![0]);
    model.forward_tapped(x, &mut tap);
    let z = read_f32(flatten_items(tap.pre[0].take().unwrap()));
    let channels = 4;
    let rows = z.len() / channels;
    let mean_rank: f64 = (0..channels)
        .map(|c| {
            let col = z.iter().skip(c).step_by(channels);
            let below = col.clone().filter(|&&v| v < 0.0).count() as f64;
            let equal = col.filter(|&&v| v == 0.0).count() as f64;
            100.0 * (below + equal / 2.0) / rows as f64
        })
        .sum::<f64>()
        / channels as f64;
    let got = r.layers["conv1"].zero_percentile_rank;
    assert!((got - mean_rank).abs() < 1e-3, "conv1 zero rank {got}, recomputed {mean_rank}");
}

/// Training on the folder (from scratch, no weights): a run stopped after one epoch and resumed
/// gives the numbers of an uninterrupted one, and the loss goes down.
#[test]
fn resnet50_trains_on_the_folder_and_resumes() {
    let root = scratch("train-data");
    imagenet_folder(&root);
    let d = root.to_str().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let o = out.to_str().unwrap();
        let args = [
            &["reproduce", "--model", "resnet50", "--data", d, "--out", o, "--preset", "fast", "--backend", "cpu", "--side", "64", "--width", "4"][..],
            &["--quiet", "--skip-bad-images", "--epochs", "3", "--retrain-epochs", "1", "--test-samples", "8"],
            extra,
        ]
        .concat();
        let out = trainer(&args);
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let whole = scratch("train-whole");
    run(&whole, &[]);
    let cut = scratch("train-cut");
    assert!(run(&cut, &["--stop-after", "1"]).contains("stopped after 1 epoch"));
    assert!(!cut.join("resnet50/results.json").exists());
    assert!(run(&cut, &["--resume"]).contains("resuming after epoch 1"));
    let read = |dir: &Path| Results::from_json(&std::fs::read_to_string(dir.join("resnet50/results.json")).unwrap()).unwrap();
    let (a, b) = (read(&whole), read(&cut));
    assert_eq!(a.epoch_loss.len(), 3);
    assert_eq!(a.epoch_loss, b.epoch_loss);
    assert_eq!(a.epoch_test_accuracy, b.epoch_test_accuracy);
    assert!(a.epoch_loss[2] < a.epoch_loss[0], "{:?}", a.epoch_loss);
    assert_eq!(a.layers["conv1"].zero_percentile_rank, b.layers["conv1"].zero_percentile_rank);
    // Resuming with other settings is refused, naming the checkpoint.
    let o = cut.to_str().unwrap();
    let other = trainer(&["reproduce", "--model", "resnet50", "--data", d, "--out", o, "--preset", "fast", "--backend", "cpu", "--side", "64", "--width", "4", "--quiet", "--skip-bad-images", "--epochs", "4", "--resume"]);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && stderr.contains("checkpoint") && !stderr.contains("panicked"), "{stderr}");
}
