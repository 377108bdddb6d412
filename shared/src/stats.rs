//! Analysis kernels that run on the device: percentiles, two-value quantization, sliding-window
//! binarization, the zero pre-activation's percentile rank, and histograms of average signs.
//! Each reads back only its small result (a histogram, one scalar per neuron), never a per-sample
//! matrix. [`reference`] holds plain-Rust versions the tests compare against.
//!
//! Percentiles (and their convention) live in [`crate::percentile`]; re-exported here.

use burn::tensor::{Bool, IndexingUpdateOp, Int, Tensor};

pub use crate::percentile::{percentile_index, percentiles, percentiles_by_sort, percentiles_selected, percentiles_streamed};

use crate::figures::Histogram;
use crate::readback::values;

/// Replaces each pre-activation by the mean of the side of its neuron's threshold it falls on.
/// Fitted on one data subset, applied to any other.
#[derive(Clone, Debug)]
pub struct TwoValueQuantizer {
    /// `[1, neurons]`: values `>= threshold` go to `high`, the rest to `low`.
    pub threshold: Tensor<2>,
    pub low: Tensor<2>,
    pub high: Tensor<2>,
}

impl TwoValueQuantizer {
    /// `z` is `[samples, neurons]`, `threshold` `[1, neurons]`. A side with no samples (rank 0 or
    /// 100) takes the other side's mean, so the layer then outputs one constant per neuron.
    pub fn fit(z: Tensor<2>, threshold: Tensor<2>) -> Self {
        Self::fit_values(z.clone(), z, threshold)
    }

    /// Sides from the pre-activations `z`, means of `values` (`[samples, neurons]` each): with
    /// `values` the activations, the post-activation variant (each activation replaced by its
    /// side's mean activation; [`TwoValueQuantizer::apply`] still takes `z`).
    pub fn fit_values(z: Tensor<2>, values: Tensor<2>, threshold: Tensor<2>) -> Self {
        let [samples, _] = z.dims();
        let above = z.greater_equal(threshold.clone().expand(values.dims())).float();
        let n_high = above.clone().sum_dim(0); // [1, N]
        let sum_all = values.clone().sum_dim(0);
        let sum_high = (values * above).sum_dim(0);
        Self::from_sums(n_high, sum_high, sum_all, samples, threshold)
    }

    /// One quantizer per row of `thresholds` (`[ranks, neurons]`): sides from the
    /// pre-activations `z`, means of `values` (`z` itself, or the activations for the
    /// post-activation variant; `[samples, neurons]` each), as [`TwoValueQuantizer::fit_values`]
    /// per row; on the CPU backends in one pass for all rows.
    pub fn fit_rows(z: Tensor<2>, values: Tensor<2>, thresholds: Tensor<2>) -> Vec<Self> {
        let [samples, _] = z.dims();
        let rows = thresholds.dims()[0];
        let row = |t: &Tensor<2>, i| t.clone().narrow(0, i, 1);
        if let Some((n_high, sum_high, sum_all)) = crate::eval_ops::side_sums(&z, &values, &thresholds) {
            return (0..rows).map(|i| Self::from_sums(row(&n_high, i), row(&sum_high, i), sum_all.clone(), samples, row(&thresholds, i))).collect();
        }
        (0..rows).map(|i| Self::fit_values(z.clone(), values.clone(), row(&thresholds, i))).collect()
    }

    /// From per-neuron counts and sums (`[1, neurons]` each) over `samples` values: how many lie
    /// at or above the threshold, their sum, and the sum of all (summed batch by batch where the
    /// values do not fit at once).
    pub fn from_sums(n_high: Tensor<2>, sum_high: Tensor<2>, sum_all: Tensor<2>, samples: usize, threshold: Tensor<2>) -> Self {
        let n_low = n_high.clone().neg().add_scalar(samples as f32);
        let sum_low = sum_all - sum_high.clone();
        let high = sum_high / n_high.clone().clamp_min(1.0);
        let low = sum_low / n_low.clone().clamp_min(1.0);
        let high = high.clone().mask_where(n_high.equal_elem(0.0), low.clone());
        let low = low.mask_where(n_low.equal_elem(0.0), high.clone());
        Self { threshold, low, high }
    }

    pub fn apply(&self, z: Tensor<2>) -> Tensor<2> {
        crate::eval_ops::two_values(z, &self.threshold, &self.low, &self.high)
    }

    /// Share of neurons whose two values lie on the same side of 0 (both above, or both at or
    /// below): for pre-activation values, the neurons a ReLU or a sigmoid cannot tell apart by
    /// side; under ReLU, two values at or below 0 make the neuron a constant 0.
    pub fn same_side_share(&self) -> Tensor<1> {
        let on_low = self.low.clone().greater_elem(0.0);
        let on_high = self.high.clone().greater_elem(0.0);
        on_low.equal(on_high).float().mean().reshape([1])
    }
}

/// 1 where `lo <= z <= hi` (per neuron, `[1, neurons]` bounds), else 0.
pub fn binarize_window(z: Tensor<2>, lo: Tensor<2>, hi: Tensor<2>) -> Tensor<2> {
    crate::eval_ops::inside(z, &lo, &hi)
}

/// Per-neuron percentile rank of the value 0 (`100 * (#below + #equal / 2) / S`), `[neurons]`.
pub fn zero_percentile_ranks(z: Tensor<2>) -> Vec<f64> {
    let [samples, neurons] = z.dims();
    let below = z.clone().lower_elem(0.0).float().sum_dim(0);
    let equal = z.equal_elem(0.0).float().sum_dim(0);
    let rank = (below + equal * 0.5) * (100.0 / samples.max(1) as f32);
    read_f32(rank.reshape([neurons])).into_iter().map(f64::from).collect()
}

/// Average sign `(pos - neg) / (pos + neg)` and where it is defined (`pos + neg > 0`).
pub fn average_sign(pos: Tensor<2>, neg: Tensor<2>) -> (Tensor<2>, Tensor<2, Bool>) {
    let total = pos.clone() + neg.clone();
    let defined = total.clone().greater_elem(0.0);
    ((pos - neg) / total.clamp_min(1.0), defined)
}

/// Histogram of the defined entries of `values` (all in `[-1, 1]`) in `bins` equal bins, counted
/// on the device by a scatter-add into `bins` integer counters.
pub fn sign_histogram(values: Tensor<2>, defined: Tensor<2, Bool>, bins: usize) -> Histogram {
    let n = values.dims().iter().product::<usize>();
    let device = values.device();
    let idx = bin_indices(values.reshape([n]), bins);
    let ones = defined.reshape([n]).int();
    let counts = Tensor::<1, Int>::zeros([bins], &device).scatter(0, idx, ones, IndexingUpdateOp::Add);
    let counts = read_i64(counts).into_iter().map(|c| c.max(0) as u64).collect();
    let mut h = Histogram::empty(-1.0, 1.0, bins);
    h.counts = counts;
    h
}

/// Bin of each value of `[-1, 1]` among `bins` equal bins; 1.0 lands in the last bin.
fn bin_indices(values: Tensor<1>, bins: usize) -> Tensor<1, Int> {
    ((values + 1.0) * (bins as f32 / 2.0)).clamp(0.0, bins as f32 - 0.5).int()
}

/// For each (class, neuron), the fraction of that class's categorised samples in the neuron's low
/// category; `None` where the class has no such sample. A sample is categorised when its average
/// sign is defined and not exactly 0 (low: positive, high: negative; 0 is in neither).
/// `avg`/`defined` are `[samples, neurons]`, `labels` `[samples]`. Counting is two matmuls on the
/// device.
pub fn class_low_fractions(
    avg: Tensor<2>,
    defined: Tensor<2, Bool>,
    labels: Tensor<1, Int>,
    classes: usize,
) -> Vec<Vec<Option<f64>>> {
    let [_, neurons] = avg.dims();
    let categorised = avg.clone().not_equal_elem(0.0).bool_and(defined.clone());
    let def = categorised.float();
    let low = avg.greater_elem(0.0).bool_and(defined).float();
    let onehot_t = labels.one_hot::<2>(classes).float().transpose(); // [classes, samples]
    let low_c = read_f32(onehot_t.clone().matmul(low));
    let def_c = read_f32(onehot_t.matmul(def));
    (0..classes)
        .map(|c| {
            (0..neurons)
                .map(|n| {
                    let d = def_c[c * neurons + n];
                    (d > 0.0).then(|| low_c[c * neurons + n] as f64 / d as f64)
                })
                .collect()
        })
        .collect()
}

/// Per neuron (column): the share of its defined samples whose |average sign| is at least
/// `threshold` (0 where none is defined).
pub fn outer_fraction_per_neuron(avg: Tensor<2>, defined: Tensor<2, Bool>, threshold: f32) -> Vec<f64> {
    let defined = defined.float();
    let outer = avg.abs().greater_equal_elem(threshold).float() * defined.clone();
    let outer = read_f32(outer.sum_dim(0));
    let defined = read_f32(defined.sum_dim(0));
    outer.iter().zip(&defined).map(|(&o, &d)| if d > 0.0 { o as f64 / d as f64 } else { 0.0 }).collect()
}

pub fn read_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    values(t.into_data()).expect("converted to f32")
}

pub fn read_i64<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    values(t.into_data()).expect("converted to i64")
}

/// Plain-Rust versions of the kernels, for tests. Matrices are row-major `[samples][neurons]`.
pub mod reference {
    use super::percentile_index;

    fn column(z: &[Vec<f32>], n: usize) -> Vec<f32> {
        z.iter().map(|row| row[n]).collect()
    }

    pub fn percentile(z: &[Vec<f32>], neuron: usize, rank: f64) -> f32 {
        let mut col = column(z, neuron);
        col.sort_by(f32::total_cmp);
        col[percentile_index(rank, col.len())]
    }

    /// Quantized value of `x` for `neuron` with threshold `t`, means fitted on `z`.
    pub fn quantize(z: &[Vec<f32>], neuron: usize, t: f32, x: f32) -> f32 {
        let col = column(z, neuron);
        let (hi, lo): (Vec<f32>, Vec<f32>) = col.iter().partition(|&&v| v >= t);
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let (mh, ml) = match (hi.is_empty(), lo.is_empty()) {
            (false, false) => (mean(&hi), mean(&lo)),
            (true, _) => (mean(&lo), mean(&lo)),
            (_, true) => (mean(&hi), mean(&hi)),
        };
        (if x >= t { mh } else { ml }) as f32
    }

    pub fn window(x: f32, lo: f32, hi: f32) -> f32 {
        if x >= lo && x <= hi { 1.0 } else { 0.0 }
    }

    pub fn zero_rank(z: &[Vec<f32>], neuron: usize) -> f64 {
        let col = column(z, neuron);
        let below = col.iter().filter(|&&v| v < 0.0).count() as f64;
        let equal = col.iter().filter(|&&v| v == 0.0).count() as f64;
        100.0 * (below + equal / 2.0) / col.len() as f64
    }

    /// Same binning rule as the device kernel, in the same f32 arithmetic.
    pub fn sign_histogram(pos: &[Vec<f32>], neg: &[Vec<f32>], bins: usize) -> Vec<u64> {
        let mut counts = vec![0u64; bins];
        for (pr, nr) in pos.iter().zip(neg) {
            for (&p, &n) in pr.iter().zip(nr) {
                if p + n > 0.0 {
                    let s = (p - n) / (p + n);
                    let b = ((s + 1.0) * (bins as f32 / 2.0)).clamp(0.0, bins as f32 - 0.5) as usize;
                    counts[b] += 1;
                }
            }
        }
        counts
    }
}
