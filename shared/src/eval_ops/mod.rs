//! Per-neuron operations of the experiments' evaluation passes as one loop over the values on the
//! CPU backends (flex natively, ndarray in the page's worker), burn's tensor operations elsewhere.
//!
//! Written as burn operations, each of these is a chain of broadcasts (a comparison against an
//! expanded row, a `mask_where` between two expanded rows; batch-norm's subtract, divide,
//! multiply and add, then a ReLU), one pass over the values each, and on ndarray a broadcast pass
//! is slow: quantizing the page CNN's first layer (128 x 784 x 8 values) took 13-32 ms, longer than
//! the network's whole forward pass (docs/performance.md). [`EvalOps`] reads the values once and
//! writes them once. Only tensors outside autodiff take it (nothing here is differentiated).

#[cfg(any(feature = "native", feature = "web"))]
pub mod cpu;

use burn::tensor::{DType, Tensor};

#[cfg(any(feature = "native", feature = "web"))]
pub use extension::EvalOps;

// burn marks ndarray deprecated in favour of flex, yet in wasm it trains the page's networks
// faster (docs/building.md).
#[cfg(any(feature = "native", feature = "web"))]
#[allow(deprecated)]
mod extension {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, backend_extension};

    use super::cpu;

    /// The loops of [`super::cpu`] on f32 tensors of the CPU backends; callers check
    /// [`super::loops_take`] first (no other backend has them).
    #[backend_extension(Flex: cfg(feature = "native"), NdArray: cfg(feature = "web"))]
    pub trait EvalOps: Backend {
        /// `z` `[rows, neurons]`; `per_neuron` `[3, neurons]`: threshold, low, high.
        fn eval_two_values(z: FloatTensor<Self>, per_neuron: FloatTensor<Self>) -> FloatTensor<Self>;
        /// `z` `[rows, neurons]`; `per_neuron` `[2, neurons]`: lower and upper bound.
        fn eval_inside(z: FloatTensor<Self>, per_neuron: FloatTensor<Self>) -> FloatTensor<Self>;
        /// `x` `[batch, channels, ...]`; `per_channel` `[4, channels]`: gamma, beta, mean,
        /// variance.
        fn eval_batch_norm(x: FloatTensor<Self>, per_channel: FloatTensor<Self>, epsilon: f64, relu: bool) -> FloatTensor<Self>;
        /// The same values in row-major order.
        fn eval_row_major(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// Per column of `z` (`[rows, neurons]`), its `indices`-th smallest values, `[indices,
        /// neurons]`.
        fn eval_order_statistics(z: FloatTensor<Self>, indices: Vec<usize>) -> FloatTensor<Self>;
        /// Per row of `thresholds` (`[k, neurons]`) and neuron, how many of `z`'s values
        /// (`[rows, neurons]`) lie at or above the threshold and the sum of `values` there, then
        /// the sum of all `values`: `[2k + 1, neurons]`.
        fn eval_side_sums(z: FloatTensor<Self>, values: FloatTensor<Self>, thresholds: FloatTensor<Self>) -> FloatTensor<Self>;
    }

    macro_rules! on_the_cpu {
        ($backend:ty) => {
            impl EvalOps for $backend {
                fn eval_two_values(z: FloatTensor<Self>, per_neuron: FloatTensor<Self>) -> FloatTensor<Self> {
                    cpu::two_values(&z, &per_neuron)
                }
                fn eval_inside(z: FloatTensor<Self>, per_neuron: FloatTensor<Self>) -> FloatTensor<Self> {
                    cpu::inside(&z, &per_neuron)
                }
                fn eval_batch_norm(x: FloatTensor<Self>, per_channel: FloatTensor<Self>, epsilon: f64, relu: bool) -> FloatTensor<Self> {
                    cpu::batch_norm(&x, &per_channel, epsilon, relu)
                }
                fn eval_row_major(x: FloatTensor<Self>) -> FloatTensor<Self> {
                    crate::cpu_tensor::F32Tensor::row_major(&x)
                }
                fn eval_order_statistics(z: FloatTensor<Self>, indices: Vec<usize>) -> FloatTensor<Self> {
                    cpu::order_statistics(&z, &indices)
                }
                fn eval_side_sums(z: FloatTensor<Self>, values: FloatTensor<Self>, thresholds: FloatTensor<Self>) -> FloatTensor<Self> {
                    cpu::side_sums(&z, &values, &thresholds)
                }
            }
        };
    }

    #[cfg(feature = "native")]
    on_the_cpu!(burn::backend::Flex);
    #[cfg(feature = "web")]
    on_the_cpu!(burn::backend::NdArray);
}

/// Whether the loops take `t`: f32 on a CPU backend, outside autodiff.
fn loops_take<const D: usize>(t: &Tensor<D>) -> bool {
    let device = t.device();
    if device.is_autodiff() || t.dtype() != DType::F32 {
        return false;
    }
    #[cfg(any(feature = "native", feature = "web"))]
    {
        use burn::backend::DispatchDevice;
        #[allow(deprecated)]
        match device.as_dispatch() {
            #[cfg(feature = "native")]
            DispatchDevice::Flex(_) => return true,
            #[cfg(feature = "web")]
            DispatchDevice::NdArray(_) => return true,
            _ => {}
        }
    }
    false
}

/// `x` with its values in row-major order, so that a reshape after a permutation costs one
/// gather (ndarray copies a permuted tensor through its dynamic-rank iterator, about 30 ns a
/// value); elsewhere `x` as it is.
pub fn row_major<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(any(feature = "native", feature = "web"))]
    if loops_take(&x) {
        use burn::backend::Dispatch;
        return Tensor::from_dispatch(<Dispatch as EvalOps>::eval_row_major(x.into_dispatch()));
    }
    x
}

/// Each value of `z` (`[rows, neurons]`) replaced by its neuron's `high` where it lies at or
/// above the neuron's `threshold`, else by its `low` (`[1, neurons]` each); NaN goes low.
pub fn two_values(z: Tensor<2>, threshold: &Tensor<2>, low: &Tensor<2>, high: &Tensor<2>) -> Tensor<2> {
    let dims = z.dims();
    #[cfg(any(feature = "native", feature = "web"))]
    if let Some(rows) = per_neuron(&z, [threshold, low, high]) {
        use burn::backend::Dispatch;
        return Tensor::from_dispatch(<Dispatch as EvalOps>::eval_two_values(z.into_dispatch(), rows.into_dispatch()));
    }
    let above = z.greater_equal(threshold.clone().expand(dims));
    low.clone().expand(dims).mask_where(above, high.clone().expand(dims))
}

/// 1 where `lo <= z <= hi` (per neuron, `[1, neurons]` bounds), else 0 (NaN: 0).
pub fn inside(z: Tensor<2>, lo: &Tensor<2>, hi: &Tensor<2>) -> Tensor<2> {
    let dims = z.dims();
    #[cfg(any(feature = "native", feature = "web"))]
    if let Some(rows) = per_neuron(&z, [lo, hi]) {
        use burn::backend::Dispatch;
        return Tensor::from_dispatch(<Dispatch as EvalOps>::eval_inside(z.into_dispatch(), rows.into_dispatch()));
    }
    z.clone().greater_equal(lo.clone().expand(dims)).bool_and(z.lower_equal(hi.clone().expand(dims))).float()
}

/// `[1, neurons]` rows stacked as `[K, neurons]` where the loops take `z` (`[rows, neurons]`).
fn per_neuron<const K: usize>(z: &Tensor<2>, rows: [&Tensor<2>; K]) -> Option<Tensor<2>> {
    let n = z.dims()[1];
    let fits = loops_take(z) && rows.iter().all(|r| r.dims() == [1, n] && loops_take(*r));
    fits.then(|| Tensor::cat(rows.iter().map(|&r| r.clone().to_device(&z.device())).collect(), 0))
}

/// Batch-norm in inference as burn's `batch_norm` computes it (`(x - mean) / sqrt(variance +
/// epsilon) * gamma + beta` per channel of `x`, `[batch, channels, ...]`, the same arithmetic in
/// the same order), then a ReLU where `relu` (NaN stays NaN, as in burn's); `None` where the
/// loops do not take `x`.
pub fn batch_norm<const D: usize>(x: &Tensor<D>, [gamma, beta, mean, variance]: [Tensor<1>; 4], epsilon: f64, relu: bool) -> Option<Tensor<D>> {
    let c = *x.dims().get(1)?;
    let stats = [gamma, beta, mean, variance];
    if !loops_take(x) || stats.iter().any(|t| t.dims() != [c] || !loops_take(t)) {
        return None;
    }
    #[cfg(any(feature = "native", feature = "web"))]
    {
        use burn::backend::Dispatch;
        let per_channel = Tensor::stack::<2>(stats.into_iter().map(|t| t.to_device(&x.device())).collect(), 0);
        return Some(Tensor::from_dispatch(<Dispatch as EvalOps>::eval_batch_norm(x.clone().into_dispatch(), per_channel.into_dispatch(), epsilon, relu)));
    }
    #[allow(unreachable_code)]
    None
}

/// Per column of `z` (`[rows, neurons]`), its `indices`-th smallest values (`[indices,
/// neurons]`, each index below `rows`) by selection, as sorting each column and picking them
/// would give; `None` where the loops do not take `z`.
pub fn order_statistics(z: &Tensor<2>, indices: &[usize]) -> Option<Tensor<2>> {
    let [rows, _] = z.dims();
    if !loops_take(z) || indices.iter().any(|&i| i >= rows) {
        return None;
    }
    #[cfg(any(feature = "native", feature = "web"))]
    {
        use burn::backend::Dispatch;
        return Some(Tensor::from_dispatch(<Dispatch as EvalOps>::eval_order_statistics(z.clone().into_dispatch(), indices.to_vec())));
    }
    #[allow(unreachable_code)]
    None
}

/// Per row of `thresholds` (`[k, neurons]`) and neuron: how many values of `z` (`[rows,
/// neurons]`) lie at or above the threshold (`[k, neurons]`), the sum of `values` (`[rows,
/// neurons]`) there (`[k, neurons]`), and the sum of all `values` (`[1, neurons]`), in one pass
/// (sums in f64); `None` where the loops do not take them.
pub fn side_sums(z: &Tensor<2>, values: &Tensor<2>, thresholds: &Tensor<2>) -> Option<(Tensor<2>, Tensor<2>, Tensor<2>)> {
    let [_, n] = z.dims();
    let [k, tn] = thresholds.dims();
    let fits = values.dims() == z.dims() && tn == n && loops_take(z) && loops_take(values) && loops_take(thresholds);
    if !fits {
        return None;
    }
    #[cfg(any(feature = "native", feature = "web"))]
    {
        use burn::backend::Dispatch;
        let device = z.device();
        let out: Tensor<2> = Tensor::from_dispatch(<Dispatch as EvalOps>::eval_side_sums(
            z.clone().into_dispatch(),
            values.clone().to_device(&device).into_dispatch(),
            thresholds.clone().to_device(&device).into_dispatch(),
        ));
        return Some((out.clone().narrow(0, 0, k), out.clone().narrow(0, k, k), out.narrow(0, 2 * k, 1)));
    }
    #[allow(unreachable_code)]
    None
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution, Int, TensorData};

    fn values_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// Bit for bit (NaN where NaN).
    fn same(ours: Vec<f32>, theirs: Vec<f32>, what: &str) {
        assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{what}: element {i}: {a} against burn's {b}");
        }
    }

    /// Random values with NaNs, infinities and repeats of the per-neuron rows' own values (ties
    /// at the thresholds).
    fn awkward(rows: usize, neurons: usize, ties: &[f32], device: &Device) -> Tensor<2> {
        let mut v = values_of(Tensor::<2>::random([rows, neurons], Distribution::Normal(0.0, 1.0), device));
        for (i, x) in v.iter_mut().enumerate() {
            match i % 11 {
                3 => *x = f32::NAN,
                5 => *x = f32::INFINITY,
                7 => *x = f32::NEG_INFINITY,
                9 => *x = ties[i % neurons % ties.len().max(1)],
                _ => {}
            }
        }
        Tensor::from_data(TensorData::new(v, [rows, neurons]), device)
    }

    fn row(v: Vec<f32>, device: &Device) -> Tensor<2> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [1, n]), device)
    }

    /// The loops on flex against the same functions' burn operations (an autodiff device takes
    /// those), on awkward shapes and values.
    #[test]
    fn two_values_and_inside_equal_burns_operations() {
        let flex = Device::flex();
        let burns = flex.clone().autodiff();
        // 9000 x 7: more than one task's rows.
        for (rows, n) in [(37, 5), (1, 1), (128, 8), (3, 17), (9000, 7)] {
            let t: Vec<f32> = (0..n).map(|j| j as f32 * 0.3 - 0.5).collect();
            let z = awkward(rows, n, &t, &flex);
            let (lo, hi) = ((0..n).map(|j| -(j as f32)).collect::<Vec<_>>(), (0..n).map(|j| j as f32 + 0.25).collect::<Vec<_>>());
            let on = |d: &Device| {
                let z = Tensor::<2>::from_data(z.to_data(), d);
                assert_eq!(loops_take(&z), !d.is_autodiff(), "the loops take flex's tensors only");
                (
                    values_of(two_values(z.clone(), &row(t.clone(), d), &row(lo.clone(), d), &row(hi.clone(), d))),
                    values_of(inside(z, &row(t.clone(), d), &row(hi.clone(), d))),
                )
            };
            let ((q, w), (q_burn, w_burn)) = (on(&flex), on(&burns));
            same(q, q_burn, &format!("two values, [{rows}, {n}]"));
            same(w, w_burn, &format!("inside, [{rows}, {n}]"));
        }
    }

    /// Inference batch-norm (and with its ReLU) against burn's `BatchNorm` on the same device.
    #[test]
    fn batch_norm_equals_burns_in_inference() {
        let device = Device::flex();
        // The last: planes spread over several tasks, 30 planes each, not a multiple of 7.
        for shape in [[2, 3, 5, 7], [1, 1, 1, 1], [4, 16, 3, 3], [64, 7, 33, 33]] {
            let c = shape[1];
            let mut norm = BatchNormConfig::new(c).init(&device);
            let random = |lo: f64, hi: f64| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), &device);
            norm.gamma = Param::from_tensor(random(-2.0, 2.0));
            norm.beta = Param::from_tensor(random(-1.0, 1.0));
            norm.running_mean = burn::module::RunningState::new(random(-1.0, 1.0));
            norm.running_var = burn::module::RunningState::new(random(0.0, 3.0));
            let x = awkward(shape.iter().product::<usize>() / 7 + 1, 7, &[0.0], &device).reshape([-1]).narrow(0, 0, shape.iter().product()).reshape(shape);
            let theirs = norm.forward(x.clone());
            same(values_of(crate::batch_norm::forward(&norm, x.clone())), values_of(theirs.clone()), &format!("batch-norm {shape:?}"));
            same(values_of(crate::batch_norm::forward_relu(&norm, x)), values_of(burn::tensor::activation::relu(theirs)), &format!("batch-norm + ReLU {shape:?}"));
        }
    }

    /// Order statistics by selection against burn's sort, with repeated values and indices, the
    /// first and last index.
    #[test]
    fn order_statistics_equal_burns_sort() {
        let device = Device::flex();
        for (rows, n) in [(1001usize, 3), (1, 2), (64, 9)] {
            let z = Tensor::<2>::random([rows, n], Distribution::Uniform(-3.0, 3.0), &device).mul_scalar(4.0).round().div_scalar(4.0);
            let idx = vec![rows - 1, 0, rows / 2, rows / 2, rows / 3, rows.saturating_sub(2)];
            let want = z.clone().sort(0).select(0, Tensor::<1, Int>::from_data(TensorData::new(idx.iter().map(|&i| i as i64).collect(), [idx.len()]), &device));
            let got = order_statistics(&z, &idx).expect("flex takes the loops");
            same(values_of(got), values_of(want), &format!("order statistics [{rows}, {n}]"));
        }
        assert!(order_statistics(&Tensor::<2>::zeros([4, 2], &device), &[4]).is_none(), "an index past the rows");
    }

    /// Side sums in one pass against burn's per-row fit ([`crate::stats::TwoValueQuantizer`]).
    #[test]
    fn side_sums_fit_the_same_quantizers() {
        use crate::stats::TwoValueQuantizer;
        let flex = Device::flex();
        let burns = flex.clone().autodiff();
        // More rows than one task's.
        let (rows, n) = (20_011, 3);
        let z = Tensor::<2>::random([rows, n], Distribution::Normal(0.0, 1.0), &flex);
        let a = burn::tensor::activation::relu(z.clone());
        let thresholds = crate::percentile::percentiles(z.clone(), &[0.0, 10.0, 50.0, 99.0, 100.0]);
        // Above every value: no high side.
        let thresholds = Tensor::cat(vec![thresholds, Tensor::<2>::full([1, n], 10.0, &flex)], 0);
        let on = |t: &Tensor<2>, d: &Device| Tensor::<2>::from_data(t.to_data(), d);
        let fit = |d: &Device| TwoValueQuantizer::fit_rows(on(&z, d), on(&a, d), on(&thresholds, d));
        for (i, (ours, theirs)) in fit(&flex).into_iter().zip(fit(&burns)).enumerate() {
            for (what, x, y) in [("low", ours.low, theirs.low), ("high", ours.high, theirs.high)] {
                let (x, y) = (values_of(x), values_of(y));
                for (a, b) in x.iter().zip(&y) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "row {i}, {what}: {a} against burn's {b}");
                }
            }
        }
    }

    /// A permuted tensor in row-major order holds the permuted values.
    #[test]
    fn row_major_keeps_a_permuted_tensors_values() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &device).permute([0, 2, 3, 1]);
        same(values_of(row_major(x.clone())), values_of(x), "row-major");
    }
}
