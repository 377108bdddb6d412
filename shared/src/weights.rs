//! Pretrained weights in torchvision's layout, read by burn's own stores (`burn::store`): a
//! PyTorch state dict (`.pth`, e.g. torchvision's `resnet50-0676ba61.pth`) or a `.safetensors`
//! file. A tensor missing from the file, one the model does not have, or one of the wrong shape
//! is an error that names it; batch-norm running statistics are loaded with the rest.

use std::io::Read;
use std::path::Path;

use burn::store::{ApplyError, ApplyResult, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::finite::NAMES_SHOWN as SHOWN;
use crate::model::ResNet;

/// Why weights could not be loaded; each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: cannot read it: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("{path}: tensors the model does not have: {names}")]
    Unused { path: String, names: String },
    /// Tensors missing, of the wrong shape or type, or none matching at all.
    #[error("{path}: {report}")]
    Mismatch { path: String, report: String },
    #[error("{path}: {names} hold NaN or infinite values; the file is damaged or was saved from a diverged run: use other weights")]
    NonFinite { path: String, names: String },
}

/// torchvision names a block's projection `downsample.0` (conv) and `downsample.1` (batch-norm).
const REMAP: [(&str, &str); 2] = [(r"\.downsample\.0\.", ".downsample.conv."), (r"\.downsample\.1\.", ".downsample.bn.")];

/// A tensor's name as the file (torchvision's layout) spells it.
fn torchvision_name(ours: &str) -> String {
    ours.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
}

/// Tensors of a torchvision file that the model rightly has no place for.
fn ignorable(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Loads torchvision-layout ResNet weights into `model` (whose shape must match the file's).
pub fn load_resnet(mut model: ResNet, path: &Path) -> Result<ResNet, WeightsError> {
    let shown = path.display().to_string();
    let safetensors = is_safetensors(path)?;
    let load_error = |message: String| WeightsError::Load { path: shown.clone(), message };
    // Partial and unvalidated: burn's own errors speak of its API; ours are built from the
    // structured result below.
    let result: ApplyResult = if safetensors {
        let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true).validate(false);
        for (from, to) in REMAP {
            store = store.with_key_remapping(from, to);
        }
        model.load_from(&mut store).map_err(|e| load_error(format!("not a readable safetensors file ({e})")))?
    } else {
        let mut store = PytorchStore::from_file(path).allow_partial(true).validate(false);
        for (from, to) in REMAP {
            store = store.with_key_remapping(from, to);
        }
        model.load_from(&mut store).map_err(|e| load_error(format!("not a readable PyTorch state dict or safetensors file ({e})")))?
    };
    if let Some(report) = mismatch_report(&result) {
        return Err(WeightsError::Mismatch { path: shown, report });
    }
    let unused: Vec<String> = result.unused.iter().filter(|n| !ignorable(n)).map(|n| torchvision_name(n)).collect();
    if !unused.is_empty() {
        return Err(WeightsError::Unused { path: shown, names: crate::finite::few_names(&unused, SHOWN) });
    }
    let non_finite: Vec<String> = crate::finite::non_finite_tensors(&model).iter().map(|n| torchvision_name(n)).collect();
    if !non_finite.is_empty() {
        return Err(WeightsError::NonFinite { path: shown, names: crate::finite::few_names(&non_finite, SHOWN) });
    }
    Ok(model)
}

/// Whether the file at `path` is safetensors (else a PyTorch zip or pickle): safetensors starts
/// with an 8-byte little-endian header length, then the JSON header's '{' (the length may well
/// start with 0x80, a pickle's first byte); PyTorch writes a zip archive (torch.save since 1.6)
/// or a pickle (older torch.save).
fn is_safetensors(path: &Path) -> Result<bool, WeightsError> {
    let io = |source| WeightsError::Io { path: path.display().to_string(), source };
    let mut magic = [0u8; 9];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut magic)).map_err(io)?;
    Ok(n == 9 && magic[8] == b'{')
}

/// How many classes the classifier (`fc.weight`, `[classes, features]` in torchvision's layout)
/// of the file at `path` has; `None` where it has no such tensor of `features` columns.
pub fn classes_in_file(path: &Path, features: usize) -> Result<Option<usize>, WeightsError> {
    let shown = path.display().to_string();
    let load_error = |e: String| WeightsError::Load { path: shown.clone(), message: format!("not a readable PyTorch state dict or safetensors file ({e})") };
    let shape: Option<Vec<usize>> = if is_safetensors(path)? {
        let mut store = SafetensorsStore::from_file(path);
        store.get_tensor("fc.weight").map_err(|e| load_error(e.to_string()))?.map(|t| t.shape.as_slice().to_vec())
    } else {
        let mut store = PytorchStore::from_file(path);
        store.get_tensor("fc.weight").map_err(|e| load_error(e.to_string()))?.map(|t| t.shape.as_slice().to_vec())
    };
    Ok(match shape.as_deref() {
        Some([classes, f]) if *f == features => Some(*classes),
        _ => None,
    })
}

/// What keeps the file's tensors from fitting the model, in a user's words; `None` when they fit.
fn mismatch_report(result: &ApplyResult) -> Option<String> {
    let missing: Vec<String> = result.missing.iter().map(|(name, _)| torchvision_name(name)).collect();
    let mut shapes = Vec::new();
    let mut classes = None;
    let mut other = Vec::new();
    for e in &result.errors {
        match e {
            ApplyError::ShapeMismatch { path, expected, found } => {
                let name = torchvision_name(path);
                // burn keeps a linear layer's weight as [inputs, outputs]: the classes are last.
                let (expected, found) = (expected.as_slice(), found.as_slice());
                if name == "fc.weight" && expected.len() == 2 && found.len() == 2 && expected[0] == found[0] {
                    classes = Some((found[1], expected[1]));
                }
                shapes.push(format!("{name} is {found:?} in the file, {expected:?} in the model"));
            }
            ApplyError::DTypeMismatch { path, expected, found } => other.push(format!("{} is {found:?}, the model takes {expected:?}", torchvision_name(path))),
            ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => other.push(format!("{}: {message}", torchvision_name(path))),
        }
    }
    if missing.is_empty() && shapes.is_empty() && other.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if result.applied.is_empty() && shapes.is_empty() {
        parts.push(format!(
            "none of the model's {} tensors is in this file (it holds {} others): it is not a ResNet50 state dict in torchvision's layout",
            result.missing.len(),
            result.unused.len()
        ));
    } else if !missing.is_empty() {
        parts.push(format!("{} tensor(s) the model needs are missing: {}", missing.len(), crate::finite::few_names(&missing, SHOWN)));
    }
    if let Some((file, model)) = classes {
        parts.push(format!(
            "the weights have {file} classes, the data {model}: pretrained ImageNet weights need a folder whose class folders are ImageNet wnids (n01440764, ...), or a LOC_synset_mapping.txt that numbers its classes; or train a new classifier with --epochs"
        ));
    }
    if !shapes.is_empty() {
        parts.push(format!("{} tensor(s) differ in shape: {}", shapes.len(), crate::finite::few_names(&shapes, SHOWN)));
    }
    if !other.is_empty() {
        parts.push(crate::finite::few_names(&other, SHOWN));
    }
    parts.push("check that the file holds torchvision's ResNet50 (--width and the class count must match it)".into());
    Some(parts.join("; "))
}
