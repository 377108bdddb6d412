//! Layer rotation (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful
//! indicator of generalization in deep networks?", arXiv 1806.01603, the same authors'
//! follow-up): per layer, the cosine distance between its flattened weights and their initial
//! values. 0: not rotated; 1: orthogonal to where it started.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::stats::read_f32;

/// One layer's rotation after each epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRotation {
    pub layer: String,
    #[serde(with = "crate::json::opt_f64s")]
    pub per_epoch: Vec<f64>,
}

/// The layers' weights as they start (detached copies on the inner device).
pub fn snapshot(weights: Vec<(String, Tensor<1>)>) -> Vec<(String, Tensor<1>)> {
    weights.into_iter().map(|(n, w)| (n, w.inner().detach())).collect()
}

/// Per layer of `start`, `1 - cos(now, start)`; computed on the device, read back once.
pub fn cosine_distances(now: &[(String, Tensor<1>)], start: &[(String, Tensor<1>)]) -> Vec<f64> {
    cosines(now, start).map(|c| distances(read_f32(c))).unwrap_or_default()
}

/// `1 - cos` for cosines read back from [`cosines`].
pub fn distances(cosines: Vec<f32>) -> Vec<f64> {
    cosines.into_iter().map(|c| 1.0 - c as f64).collect()
}

/// Per layer of `start`, `cos(now, start)` as one device tensor (None for no layers): read it
/// back with an awaited read where blocking reads are not allowed (WebGPU).
pub fn cosines(now: &[(String, Tensor<1>)], start: &[(String, Tensor<1>)]) -> Option<Tensor<1>> {
    if start.is_empty() {
        return None;
    }
    let parts: Vec<Tensor<1>> = now
        .iter()
        .zip(start)
        .map(|((_, a), (_, b))| {
            let a = a.clone().inner();
            let dot = (a.clone() * b.clone()).sum();
            let norms = (a.clone() * a).sum().sqrt() * (b.clone() * b.clone()).sum().sqrt();
            dot / norms
        })
        .collect();
    Some(Tensor::cat(parts, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn distances_of_known_pairs() {
        let d = Device::flex();
        let t = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &d);
        let start = vec![("a".to_string(), t(vec![1.0, 0.0])), ("b".into(), t(vec![3.0, 4.0])), ("c".into(), t(vec![1.0, 2.0]))];
        let now = vec![("a".to_string(), t(vec![0.0, 5.0])), ("b".into(), t(vec![6.0, 8.0])), ("c".into(), t(vec![-1.0, -2.0]))];
        let got = cosine_distances(&now, &start);
        for (g, want) in got.iter().zip([1.0, 0.0, 2.0]) {
            assert!((g - want).abs() < 1e-6, "{got:?}");
        }
    }
}
