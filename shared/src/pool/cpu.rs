//! Max-pooling over windows that tile the input, on the CPU backends (flex natively, ndarray in
//! the page) for f32 `[batch, channels, h, w]` tensors: one pass for the output, one for the
//! gradient, the (sample, channel) planes shared out between the threads ([`par_written`]).

use std::mem::MaybeUninit;

use crate::cpu_tensor::F32Tensor;
use crate::uninit::{par_written, zeroed};

/// Planes per task: a plane of the first stage is 4 KB, too little to share out alone.
const PLANES_PER_TASK: usize = 16;

/// One pooling's sizes.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    batch: usize,
    channels: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    /// Output height and width: whole windows only (burn's floor mode).
    out: [usize; 2],
}

impl Plan {
    /// `None` where the loops here do not apply (another dtype, no whole window): the caller
    /// then uses burn's own.
    pub fn new<T: F32Tensor>(x: &T, kernel: [usize; 2]) -> Option<Self> {
        let shape = x.f32_shape()?;
        if shape.len() != 4 || kernel.contains(&0) {
            return None;
        }
        let (size, out) = ([shape[2], shape[3]], [shape[2] / kernel[0], shape[3] / kernel[1]]);
        let plan = Plan { batch: shape[0], channels: shape[1], size, kernel, out };
        (plan.planes() > 0 && out[0] > 0 && out[1] > 0).then_some(plan)
    }

    /// Whether `output_grad` has the output's shape (and dtype).
    pub fn takes_grad<T: F32Tensor>(&self, output_grad: &T) -> bool {
        output_grad.f32_shape() == Some(vec![self.batch, self.channels, self.out[0], self.out[1]])
    }

    fn planes(&self) -> usize {
        self.batch * self.channels
    }

    /// The position in its plane and the value of the maximum of window (`oh`, `ow`): the first
    /// maximum in row-major order, or the last NaN, as burn's flex max-pool picks. (The models'
    /// 2x2 windows go a row of windows at a time through [`max_2x2`] instead.)
    fn window_max(&self, plane: &[f32], oh: usize, ow: usize) -> (usize, f32) {
        let ([kh, kw], w) = (self.kernel, self.size[1]);
        let corner = oh * kh * w + ow * kw;
        let mut best = (corner, plane[corner]);
        let mut consider = |i: usize| {
            if beats(plane[i], best.1) {
                best = (i, plane[i]);
            }
        };
        (0..kh).flat_map(|i| (0..kw).map(move |j| i * w + j)).skip(1).for_each(|offset| consider(corner + offset));
        best
    }

    /// The pooled output, `[batch, channels, oh, ow]`.
    pub fn output<T: F32Tensor>(&self, x: &T) -> T {
        let x = x.row_major();
        let x = x.values();
        let ([h, w], [oh_len, ow_len]) = (self.size, self.out);
        let task = PLANES_PER_TASK * oh_len * ow_len;
        let write = |t: usize, y: &mut [MaybeUninit<f32>]| {
            let x = &x[t * PLANES_PER_TASK * h * w..];
            for (out, plane) in y.chunks_mut(oh_len * ow_len).zip(x.chunks(h * w)) {
                if self.kernel == [2, 2] {
                    for (oh, out) in out.chunks_mut(ow_len).enumerate() {
                        let (r0, r1) = (&plane[2 * oh * w..][..2 * ow_len], &plane[(2 * oh + 1) * w..][..2 * ow_len]);
                        for ((v, a), b) in out.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                            v.write(max_2x2([a[0], a[1], b[0], b[1]]).1);
                        }
                    }
                    continue;
                }
                for (o, v) in out.iter_mut().enumerate() {
                    v.write(self.window_max(plane, o / ow_len, o % ow_len).1);
                }
            }
        };
        // SAFETY: `write` writes every output of its planes, a row of `ow_len` windows at a time.
        let y = unsafe { par_written(self.planes() * oh_len * ow_len, task, write) };
        T::from_values(y, &[self.batch, self.channels, oh_len, ow_len])
    }

    /// dLoss/dx, `[batch, channels, h, w]`: each output's gradient at its window's maximum,
    /// zero elsewhere.
    pub fn input_grad<T: F32Tensor>(&self, x: &T, output_grad: &T) -> T {
        let (x, g) = (x.row_major(), output_grad.row_major());
        let (x, g) = (x.values(), g.values());
        let ([h, w], [oh_len, ow_len]) = (self.size, self.out);
        // Zeroed by the thread that fills it: positions outside a whole window, and those that are
        // not their window's maximum, take no gradient.
        let write = |t: usize, dx: &mut [MaybeUninit<f32>]| {
            let dx = zeroed(dx);
            let (x, g) = (&x[t * PLANES_PER_TASK * h * w..], &g[t * PLANES_PER_TASK * oh_len * ow_len..]);
            for ((dx, plane), g) in dx.chunks_mut(h * w).zip(x.chunks(h * w)).zip(g.chunks(oh_len * ow_len)) {
                if self.kernel == [2, 2] {
                    for (oh, g) in g.chunks(ow_len).enumerate() {
                        let (r0, r1) = (&plane[2 * oh * w..][..2 * ow_len], &plane[(2 * oh + 1) * w..][..2 * ow_len]);
                        let (top, bottom) = dx[2 * oh * w..].split_at_mut(w);
                        let (d0, d1) = (&mut top[..2 * ow_len], &mut bottom[..2 * ow_len]);
                        for ((((&v, a), b), d0), d1) in g.iter().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)).zip(d0.chunks_exact_mut(2)).zip(d1.chunks_exact_mut(2)) {
                            let at = max_2x2([a[0], a[1], b[0], b[1]]).0;
                            let take = |k: usize| if at == k { v } else { 0.0 };
                            (d0[0], d0[1], d1[0], d1[1]) = (take(0), take(1), take(2), take(3));
                        }
                    }
                    continue;
                }
                for (o, &v) in g.iter().enumerate() {
                    dx[self.window_max(plane, o / ow_len, o % ow_len).0] = v;
                }
            }
        };
        // SAFETY: `write` zeroes its planes first.
        let dx = unsafe { par_written(self.planes() * h * w, PLANES_PER_TASK * h * w, write) };
        T::from_values(dx, &[self.batch, self.channels, h, w])
    }
}

/// Which of a 2x2 window's values (top left, top right, bottom left, bottom right) is its
/// maximum, by [`Plan::window_max`]'s rule, and the value. A row of windows at a time (no
/// division into output row and column per window): the `fast` CIFAR CNN's three poolings,
/// forward and backward, went from 11 to 7 ms per step of 64 (`trainer bench --profile`).
#[inline(always)]
fn max_2x2(v: [f32; 4]) -> (usize, f32) {
    let mut best = (0, v[0]);
    for (k, &value) in v.iter().enumerate().skip(1) {
        if beats(value, best.1) {
            best = (k, value);
        }
    }
    best
}

/// Whether `v`, met after `best` in a window's row-major order, takes its place: a larger value,
/// or a NaN (burn's flex rule: the first maximum, or the last NaN).
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    v > best || v.is_nan()
}
