//! Per-neuron percentiles at any scale, on the device, streaming over batches.
//!
//! Convention (used everywhere): for `S` samples sorted ascending, the `r`-th percentile is the
//! value at index `floor(r/100 * (S-1) + 0.5)` ("nearest rank", no interpolation), so every
//! threshold is a value the neuron actually took.
//!
//! [`percentiles_streamed`] never sorts and never holds more than one batch: it is an exact
//! selection by repeated bucketing. Each (rank, neuron) keeps an interval `[lo, hi]` of data
//! values known to hold its answer. A pass over the data counts, on the device, how many values
//! fall below the interval, in each of [`BUCKETS`] equal buckets of it, and above it; the
//! cumulative counts name the bucket holding the wanted index. A second pass takes the smallest
//! and largest value inside that bucket as the new interval. Because the bucket of a value is a
//! monotone function of it, the counts are exact whatever the float rounding; because the
//! interval's two ends always land in different buckets, each round drops at least one distinct
//! value, and rounds stop once every interval is a single value (in practice after two or three
//! rounds: each divides the interval by [`BUCKETS`]). Memory: the counters
//! (`(BUCKETS + 2) x ranks x neurons`) and one chunk of the batch at a time.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// Buckets per interval in the later rounds (one interval per rank and neuron).
pub const BUCKETS: usize = 256;
/// Buckets of the first round, shared by all ranks (one interval per neuron).
pub const FIRST_BUCKETS: usize = 4096;

/// Elements of the `[rows, ranks * neurons]` working tensors a round processes at once.
const CHUNK_ELEMENTS: usize = 1 << 23;

/// Rounds after which a selection stops even if some interval still holds two values: only
/// non-finite data (an infinite or NaN pre-activation) can get there.
const MAX_ROUNDS: usize = 64;

/// Index of the `rank`-th percentile among `samples` sorted values.
pub fn percentile_index(rank: f64, samples: usize) -> usize {
    let last = samples.saturating_sub(1);
    ((rank.clamp(0.0, 100.0) / 100.0 * last as f64 + 0.5).floor() as usize).min(last)
}

/// Values up to which [`percentiles`] sorts rather than selects (2^27, 0.5 GB of f32): measured on
/// burn's flex CPU backend (`trainer bench --percentiles`), the sort is 20-35x faster from 10^6 to
/// 10^8 values and needs 841 MB at 10^8 (the selection 602 MB); beyond, its memory grows past the
/// selection's, which also streams (ResNet50's conv1: 8 x 10^8 values for 1000 images).
pub const SORT_LIMIT: usize = 1 << 27;

/// Per-neuron percentiles of `z` (`[samples, neurons]`), `[ranks.len(), neurons]`: the sort up to
/// [`SORT_LIMIT`] values, the exact selection of [`percentiles_streamed`] over row chunks of `z`
/// beyond. Both give the same values (tests/kernels.rs).
pub fn percentiles(z: Tensor<2>, ranks: &[f64]) -> Tensor<2> {
    if z.dims().iter().product::<usize>() <= SORT_LIMIT {
        return percentiles_by_sort(z, ranks);
    }
    percentiles_selected(z, ranks)
}

/// [`percentiles`] by the streamed selection whatever the size.
pub fn percentiles_selected(z: Tensor<2>, ranks: &[f64]) -> Tensor<2> {
    let [rows, neurons] = z.dims();
    let device = z.device();
    let step = rows_per_chunk(ranks.len(), neurons);
    percentiles_streamed(ranks, neurons, &device, |sink| {
        for start in (0..rows).step_by(step) {
            sink(z.clone().narrow(0, start, step.min(rows - start)));
        }
    })
}

/// The sort-based percentiles (the whole matrix sorted along the sample axis; on wgpu burn's sort
/// runs on the host).
pub fn percentiles_by_sort(z: Tensor<2>, ranks: &[f64]) -> Tensor<2> {
    let [samples, _] = z.dims();
    let device = z.device();
    let idx: Vec<usize> = ranks.iter().map(|&r| percentile_index(r, samples)).collect();
    // On the CPU backends: each column's order statistics by selection, not a sort.
    if let Some(t) = crate::eval_ops::order_statistics(&z, &idx) {
        return t;
    }
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx.into_iter().map(|i| i as i64).collect(), [ranks.len()]), &device);
    z.sort(0).select(0, idx)
}

/// Per-neuron percentiles `[ranks.len(), neurons]` of data that `replay` streams: each call of
/// `replay` must hand every batch (`[rows, neurons]`, on `device`) to the sink it receives, in
/// any order, and the same data each time (it is called a few times). No data: all NaN.
pub fn percentiles_streamed(ranks: &[f64], neurons: usize, device: &Device, mut replay: impl FnMut(&mut dyn FnMut(Tensor<2>))) -> Tensor<2> {
    // Round 0: the count and each neuron's extremes.
    let mut samples = 0usize;
    let mut range: Option<(Tensor<2>, Tensor<2>)> = None;
    replay(&mut |z: Tensor<2>| {
        samples += z.dims()[0];
        if z.dims()[0] == 0 {
            return;
        }
        let (lo, hi) = (z.clone().min_dim(0), z.max_dim(0));
        range = Some(match range.take() {
            None => (lo, hi),
            Some((l, h)) => (l.min_pair(lo), h.max_pair(hi)),
        });
    });
    let Some((lo, hi)) = range else {
        return Tensor::full([ranks.len(), neurons], f32::NAN, device);
    };
    if ranks.is_empty() {
        return Tensor::zeros([0, neurons], device);
    }
    // The extremes are known now; each other index is selected once, however many ranks share it
    // (the sliding window's bounds overlap).
    let last = samples - 1;
    let wanted: Vec<usize> = ranks.iter().map(|&r| percentile_index(r, samples)).collect();
    let mut inner: Vec<usize> = wanted.iter().copied().filter(|&i| i != 0 && i != last).collect();
    inner.sort_unstable();
    inner.dedup();
    let selected = (!inner.is_empty()).then(|| select(&inner, lo.clone(), hi.clone(), neurons, device, &mut replay));
    let rows: Vec<Tensor<2>> = wanted
        .iter()
        .map(|&i| match inner.binary_search(&i) {
            _ if i == 0 => lo.clone(),
            _ if i == last => hi.clone(),
            Ok(j) => selected.clone().expect("selected").narrow(0, j, 1),
            Err(_) => unreachable!("every inner index is selected"),
        })
        .collect();
    Tensor::cat(rows, 0)
}

/// The values at sorted indices `indices` of each column (`[indices.len(), neurons]`), given the
/// columns' extremes `lo`, `hi` (`[1, neurons]`).
fn select(indices: &[usize], lo: Tensor<2>, hi: Tensor<2>, neurons: usize, device: &Device, replay: &mut impl FnMut(&mut dyn FnMut(Tensor<2>))) -> Tensor<2> {
    let k = indices.len();
    let width = k * neurons;
    let idx: Vec<i64> = indices.iter().flat_map(|&i| std::iter::repeat_n(i as i64, neurons)).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [1, width]), device);
    let step = rows_per_chunk(k, neurons);

    // Round 1 is shared by all ranks (one interval per neuron): many buckets, no copy per rank.
    let scale = bucket_scale(&lo, &hi, FIRST_BUCKETS);
    let mut counts = Tensor::<2, Int>::zeros([FIRST_BUCKETS + 2, neurons], device);
    replay(&mut |z: Tensor<2>| {
        for chunk in row_chunks(z, step * k) {
            let b = bucket_of(chunk, &lo, &hi, &scale, FIRST_BUCKETS);
            counts = counts.clone().scatter(0, b.clone(), b.ones_like(), IndexingUpdateOp::Add);
        }
    });
    let (lo, hi, scale) = (lo.repeat_dim(1, k), hi.repeat_dim(1, k), scale.repeat_dim(1, k));
    let target = target_bucket(counts.repeat_dim(1, k), &idx);
    let (mut lo, mut hi) = narrow(replay, (&lo, &hi), &scale, &target, FIRST_BUCKETS, k, step);

    for _ in 0..MAX_ROUNDS {
        if lo.clone().equal(hi.clone()).all().into_scalar() {
            break;
        }
        let scale = bucket_scale(&lo, &hi, BUCKETS);
        let mut counts = Tensor::<2, Int>::zeros([BUCKETS + 2, width], device);
        replay(&mut |z: Tensor<2>| {
            for chunk in row_chunks(z, step) {
                let b = bucket_of(chunk.repeat_dim(1, k), &lo, &hi, &scale, BUCKETS);
                counts = counts.clone().scatter(0, b.clone(), b.ones_like(), IndexingUpdateOp::Add);
            }
        });
        let target = target_bucket(counts, &idx);
        (lo, hi) = narrow(replay, (&lo, &hi), &scale, &target, BUCKETS, k, step);
    }
    lo.reshape([k, neurons])
}

/// The bucket holding each column's index `idx` (`[1, width]`): the number of buckets whose
/// cumulative count (`counts` is `[buckets, width]`) is at most `idx`.
fn target_bucket(counts: Tensor<2, Int>, idx: &Tensor<2, Int>) -> Tensor<2, Int> {
    let dims = counts.dims();
    counts.cumsum(0).lower_equal(idx.clone().expand(dims)).int().sum_dim(0)
}

/// The narrowing pass: the smallest and largest value of each column's `target` bucket
/// (`[1, k * neurons]` each).
fn narrow(
    replay: &mut impl FnMut(&mut dyn FnMut(Tensor<2>)),
    (lo, hi): (&Tensor<2>, &Tensor<2>),
    scale: &Tensor<2>,
    target: &Tensor<2, Int>,
    buckets: usize,
    k: usize,
    step: usize,
) -> (Tensor<2>, Tensor<2>) {
    let mut new: Option<(Tensor<2>, Tensor<2>)> = None;
    replay(&mut |z: Tensor<2>| {
        for chunk in row_chunks(z, step) {
            let v = chunk.repeat_dim(1, k);
            let dims = v.dims();
            let outside = bucket_of(v.clone(), lo, hi, scale, buckets).not_equal(target.clone().expand(dims));
            let l = v.clone().mask_fill(outside.clone(), f32::INFINITY).min_dim(0);
            let h = v.mask_fill(outside, f32::NEG_INFINITY).max_dim(0);
            new = Some(match new.take() {
                None => (l, h),
                Some((a, b)) => (a.min_pair(l), b.max_pair(h)),
            });
        }
    });
    new.expect("the data of round 0")
}

/// `buckets / (hi - lo)` per column, 0 for a single-valued interval, capped so that it stays
/// finite for the tiniest intervals.
fn bucket_scale(lo: &Tensor<2>, hi: &Tensor<2>, buckets: usize) -> Tensor<2> {
    let span = hi.clone() - lo.clone();
    let flat = span.clone().lower_equal_elem(0.0);
    (span.clamp_min(f32::MIN_POSITIVE).recip() * buckets as f32).clamp_max(1e37).mask_fill(flat, 0.0)
}

/// Bucket of each value against its column's interval starting at `lo` (`[1, width]`, with
/// `scale` from [`bucket_scale`]): 0 below, 1..=buckets inside, buckets + 1 above. Exactness
/// needs only that it is monotone in the value and the same in both passes of a round;
/// progress, that the interval's two ends land in different buckets (1 and buckets).
fn bucket_of(v: Tensor<2>, lo: &Tensor<2>, hi: &Tensor<2>, scale: &Tensor<2>, buckets: usize) -> Tensor<2, Int> {
    let dims = v.dims();
    let (lo, hi) = (lo.clone().expand(dims), hi.clone().expand(dims));
    let below = v.clone().lower(lo.clone());
    let above = v.clone().greater(hi);
    // No add after the product: a backend that fused them into one rounding would bucket a value
    // differently in the two passes of a round. Truncation is the floor here (clamped to >= 0).
    let inside = ((v - lo) * scale.clone().expand(dims)).clamp(0.0, (buckets - 1) as f32).int().add_scalar(1);
    inside.mask_fill(below, 0).mask_fill(above, buckets as i64 + 1)
}

fn rows_per_chunk(ranks: usize, neurons: usize) -> usize {
    (CHUNK_ELEMENTS / (ranks * neurons).max(1)).max(1)
}

fn row_chunks(z: Tensor<2>, step: usize) -> impl Iterator<Item = Tensor<2>> {
    let rows = z.dims()[0];
    (0..rows).step_by(step).map(move |s| z.clone().narrow(0, s, step.min(rows - s)))
}
