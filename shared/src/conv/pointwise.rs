//! 1x1 stride-1 unpadded convolutions, 36 of ResNet50's 53: a sample's input `[c_in, h * w]` is
//! already the matrix im2col would copy it into, and its output `[c_out, h * w]` the product's,
//! so each is one matrix product per sample on the tensors in place. im2col's copy in, copy out
//! and (for the input gradient) zeroing and col2im were 5-8% of a ResNet50 training step (perf,
//! 2026-12-05).

use std::mem::MaybeUninit;

use super::im2col::{Plan, sum_over_blocks, transposed};
use crate::uninit::par_written;

impl Plan {
    /// Whether this conv runs here rather than through im2col: 1x1, stride 1, no padding, and at
    /// least [`Plan::pointwise_from`] positions a sample (narrower products run better on
    /// several samples' columns side by side).
    pub(super) fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0] && self.out == self.size && self.positions() >= self.pointwise_from
    }

    /// The conv, `[batch, c_out, h, w]`: per sample, weight `[c_out, c_in]` times `x` `[c_in, p]`,
    /// plus the bias.
    pub(super) fn pointwise_output(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (p, c_in, c_out) = (self.positions(), self.c_in, self.c_out);
        let write = |s: usize, y: &mut [MaybeUninit<f32>]| {
            if let Some(bias) = bias {
                for (row, &b) in y.chunks_mut(p).zip(bias) {
                    row.iter_mut().for_each(|v| _ = v.write(b));
                }
            }
            // y [c_out, p] (= bias +) weight [c_out, c_in] * x [c_in, p]
            let xs = &x[s * c_in * p..][..c_in * p];
            unsafe { (self.product)(c_out, p, c_in, y.as_mut_ptr().cast(), bias.is_some(), (w, 1, c_in as isize), (xs, 1, p as isize)) };
        };
        // SAFETY: the product writes all of a sample's `c_out x p` values (after the bias where
        // there is one).
        unsafe { par_written(self.batch * c_out * p, c_out * p, write) }
    }

    /// dLoss/dWeight, `[c_out, c_in, 1, 1]`: the sum over samples of `x` `[c_in, p]` times the
    /// output gradient^T `[p, c_out]`, transposed at the end (the orientation of im2col's).
    pub(super) fn pointwise_weight_grad(&self, x: &[f32], g: &[f32]) -> Vec<f32> {
        let (p, c_in, c_out) = (self.positions(), self.c_in, self.c_out);
        let total = sum_over_blocks(self.batch, c_in * c_out, |s, sum| {
            let (xs, gs) = (&x[s * c_in * p..][..c_in * p], &g[s * c_out * p..][..c_out * p]);
            // sum [c_in, c_out] += x [c_in, p] * g^T [p, c_out]
            unsafe { (self.product)(c_in, c_out, p, sum.as_mut_ptr(), true, (xs, 1, p as isize), (gs, p as isize, 1)) };
        });
        transposed(&total, c_in, c_out)
    }

    /// dLoss/dx, `[batch, c_in, h, w]`: per sample, weight^T `[c_in, c_out]` times the output
    /// gradient `[c_out, p]`.
    pub(super) fn pointwise_input_grad(&self, w: &[f32], g: &[f32]) -> Vec<f32> {
        let (p, c_in, c_out) = (self.positions(), self.c_in, self.c_out);
        let wt = self.weight_t(w);
        let write = |s: usize, dx: &mut [MaybeUninit<f32>]| {
            let gs = &g[s * c_out * p..][..c_out * p];
            // dx [c_in, p] = weight^T [c_in, c_out] * g [c_out, p]
            unsafe { (self.product)(c_in, p, c_out, dx.as_mut_ptr().cast(), false, (&wt, 1, c_out as isize), (gs, 1, p as isize)) };
        };
        // SAFETY: the product writes all of a sample's `c_in x p` values.
        unsafe { par_written(self.batch * c_in * p, c_in * p, write) }
    }
}
