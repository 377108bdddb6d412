//! A conv2d's output and its two gradients on burn's flex backend as im2col, a matrix product
//! (the `gemm` crate that flex itself multiplies with) and col2im, for f32 tensors with one
//! group; any stride, padding and dilation.
//!
//! The batch is cut into blocks of a few samples that the threads share out. A block's columns
//! hold one row per kernel tap (input channel, kernel row, kernel column) and one column per
//! output position of each of its samples; a block of the paper CNN's first layers takes 2.4 MB,
//! so the columns stay near the cache instead of streaming the whole batch's (75 MB a layer)
//! through memory.

use burn::backend::DType;
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use crate::flex_slices::{slice, tensor};

/// Output positions a block aims at: enough for the product's inner dimension to run at speed.
const BLOCK_POSITIONS: usize = 256;

/// One conv's sizes, read from its tensors.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    batch: usize,
    c_in: usize,
    /// Input height and width.
    size: [usize; 2],
    c_out: usize,
    kernel: [usize; 2],
    /// Output height and width, from the output gradient.
    out: [usize; 2],
    stride: [usize; 2],
    /// Padding before each axis (after it only changes the output size, read from `out`).
    pad: [usize; 2],
    dilation: [usize; 2],
    /// Samples per block instead of the chosen number (tests cut small batches).
    block_samples: Option<usize>,
}

impl Plan {
    /// `None` where the kernels here do not apply (another dtype, groups, shapes that do not
    /// match): the caller then uses the backend's own gradient.
    pub fn new(x: &FlexTensor, weight: &FlexTensor, output_grad: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let gs = output_grad.layout().shape();
        if output_grad.dtype() != DType::F32 || gs.num_dims() != 4 {
            return None;
        }
        Self::with_output(x, weight, [gs[2], gs[3]], options).filter(|plan| gs[0] == plan.batch && gs[1] == plan.c_out)
    }

    /// The plan of the forward conv, its output size computed as burn does.
    pub fn forward(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        if xs.num_dims() != 4 || ws.num_dims() != 4 {
            return None;
        }
        let size = |axis: usize| {
            let (begin, end) = options.padding[axis];
            let reach = options.dilation[axis] * (ws[axis + 2].max(1) - 1) + 1;
            (xs[axis + 2] + begin + end).checked_sub(reach).map(|room| room / options.stride[axis] + 1)
        };
        Self::with_output(x, weight, [size(0)?, size(1)?], options)
    }

    fn with_output(x: &FlexTensor, weight: &FlexTensor, out: [usize; 2], options: &ConvOptions<2>) -> Option<Self> {
        let f32s = [x, weight].iter().all(|t| t.dtype() == DType::F32);
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        if !f32s || options.groups != 1 || xs.num_dims() != 4 || ws.num_dims() != 4 {
            return None;
        }
        let plan = Plan {
            batch: xs[0],
            c_in: xs[1],
            size: [xs[2], xs[3]],
            c_out: ws[0],
            kernel: [ws[2], ws[3]],
            out,
            stride: options.stride,
            pad: options.padding_begin(),
            dilation: options.dilation,
            block_samples: None,
        };
        let consistent = ws[1] == plan.c_in && plan.batch > 0 && plan.positions() > 0 && plan.taps() > 0 && plan.c_out > 0;
        consistent.then_some(plan)
    }

    /// Rows of the columns: the kernel taps.
    fn taps(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Samples per block: [`BLOCK_POSITIONS`] positions, but at least two blocks per thread
    /// where the batch allows.
    fn block(&self) -> usize {
        let wanted = BLOCK_POSITIONS.div_ceil(self.positions());
        let shared = self.batch / (2 * rayon::current_num_threads());
        self.block_samples.unwrap_or(wanted.min(shared)).clamp(1, self.batch)
    }

    /// The conv itself, `[batch, c_out, oh, ow]`: weight `[c_out, taps]` times each block's
    /// columns `[taps, n*p]`, plus the bias.
    pub fn output(&self, x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>) -> FlexTensor {
        let (x, w) = (x.to_contiguous(), weight.to_contiguous());
        let bias = bias.map(FlexTensor::to_contiguous);
        let (x, w, bias) = (slice(&x), slice(&w), bias.as_ref().map(slice));
        let (taps, p, block) = (self.taps(), self.positions(), self.block());
        let mut y = vec![0.0f32; self.batch * self.c_out * p];
        y.par_chunks_mut(block * self.c_out * p).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(columns, product_), (b, region)| {
                let n = region.len() / (self.c_out * p);
                columns.resize(taps * n * p, 0.0);
                product_.resize(self.c_out * n * p, 0.0);
                self.im2col(x, b * block, n, columns);
                let k = n * p;
                for (c, row) in product_.chunks_mut(k).enumerate() {
                    row.fill(bias.map_or(0.0, |b| b[c]));
                }
                // product [c_out, k] = bias + weight [c_out, taps] * columns [taps, k]
                unsafe { product(self.c_out, k, taps, product_, true, (w, 1, taps as isize), (columns, 1, k as isize)) };
                for (c, row) in product_.chunks(k).enumerate() {
                    for (s, values) in row.chunks(p).enumerate() {
                        region[(s * self.c_out + c) * p..][..p].copy_from_slice(values);
                    }
                }
            },
        );
        tensor(y, [self.batch, self.c_out, self.out[0], self.out[1]])
    }

    /// dLoss/dWeight, `[c_out, c_in, kh, kw]`: the sum over blocks of the block's output gradient
    /// `[c_out, n*p]` times its columns^T `[n*p, taps]`.
    pub fn weight_grad(&self, x: &FlexTensor, output_grad: &FlexTensor) -> FlexTensor {
        let (x, g) = (x.to_contiguous(), output_grad.to_contiguous());
        let (x, g) = (slice(&x), slice(&g));
        let (taps, p, block) = (self.taps(), self.positions(), self.block());
        let total = (0..self.batch.div_ceil(block))
            .into_par_iter()
            .fold(
                || (vec![0.0f32; self.c_out * taps], Vec::new(), Vec::new()),
                |(mut sum, mut columns, mut grads), b| {
                    let (start, n) = (b * block, block.min(self.batch - b * block));
                    columns.resize(taps * n * p, 0.0);
                    grads.resize(self.c_out * n * p, 0.0);
                    self.im2col(x, start, n, &mut columns);
                    self.gather_output_grad(g, start, n, &mut grads);
                    let k = n * p;
                    // sum [c_out, taps] += grads [c_out, k] * columns^T [k, taps]
                    unsafe { product(self.c_out, taps, k, &mut sum, true, (&grads, 1, k as isize), (&columns, k as isize, 1)) };
                    (sum, columns, grads)
                },
            )
            .map(|(sum, _, _)| sum)
            .reduce(|| vec![0.0f32; self.c_out * taps], |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            });
        tensor(total, [self.c_out, self.c_in, self.kernel[0], self.kernel[1]])
    }

    /// dLoss/dx, `[batch, c_in, h, w]`: col2im of weight^T `[taps, c_out]` times each block's
    /// output gradient `[c_out, n*p]`.
    pub fn input_grad(&self, weight: &FlexTensor, output_grad: &FlexTensor) -> FlexTensor {
        let (w, g) = (weight.to_contiguous(), output_grad.to_contiguous());
        let (w, g) = (slice(&w), slice(&g));
        let (taps, p, block) = (self.taps(), self.positions(), self.block());
        let sample = self.c_in * self.size[0] * self.size[1];
        let mut dx = vec![0.0f32; self.batch * sample];
        dx.par_chunks_mut(block * sample).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(columns, grads), (b, region)| {
                let (start, n) = (b * block, region.len() / sample);
                columns.resize(taps * n * p, 0.0);
                grads.resize(self.c_out * n * p, 0.0);
                self.gather_output_grad(g, start, n, grads);
                let k = n * p;
                // columns [taps, k] = weight^T [taps, c_out] * grads [c_out, k]
                unsafe { product(taps, k, self.c_out, columns, false, (w, taps as isize, 1), (grads, 1, k as isize)) };
                self.col2im_add(columns, n, region);
            },
        );
        tensor(dx, [self.batch, self.c_in, self.size[0], self.size[1]])
    }

    /// Samples `start..start + n` of the output gradient `[batch, c_out, p]` as `[c_out, n*p]`.
    fn gather_output_grad(&self, g: &[f32], start: usize, n: usize, out: &mut [f32]) {
        let p = self.positions();
        for (c, row) in out.chunks_mut(n * p).enumerate() {
            for (s, dst) in row.chunks_mut(p).enumerate() {
                let src = ((start + s) * self.c_out + c) * p;
                dst.copy_from_slice(&g[src..src + p]);
            }
        }
    }

    /// Fills `columns` (`[taps, n*p]`) from samples `start..start + n` of `x` (`[batch, c_in, h, w]`).
    fn im2col(&self, x: &[f32], start: usize, n: usize, columns: &mut [f32]) {
        let ([h, w], [kh, kw], [oh_len, ow_len]) = (self.size, self.kernel, self.out);
        let p = self.positions();
        columns.chunks_mut(n * p).enumerate().for_each(|(tap, row)| {
            let (c, ki, kj) = (tap / (kh * kw), (tap / kw) % kh, tap % kw);
            let cols = self.valid(1, kj, w);
            for s in 0..n {
                let plane = &x[((start + s) * self.c_in + c) * h * w..][..h * w];
                for oh in 0..oh_len {
                    let out = &mut row[s * p + oh * ow_len..][..ow_len];
                    match self.input_index(0, oh, ki, h) {
                        Some(ih) => self.copy_row(&plane[ih * w..][..w], out, cols, kj),
                        None => out.fill(0.0),
                    }
                }
            }
        });
    }

    /// Adds `columns` (`[taps, n*p]`, the gradient of n samples' columns) into `dx`
    /// (`[n, c_in, h, w]`); each (sample, channel) plane is written by one task.
    fn col2im_add(&self, columns: &[f32], n: usize, dx: &mut [f32]) {
        let ([h, w], [kh, kw], [oh_len, ow_len]) = (self.size, self.kernel, self.out);
        let p = self.positions();
        dx.chunks_mut(h * w).enumerate().for_each(|(i, plane)| {
            let (s, c) = (i / self.c_in, i % self.c_in);
            for ki in 0..kh {
                for kj in 0..kw {
                    let (lo, hi) = self.valid(1, kj, w);
                    if lo >= hi {
                        continue; // this kernel column reads only padding
                    }
                    let row = &columns[((c * kh + ki) * kw + kj) * n * p + s * p..][..p];
                    for oh in 0..oh_len {
                        let Some(ih) = self.input_index(0, oh, ki, h) else { continue };
                        let src = &row[oh * ow_len..][..ow_len];
                        let dst = &mut plane[ih * w..][..w];
                        let first = lo * self.stride[1] + kj * self.dilation[1] - self.pad[1];
                        if self.stride[1] == 1 {
                            dst[first..first + hi - lo].iter_mut().zip(&src[lo..hi]).for_each(|(d, v)| *d += v);
                        } else {
                            for (o, v) in src[lo..hi].iter().enumerate() {
                                dst[first + o * self.stride[1]] += v;
                            }
                        }
                    }
                }
            }
        });
    }

    /// The input row or column that output index `o` reads through kernel index `k` on `axis`.
    fn input_index(&self, axis: usize, o: usize, k: usize, len: usize) -> Option<usize> {
        (o * self.stride[axis] + k * self.dilation[axis]).checked_sub(self.pad[axis]).filter(|&i| i < len)
    }

    /// The output indices `lo..hi` on `axis` whose input index through kernel index `k` lies inside.
    fn valid(&self, axis: usize, k: usize, len: usize) -> (usize, usize) {
        let out = self.out[axis];
        let lo = (0..out).find(|&o| self.input_index(axis, o, k, len).is_some()).unwrap_or(out);
        let hi = (lo..out).rev().find(|&o| self.input_index(axis, o, k, len).is_some()).map_or(lo, |o| o + 1);
        (lo, hi)
    }

    /// One output row of the columns: `src` (an input row) read at the kernel column `kj`,
    /// zero outside `lo..hi`.
    fn copy_row(&self, src: &[f32], out: &mut [f32], (lo, hi): (usize, usize), kj: usize) {
        if lo >= hi {
            // This kernel column reads only padding.
            out.fill(0.0);
            return;
        }
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        let first = lo * self.stride[1] + kj * self.dilation[1] - self.pad[1];
        if self.stride[1] == 1 {
            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        } else {
            for (o, v) in out[lo..hi].iter_mut().enumerate() {
                *v = src[first + o * self.stride[1]];
            }
        }
    }
}

/// `dst [m, n] (+)= lhs [m, k] * rhs [k, n]` on this thread, each matrix given as (values,
/// column stride, row stride) and `dst` row-major; `accumulate` keeps what `dst` held.
///
/// # Safety
/// The strides must keep every index of an `m x k`, `k x n` and `m x n` matrix inside its slice.
#[allow(clippy::too_many_arguments)]
unsafe fn product(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) {
    debug_assert!(dst.len() >= m * n);
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.0.as_ptr(),
            lhs.1,
            lhs.2,
            rhs.0.as_ptr(),
            rhs.1,
            rhs.2,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};

    fn flex(t: &Tensor<4>) -> FlexTensor {
        FlexTensor::from_data(t.to_data())
    }

    fn close(ours: FlexTensor, theirs: Tensor<4>, what: &str) {
        let ours = ours.into_data().try_to_vec::<f32>().expect("f32");
        let theirs = theirs.into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
        let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "{what}: element {i}: {a} against burn's {b}");
        }
    }

    /// The output and both gradients against burn's own (`conv2d` and its autodiff on flex) for
    /// `x: [batch, c_in, h, w]`, a `c_out x c_in x kh x kw` kernel and `options`, with the columns
    /// cut into chunks of `chunk` samples.
    fn check(x: [usize; 4], c_out: usize, kernel: [usize; 2], options: ConvOptions<2>, chunk: usize) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(x, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let w = Tensor::<4>::random([c_out, x.dims()[1], kernel[0], kernel[1]], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let y = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
        let g = y.clone().detach().random_like(Distribution::Normal(0.0, 1.0));
        let grads = (y * g.clone()).sum().backward();
        let what = format!("x {:?}, kernel {kernel:?}, {options:?}, chunk {chunk}", x.dims());
        let mut plan = Plan::new(&flex(&x), &flex(&w), &flex(&g), &options).expect("an f32 conv with one group");
        plan.block_samples = Some(chunk);
        let b = Tensor::<1>::random([c_out], Distribution::Normal(0.0, 1.0), &device);
        let mut forward = Plan::forward(&flex(&x), &flex(&w), &options).expect("an f32 conv with one group");
        forward.block_samples = Some(chunk);
        let with_bias = burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
        close(forward.output(&flex(&x), &flex(&w), Some(&FlexTensor::from_data(b.to_data()))), with_bias, &format!("output, {what}"));
        close(plan.weight_grad(&flex(&x), &flex(&g)), w.grad(&grads).expect("w takes part"), &format!("weight, {what}"));
        close(plan.input_grad(&flex(&w), &flex(&g)), x.grad(&grads).expect("x takes part"), &format!("input, {what}"));
    }

    #[test]
    fn output_and_gradients_match_burns_for_strides_paddings_dilations_and_blocks() {
        check([3, 4, 9, 7], 5, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 3);
        check([3, 4, 9, 7], 5, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 2);
        check([5, 3, 11, 10], 6, [3, 2], ConvOptions::new([2, 3], [1, 0], [1, 1], 1), 2);
        check([2, 2, 12, 12], 3, [3, 3], ConvOptions::new([1, 1], [2, 2], [2, 2], 1), 1);
        check([2, 8, 6, 6], 4, [1, 1], ConvOptions::new([1, 1], [0, 0], [1, 1], 1), 2);
        check([2, 3, 8, 9], 4, [7, 7], ConvOptions::new([2, 2], [3, 3], [1, 1], 1), 2);
        check([2, 3, 8, 8], 4, [3, 3], ConvOptions::new_with_padding([2, 2], [(0, 1), (1, 0)], [1, 1], 1), 1);
        // Kernel columns and rows that read only padding: ResNet50's convs on a 32-pixel image.
        check([2, 3, 1, 2], 4, [3, 3], ConvOptions::new([2, 2], [1, 1], [1, 1], 1), 1);
        check([2, 3, 2, 3], 4, [7, 7], ConvOptions::new([2, 2], [3, 3], [1, 1], 1), 2);
        check([3, 2, 1, 1], 4, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 2);
    }

    #[test]
    fn other_dtypes_and_groups_are_left_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 4, 5, 5], &device);
        let w = Tensor::<4>::zeros([4, 2, 3, 3], &device);
        let g = Tensor::<4>::zeros([1, 4, 3, 3], &device);
        assert!(Plan::new(&flex(&x), &flex(&w), &flex(&g), &ConvOptions::new([1, 1], [0, 0], [1, 1], 2)).is_none());
        let x16 = FlexTensor::from_data(x.to_data().convert::<burn::tensor::f16>());
        assert!(Plan::new(&x16, &flex(&w), &flex(&g), &ConvOptions::new([1, 1], [0, 0], [1, 1], 1)).is_none());
    }
}
