//! Pretrained weights in torchvision's layout, read by burn's own stores (`burn::store`): a
//! PyTorch state dict (`.pth`, e.g. torchvision's `resnet50-0676ba61.pth`) or a `.safetensors`
//! file. A tensor missing from the file, one the model does not have, or one of the wrong shape
//! is an error that names it; batch-norm running statistics are loaded with the rest.

use std::io::Read;
use std::path::Path;

use burn::store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::model::ResNet;

/// Why weights could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: cannot read it: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("{path}: tensors the model does not have: {names}")]
    Unused { path: String, names: String },
}

/// torchvision names a block's projection `downsample.0` (conv) and `downsample.1` (batch-norm).
const REMAP: [(&str, &str); 2] = [(r"\.downsample\.0\.", ".downsample.conv."), (r"\.downsample\.1\.", ".downsample.bn.")];

/// Tensors of a torchvision file that the model rightly has no place for.
fn ignorable(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Loads torchvision-layout ResNet weights into `model` (whose shape must match the file's).
pub fn load_resnet(mut model: ResNet, path: &Path) -> Result<ResNet, WeightsError> {
    let shown = path.display().to_string();
    let io = |source| WeightsError::Io { path: shown.clone(), source };
    let mut magic = [0u8; 9];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.read(&mut magic).map_err(io)?;
    // safetensors: an 8-byte little-endian header length, then the JSON header's '{' (its length
    // may well start with 0x80, a pickle's first byte). Otherwise PyTorch: a zip archive
    // (torch.save since 1.6) or a pickle (older torch.save).
    let safetensors = n == 9 && magic[8] == b'{';
    let pytorch = !safetensors;
    let load_error = |message: String| WeightsError::Load { path: shown.clone(), message };
    let result: ApplyResult = if pytorch {
        let mut store = PytorchStore::from_file(path);
        for (from, to) in REMAP {
            store = store.with_key_remapping(from, to);
        }
        model.load_from(&mut store).map_err(|e| load_error(e.to_string()))?
    } else {
        let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter);
        for (from, to) in REMAP {
            store = store.with_key_remapping(from, to);
        }
        model.load_from(&mut store).map_err(|e| load_error(e.to_string()))?
    };
    let unused: Vec<&String> = result.unused.iter().filter(|n| !ignorable(n)).collect();
    if !unused.is_empty() {
        let names = unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(WeightsError::Unused { path: shown, names });
    }
    Ok(model)
}
