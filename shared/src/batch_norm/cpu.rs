//! Training batch-norm on the CPU backends (flex natively, ndarray in the page) for f32
//! `[batch, channels, ...]` tensors: one pass per channel for the statistics (or the gradient
//! sums), one pass per (sample, channel) plane for the output (or the input's gradient). Sums are
//! kept in f64.

use rayon::prelude::*;

use crate::cpu_tensor::F32Tensor;

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
                let shift = xs[c * self.plane] as f64;
                let (s1, s2) = self.channel(xs, c).fold((0.0, 0.0), |(s1, s2), plane| {
                    let (a, b) = lanes_sums(plane, plane, plane, |v, _, _| {
                        let d = v as f64 - shift;
                        (d, d * d)
                    });
                    (s1 + a, s2 + b)
                });
                let mean_shifted = s1 / self.count();
                (shift + mean_shifted, (s2 / self.count() - mean_shifted * mean_shifted).max(0.0))
            })
            .collect();
        let mut out = vec![0.0f32; xs.len()];
        out.par_chunks_mut(self.plane).zip(xs.par_chunks(self.plane)).enumerate().for_each(|(i, (dst, src))| {
            let c = i % self.channels;
            let (mean, variance) = stats[c];
            let scale = gamma[c] as f64 / (variance + epsilon).sqrt();
            let (scale, shift) = (scale as f32, (beta[c] as f64 - mean * scale) as f32);
            match relu {
                // burn's ReLU: zero where the value is not above zero (a NaN stays).
                true => dst.iter_mut().zip(src).for_each(|(d, &v)| {
                    let y = v * scale + shift;
                    *d = if y <= 0.0 { 0.0 } else { y };
                }),
                false => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v * scale + shift),
            }
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
        let (ys, relu) = match &y {
            Some(y) => (y.values(), true),
            None => (gs, false),
        };
        let through = move |g: f32, y: f32| if relu && y <= 0.0 { 0.0 } else { g };
        let inv_std = |c: usize| 1.0 / (variance[c] as f64 + epsilon).sqrt();
        // Per channel: the sum of the output gradient (beta's gradient) and of the output
        // gradient times the normalised input (gamma's gradient).
        let sums: Vec<(f64, f64)> = (0..self.channels)
            .into_par_iter()
            .map(|c| {
                let m = mean[c] as f64;
                let (sg, sgx) = self.channel(gs, c).zip(self.channel(ys, c)).zip(self.channel(xs, c)).fold((0.0, 0.0), |(sg, sgx), ((g, y), x)| {
                    let (a, b) = lanes_sums(g, y, x, |g, y, x| {
                        let g = through(g, y) as f64;
                        (g, g * (x as f64 - m))
                    });
                    (sg + a, sgx + b)
                });
                (sg, sgx * inv_std(c))
            })
            .collect();
        let mut dx = vec![0.0f32; xs.len()];
        let planes = xs.par_chunks(self.plane).zip(gs.par_chunks(self.plane)).zip(ys.par_chunks(self.plane));
        dx.par_chunks_mut(self.plane).zip(planes).enumerate().for_each(|(i, (dst, ((x, g), y)))| {
            let c = i % self.channels;
            let (m, s) = (mean[c] as f64, inv_std(c));
            let (mean_g, mean_gx) = (sums[c].0 / self.count(), sums[c].1 / self.count());
            // dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - m) * s
            let scale = gamma[c] as f64 * s;
            let (a, b, k) = (scale as f32, (-scale * (mean_g - m * s * mean_gx)) as f32, (-scale * s * mean_gx) as f32);
            dst.iter_mut().zip(x.iter().zip(g).zip(y)).for_each(|(d, ((&x, &g), &y))| *d = a * through(g, y) + k * x + b);
        });
        let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = sums.iter().map(|&(sg, sgx)| (sg as f32, sgx as f32)).unzip();
        (T::from_values(dx, &self.shape), T::from_values(gamma_grad, &[self.channels]), T::from_values(beta_grad, &[self.channels]))
    }
}

/// Lanes of a sum: one chain of f64 adds waits on each add (four cycles); eight chains fill a
/// vector register, and the compiler keeps their order.
const LANES: usize = 8;

/// The two sums of `f` over the triples of `a`, `b` and `c`, in f64 over [`LANES`] lanes each.
fn lanes_sums(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> (f64, f64)) -> (f64, f64) {
    let (mut first, mut second) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (ca, cb, cc) = (a.chunks_exact(LANES), b.chunks_exact(LANES), c.chunks_exact(LANES));
    let rest = ca.remainder().iter().zip(cb.remainder()).zip(cc.remainder()).fold((0.0, 0.0), |(r1, r2), ((&a, &b), &c)| {
        let (x, y) = f(a, b, c);
        (r1 + x, r2 + y)
    });
    for ((ca, cb), cc) in ca.zip(cb).zip(cc) {
        for i in 0..LANES {
            let (x, y) = f(ca[i], cb[i], cc[i]);
            first[i] += x;
            second[i] += y;
        }
    }
    (first.iter().sum::<f64>() + rest.0, second.iter().sum::<f64>() + rest.1)
}
