//! Training batch-norm on the CPU backends (flex natively, ndarray in the page) for f32
//! `[batch, channels, ...]` tensors: one pass per channel for the statistics (or the gradient
//! sums), one pass per (sample, channel) plane for the output (or the input's gradient). Each
//! plane is summed in f32 over [`LANES`] lanes, a [`BLOCK`] of values at a time, and the blocks'
//! sums are added in f64.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::cpu_tensor::F32Tensor;
use crate::simd::with_avx2;
use crate::uninit::par_written;

/// One batch-norm's sizes.
#[derive(Clone, Debug)]
pub struct Plan {
    shape: Vec<usize>,
    batch: usize,
    channels: usize,
    /// Values per (sample, channel): the product of the spatial sizes.
    plane: usize,
}

impl Plan {
    /// `None` where the loops here do not apply (another dtype, an empty tensor): the caller then
    /// uses burn's own.
    pub fn new<T: F32Tensor>(x: &T, gamma: &T) -> Option<Self> {
        let shape = x.f32_shape()?;
        if shape.len() < 2 || gamma.f32_shape()?.iter().product::<usize>() != shape[1] {
            return None;
        }
        let plane = shape.iter().skip(2).product::<usize>();
        let plan = Plan { batch: shape[0], channels: shape[1], plane, shape };
        (plan.batch > 0 && plan.channels > 0 && plan.plane > 0).then_some(plan)
    }

    /// Whether `t` has the input's shape (and holds f32s): an output gradient or a ReLU's output.
    pub fn fits<T: F32Tensor>(&self, t: &T) -> bool {
        t.f32_shape().as_deref() == Some(&self.shape[..])
    }

    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// The values of channel `c` in `t`, one slice per sample.
    fn channel<'a>(&self, t: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.batch).map(move |n| &t[(n * self.channels + c) * self.plane..][..self.plane])
    }

    /// Output (after a ReLU where `relu`), mean and biased variance (burn's `batch_norm_train`).
    pub fn train<T: F32Tensor>(&self, x: &T, gamma: &T, beta: &T, epsilon: f64, relu: bool) -> (T, T, T) {
        let (x, gamma, beta) = (x.row_major(), gamma.row_major(), beta.row_major());
        let (xs, gamma, beta) = (x.values(), gamma.values(), beta.values());
        let stats: Vec<(f64, f64)> = (0..self.channels)
            .into_par_iter()
            .map(|c| {
                // One pass: sums of the values and their squares, shifted by the channel's first
                // value so that a mean far from zero does not cancel the variance away.
                let shift = xs[c * self.plane];
                let (s1, s2) = self.channel(xs, c).fold((0.0, 0.0), |(s1, s2), plane| {
                    let (a, b) = shifted_sums(plane, shift);
                    (s1 + a, s2 + b)
                });
                let shift = shift as f64;
                let mean_shifted = s1 / self.count();
                (shift + mean_shifted, (s2 / self.count() - mean_shifted * mean_shifted).max(0.0))
            })
            .collect();
        let out = planes(xs.len(), self.plane, |i, dst| {
            let c = i % self.channels;
            let (mean, variance) = stats[c];
            let scale = gamma[c] as f64 / (variance + epsilon).sqrt();
            affine(&xs[i * self.plane..][..self.plane], dst, scale as f32, (beta[c] as f64 - mean * scale) as f32, relu);
        });
        let (mean, variance): (Vec<f32>, Vec<f32>) = stats.iter().map(|&(m, v)| (m as f32, v as f32)).unzip();
        (T::from_values(out, &self.shape), T::from_values(mean, &[self.channels]), T::from_values(variance, &[self.channels]))
    }

    /// Gradients of x, gamma and beta (burn's `batch_norm_train_backward`), through the ReLU
    /// whose output is `relu_output` where the forward applied one.
    #[allow(clippy::too_many_arguments)]
    pub fn grads<T: F32Tensor>(&self, x: &T, gamma: &T, mean: &T, variance: &T, epsilon: f64, relu_output: Option<&T>, output_grad: &T) -> (T, T, T) {
        let (x, gamma, mean, variance) = (x.row_major(), gamma.row_major(), mean.row_major(), variance.row_major());
        let (xs, gamma, mean, variance) = (x.values(), gamma.values(), mean.values(), variance.values());
        let g = output_grad.row_major();
        let gs = g.values();
        // Through the ReLU: the gradient is zero where its output is not above zero (burn's
        // `relu_backward`), applied as the gradient is read rather than in a pass of its own.
        let y = relu_output.map(T::row_major);
        let ys = y.as_ref().map(T::values);
        let inv_std = |c: usize| 1.0 / (variance[c] as f64 + epsilon).sqrt();
        // Per channel: the sum of the output gradient (beta's gradient) and of the output
        // gradient times the normalised input (gamma's gradient).
        let sums: Vec<(f64, f64)> = (0..self.channels)
            .into_par_iter()
            .map(|c| {
                let planes = self.channel(gs, c).zip(self.channel(xs, c));
                let (sg, sgx) = match ys {
                    Some(ys) => planes.zip(self.channel(ys, c)).fold((0.0, 0.0), |(sg, sgx), ((g, x), y)| {
                        let (a, b) = relu_grad_sums(g, y, x, mean[c]);
                        (sg + a, sgx + b)
                    }),
                    None => planes.fold((0.0, 0.0), |(sg, sgx), (g, x)| {
                        let (a, b) = grad_sums(g, x, mean[c]);
                        (sg + a, sgx + b)
                    }),
                };
                (sg, sgx * inv_std(c))
            })
            .collect();
        let dx = planes(xs.len(), self.plane, |i, dst| {
            let c = i % self.channels;
            let (m, s) = (mean[c] as f64, inv_std(c));
            let (mean_g, mean_gx) = (sums[c].0 / self.count(), sums[c].1 / self.count());
            // dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - m) * s
            let scale = gamma[c] as f64 * s;
            let (a, b, k) = (scale as f32, (-scale * (mean_g - m * s * mean_gx)) as f32, (-scale * s * mean_gx) as f32);
            let at = i * self.plane..(i + 1) * self.plane;
            affine_grad(&xs[at.clone()], &gs[at.clone()], ys.map(|ys| &ys[at]), dst, [a, k, b]);
        });
        let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = sums.iter().map(|&(sg, sgx)| (sg as f32, sgx as f32)).unzip();
        (T::from_values(dx, &self.shape), T::from_values(gamma_grad, &[self.channels]), T::from_values(beta_grad, &[self.channels]))
    }
}

/// A new tensor's values, `fill`ed a plane at a time (its index, its values), in parallel.
fn planes(len: usize, plane: usize, fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send) -> Vec<f32> {
    // SAFETY: `fill` is `affine` or `affine_grad`, which write every value of `dst`.
    unsafe { par_written(len, plane, fill) }
}

/// Lanes of a sum: a chain of adds waits on each add (three to four cycles); eight chains fill an
/// AVX register, and the compiler keeps their order.
const LANES: usize = 8;
/// Values summed in f32 before their sum is added in f64: f32 lanes run 2x (4x under AVX2) wider
/// than f64, and 32 values a lane keep their sum within a few f32 roundings.
const BLOCK: usize = 32 * LANES;

/// The two sums of `f` over the values of `a` and `b` (of one length), [`BLOCK`] values at a time.
#[inline(always)]
fn two_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let (mut first, mut second) = (0.0f64, 0.0f64);
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let (mut s1, mut s2) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        for (i, (&a, &b)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
            let (x, y) = f(a, b);
            s1[i] += x;
            s2[i] += y;
        }
        for (a, b) in ca.zip(cb) {
            for i in 0..LANES {
                let (x, y) = f(a[i], b[i]);
                s1[i] += x;
                s2[i] += y;
            }
        }
        first += s1.iter().map(|&v| v as f64).sum::<f64>();
        second += s2.iter().map(|&v| v as f64).sum::<f64>();
    }
    (first, second)
}

/// burn's ReLU backward: zero where the ReLU's output is not above zero (a NaN lets the gradient
/// through).
#[inline(always)]
fn through(g: f32, y: f32) -> f32 {
    if y <= 0.0 { 0.0 } else { g }
}

/// Sums of `x - shift` and of its square.
#[inline(always)]
fn shifted_sums_on(x: &[f32], shift: f32) -> (f64, f64) {
    two_sums(x, x, |v, _| {
        let d = v - shift;
        (d, d * d)
    })
}

/// Sums of the output gradient `g` and of `g * (x - mean)`.
#[inline(always)]
fn grad_sums_on(g: &[f32], x: &[f32], mean: f32) -> (f64, f64) {
    two_sums(g, x, |g, x| (g, g * (x - mean)))
}

/// [`grad_sums_on`] of the gradient through the ReLU whose output is `y`.
#[inline(always)]
fn relu_grad_sums_on(g: &[f32], y: &[f32], x: &[f32], mean: f32) -> (f64, f64) {
    assert_eq!(g.len(), y.len());
    let (mut first, mut second) = (0.0, 0.0);
    // Through the ReLU into a block of its own first: with the ReLU inside `two_sums`'s closure
    // the loop kept a branch per value, and took 3x as long (11% of a fast-CNN step against 4%).
    // Not zeroed first: a plane of the 4x4 layers is 16 values, and a memset of the whole block
    // per plane cost more than the sums.
    let mut through_g = [const { MaybeUninit::<f32>::uninit() }; BLOCK];
    for ((g, y), x) in g.chunks(BLOCK).zip(y.chunks(BLOCK)).zip(x.chunks(BLOCK)) {
        let t = &mut through_g[..g.len()];
        t.iter_mut().zip(g.iter().zip(y)).for_each(|(t, (&g, &y))| {
            t.write(through(g, y));
        });
        // SAFETY: every value of `t` was just written, and MaybeUninit<f32> has f32's layout.
        let t = unsafe { &*(t as *const [MaybeUninit<f32>] as *const [f32]) };
        let (a, b) = grad_sums_on(t, x, mean);
        first += a;
        second += b;
    }
    (first, second)
}

/// `dst = x * scale + shift`, then a ReLU where `relu`.
#[inline(always)]
fn affine_on(x: &[f32], dst: &mut [MaybeUninit<f32>], scale: f32, shift: f32, relu: bool) {
    assert_eq!(x.len(), dst.len());
    match relu {
        // burn's ReLU: zero where the value is not above zero (a NaN stays).
        true => dst.iter_mut().zip(x).for_each(|(d, &v)| {
            let y = v * scale + shift;
            d.write(if y <= 0.0 { 0.0 } else { y });
        }),
        false => dst.iter_mut().zip(x).for_each(|(d, &v)| {
            d.write(v * scale + shift);
        }),
    }
}

/// `dst = a * g' + k * x + b` for `[a, k, b]`, `g'` the gradient `g` through the ReLU whose
/// output is `y`, where there is one.
#[inline(always)]
fn affine_grad_on(x: &[f32], g: &[f32], y: Option<&[f32]>, dst: &mut [MaybeUninit<f32>], [a, k, b]: [f32; 3]) {
    assert!(x.len() == dst.len() && g.len() == dst.len());
    match y {
        Some(y) => {
            assert_eq!(y.len(), dst.len());
            dst.iter_mut().zip(x.iter().zip(g).zip(y)).for_each(|(d, ((&x, &g), &y))| {
                d.write(a * through(g, y) + k * x + b);
            });
        }
        None => dst.iter_mut().zip(x.iter().zip(g)).for_each(|(d, (&x, &g))| {
            d.write(a * g + k * x + b);
        }),
    }
}

with_avx2! {
    fn shifted_sums / shifted_sums_on(x: &[f32], shift: f32) -> (f64, f64);
    fn grad_sums / grad_sums_on(g: &[f32], x: &[f32], mean: f32) -> (f64, f64);
    fn relu_grad_sums / relu_grad_sums_on(g: &[f32], y: &[f32], x: &[f32], mean: f32) -> (f64, f64);
    fn affine / affine_on(x: &[f32], dst: &mut [MaybeUninit<f32>], scale: f32, shift: f32, relu: bool);
    fn affine_grad / affine_grad_on(x: &[f32], g: &[f32], y: Option<&[f32]>, dst: &mut [MaybeUninit<f32>], coefficients: [f32; 3]);
}
