//! ResNet50 against PyTorch: a reduced-width network with torchvision's layout and names, its
//! weights and batch-norm statistics imported from both a `.pth` and a `.safetensors` file, gives
//! PyTorch's logits and studied-layer pre-activations (fixture: scripts/resnet_fixture.py); the
//! full-width model asks for exactly torchvision's resnet50 tensors; bad files are named errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use hidden_neurons::model::{CaptureTap, ResNetConfig, TappedModel, flatten_items};
use hidden_neurons::stats::read_f32;
use hidden_neurons::weights::load_resnet;
use serde::Deserialize;

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
    ResNetConfig { side: e.config.side, width: e.config.width, blocks: e.config.blocks.clone(), classes: e.config.classes }
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

/// A safetensors file of f32 tensors (name, shape, values), written by hand.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + 4 * values.len();
        header.insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    for (_, _, values) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

/// The fixture's tensors, read back from its safetensors file.
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture("tiny.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter(|(_, v)| v["dtype"] == "F32")
        .map(|(k, v)| {
            let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
            let [a, b]: [usize; 2] = serde_json::from_value(v["data_offsets"].clone()).unwrap();
            (k.clone(), shape, data[a..b].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        })
        .collect()
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
