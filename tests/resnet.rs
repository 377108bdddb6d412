//! ResNet50 against PyTorch: a reduced-width network with torchvision's layout and names, its
//! weights and batch-norm statistics imported from both a `.pth` and a `.safetensors` file, gives
//! PyTorch's logits and studied-layer pre-activations (fixture: scripts/resnet_fixture.py); the
//! full-width model asks for exactly torchvision's resnet50 tensors; bad files are named errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::model::{CaptureTap, ResNetConfig, Stem, TappedModel, flatten_items};
use hidden_neurons::stats::read_f32;
use hidden_neurons::weights::load_resnet;
use serde::Deserialize;

#[path = "common/mod.rs"]
mod common;
use common::{read_safetensors, write_safetensors};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/resnet").join(name)
}

#[derive(Deserialize)]
struct Expected {
    config: Config,
    input: Vec<f32>,
    logits: Vec<f32>,
    layers: BTreeMap<String, Layer>,
}

#[derive(Deserialize)]
struct Config {
    side: usize,
    width: usize,
    blocks: Vec<usize>,
    classes: usize,
}

#[derive(Deserialize)]
struct Layer {
    values: Vec<f32>,
}

fn expected() -> Expected {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn tiny_config(e: &Expected) -> ResNetConfig {
    ResNetConfig { side: e.config.side, width: e.config.width, blocks: e.config.blocks.clone(), classes: e.config.classes, stem: Stem::Imagenet }
}

/// max |ours - theirs| / max |theirs|.
fn relative_error(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    ours.iter().zip(theirs).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn imported_weights_give_pytorch_s_outputs() {
    let e = expected();
    let device = Device::flex();
    let batch = e.logits.len() / e.config.classes;
    for file in ["tiny.safetensors", "tiny.pth"] {
        device.seed(99); // a random start, so that only imported values can match
        let model = load_resnet(tiny_config(&e).init(&device), &fixture(file)).unwrap_or_else(|err| panic!("{err}"));
        let names: Vec<String> = model.layers().iter().map(|l| l.name.clone()).collect();
        assert_eq!(names.len(), 17);
        assert_eq!((names[0].as_str(), names[1].as_str(), names[16].as_str()), ("conv1", "2a", "5c"));
        let x = Tensor::<2>::from_data(TensorData::new(e.input.clone(), [batch, e.input.len() / batch]), &device);
        let wanted: Vec<usize> = e.layers.keys().map(|n| names.iter().position(|m| m == n).unwrap()).collect();
        let mut tap = CaptureTap::only(wanted.clone());
        let logits = read_f32(model.forward_tapped(x, &mut tap));
        let err = relative_error(&logits, &e.logits);
        assert!(err < 1e-4, "{file}: logits differ from PyTorch's by {err} (relative)");
        // The same network before the import is far off, so the match is the import's doing.
        device.seed(99);
        let x = Tensor::<2>::from_data(TensorData::new(e.input.clone(), [batch, e.input.len() / batch]), &device);
        let before = relative_error(&read_f32(tiny_config(&e).init(&device).forward(x)), &e.logits);
        assert!(before > 0.1, "{file}: a random network already matches ({before})");
        for (name, &l) in e.layers.keys().zip(&wanted) {
            let ours = read_f32(flatten_items(tap.pre[l].take().unwrap()));
            let err = relative_error(&ours, &e.layers[name].values);
            assert!(err < 1e-4, "{file}: layer {name} differs from PyTorch's by {err} (relative)");
        }
    }
}

/// The fixture's tensors, read back from its safetensors file.
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    read_safetensors(&fixture("tiny.safetensors"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-resnet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("weights.safetensors")
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let e = expected();
    let device = Device::flex();
    let load = |tensors: &[(String, Vec<usize>, Vec<f32>)], name: &str| {
        let path = scratch(name);
        write_safetensors(&path, tensors);
        let err = load_resnet(tiny_config(&e).init(&device), &path).err().map(|e| e.to_string()).unwrap_or_default();
        (path, err)
    };
    let all = tiny_tensors();
    assert!(all.len() > 200, "{} tensors", all.len());

    let missing: Vec<_> = all.iter().filter(|t| t.0 != "layer3.2.bn2.running_var").cloned().collect();
    let (path, err) = load(&missing, "missing");
    assert!(err.contains(&path.display().to_string()) && err.contains("layer3.2.bn2.running_var"), "{err}");

    let mut extra = all.clone();
    extra.push(("layer9.0.conv1.weight".into(), vec![2], vec![0.0, 1.0]));
    let (_, err) = load(&extra, "extra");
    assert!(err.contains("layer9.0.conv1.weight"), "{err}");

    let misshaped: Vec<_> = all.iter().map(|t| if t.0 == "fc.weight" { ("fc.weight".into(), vec![10, 7], vec![0.5; 70]) } else { t.clone() }).collect();
    let (_, err) = load(&misshaped, "shape");
    assert!(err.contains("fc.weight"), "{err}");

    let garbage = scratch("garbage");
    std::fs::write(&garbage, b"not weights at all").unwrap();
    let err = load_resnet(tiny_config(&e).init(&device), &garbage).err().expect("refused").to_string();
    assert!(err.contains(&garbage.display().to_string()), "{err}");
}

#[test]
fn full_width_resnet50_loads_torchvision_s_tensors() {
    // Every tensor of torchvision's resnet50 state dict, by name and shape (zeros; the values of
    // the real files do not matter to the names), through the same loader.
    let keys: Vec<(String, Vec<usize>)> = serde_json::from_str(&std::fs::read_to_string(fixture("torchvision_resnet50_keys.json")).unwrap()).unwrap();
    assert_eq!(keys.len(), 320);
    // num_batches_tracked is an int64 counter with no place in the model: left out of the file
    // here, and ignored by the loader where present (the tiny .pth has them).
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = keys
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, shape)| {
            let n = shape.iter().product();
            (k, shape, vec![0.0; n])
        })
        .collect();
    let path = scratch("full");
    write_safetensors(&path, &tensors);
    let device = Device::flex();
    let model = load_resnet(ResNetConfig::resnet50().init(&device), &path).unwrap_or_else(|e| panic!("{e}"));
    let layers = model.layers();
    assert_eq!(layers.len(), 17);
    assert_eq!((layers[0].neurons, layers[0].positions), (64, 112 * 112));
    assert_eq!((layers[16].name.as_str(), layers[16].neurons, layers[16].positions), ("5c", 2048, 49));
    let _ = std::fs::remove_file(path);
}

/// A safetensors file whose header length starts with the byte 0x80 (the first byte of a pickle:
/// torchvision's full ResNet50 as safetensors has such a header) is still read as safetensors.
#[test]
fn safetensors_whose_length_starts_like_a_pickle_load() {
    let e = expected();
    let bytes = std::fs::read(fixture("tiny.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Pad the JSON header with spaces (allowed by the format) to a length whose low byte is 0x80.
    let padded = (len / 256 + 1) * 256 + 0x80;
    let mut out = (padded as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&bytes[8..8 + len]);
    out.extend(std::iter::repeat_n(b' ', padded - len));
    out.extend_from_slice(&bytes[8 + len..]);
    assert_eq!(out[0], 0x80);
    let path = scratch("pickle-like");
    std::fs::write(&path, out).unwrap();
    let device = Device::flex();
    let model = load_resnet(tiny_config(&e).init(&device), &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.layers().len(), 17);
}

/// Weight files a user might hold by mistake get errors in a user's words: what is missing or
/// misshaped, by torchvision's names, and what to do; never burn-store's hints to a programmer.
#[test]
fn weight_file_errors_speak_to_a_user() {
    let e = expected();
    let device = Device::flex();
    let all = tiny_tensors();
    let load = |tensors: &[(String, Vec<usize>, Vec<f32>)], name: &str| {
        let path = scratch(name);
        write_safetensors(&path, tensors);
        let err = load_resnet(tiny_config(&e).init(&device), &path).err().map(|e| e.to_string()).expect("refused");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("allow_partial") && !err.contains("Hint") && !err.contains("ShapeMismatch"), "{err}");
        err
    };
    // A file of some other network: none of ResNet50's tensors.
    let other: Vec<_> = (0..12).map(|i| (format!("encoder.block{i}.weight"), vec![4], vec![0.5; 4])).collect();
    let err = load(&other, "other-network");
    assert!(err.contains("none of the model's") && err.contains("not a ResNet50"), "{err}");
    // Many missing: a few names, then a count.
    let half: Vec<_> = all.iter().filter(|t| !t.0.starts_with("layer3.")).cloned().collect();
    let err = load(&half, "half");
    assert!(err.contains("missing") && err.contains("more"), "{err}");
    // A projection's names are given as torchvision spells them.
    let no_projection: Vec<_> = all.iter().filter(|t| t.0 != "layer2.0.downsample.1.running_mean").cloned().collect();
    let err = load(&no_projection, "projection");
    assert!(err.contains("layer2.0.downsample.1.running_mean"), "{err}");
    // 1000-class weights for 10 classes: said in classes.
    let thousand: Vec<_> = all
        .iter()
        .map(|t| match t.0.as_str() {
            "fc.weight" => (t.0.clone(), vec![1000, t.1[1]], vec![0.01; 1000 * t.1[1]]),
            "fc.bias" => (t.0.clone(), vec![1000], vec![0.0; 1000]),
            _ => t.clone(),
        })
        .collect();
    let err = load(&thousand, "thousand");
    assert!(err.contains("the weights have 1000 classes, the data 10") && err.contains("wnid"), "{err}");
    assert_eq!(hidden_neurons::weights::classes_in_file(&scratch("thousand"), 32 * e.config.width).unwrap(), Some(1000));
    assert_eq!(hidden_neurons::weights::classes_in_file(&fixture("tiny.pth"), 32 * e.config.width).unwrap(), Some(10));
}

/// NaN or infinity anywhere in a weight file (here conv1's weights, and a batch-norm running
/// variance) is refused, naming the tensor.
#[test]
fn non_finite_weights_are_refused() {
    let e = expected();
    let device = Device::flex();
    for (tensor, bad) in [("conv1.weight", f32::NAN), ("layer4.2.bn3.running_var", f32::INFINITY)] {
        let tensors: Vec<_> = tiny_tensors()
            .into_iter()
            .map(|mut t| {
                if t.0 == tensor {
                    t.2[3] = bad;
                }
                t
            })
            .collect();
        let path = scratch(&format!("non-finite-{tensor}"));
        write_safetensors(&path, &tensors);
        let err = load_resnet(tiny_config(&e).init(&device), &path).err().map(|e| e.to_string()).expect("refused");
        assert!(err.contains(tensor) && err.contains("NaN or infinite") && err.contains(&path.display().to_string()), "{err}");
    }
}
