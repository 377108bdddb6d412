//! A conv2d's output and its two gradients as im2col, one matrix product and col2im on plain f32
//! slices (`[batch, c_in, h, w]` inputs, `[c_out, c_in, kh, kw]` weights), one group; any stride,
//! padding and dilation. The CPU backends' tensors reach it through [`super::tensors`].
//!
//! The batch is cut into blocks of a few samples that the threads share out, and a one-sample
//! block into pieces of a few output rows. A piece's columns hold one row per kernel tap (input
//! channel, kernel row, kernel column) and one column per output position; about 256 positions
//! (590 KB for a 64-channel layer) keep them in the core's own cache while the product reads
//! them, where a whole batch's would stream 75 MB a layer through memory.
//!
//! The product is the `gemm` crate's natively (what flex itself multiplies with) and
//! `matrixmultiply`'s in the browser (what ndarray multiplies with; LLVM vectorizes it for
//! simd128). Without threads (the browser) rayon runs every block on the calling thread.

use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Mutex;

use crate::simd::with_avx2;
use crate::uninit::{par_written, zeroed};

/// Output positions a block aims at: enough for the product's inner dimension to run at speed.
const BLOCK_POSITIONS: usize = 256;

/// Column values a block aims at where its kernel has few taps (few input channels): more
/// positions per product, whose fixed cost otherwise weighs on the first layers. 256 positions
/// of a 64-channel 3x3 layer (590 KB).
const BLOCK_VALUES: usize = 256 * 576;

/// Output rows narrower than this are copied through a table of source positions instead of
/// row by row: a 4x4 layer's rows are a few values each, and copying them one by one took longer
/// than the product itself.
const TABLE_BELOW: usize = 16;

/// Whether 3x3 stride-1 convs may run as Winograd's F(2x2, 3x3) ([`super::winograd`], which
/// picks the layers). Not in the page yet: its speed there (simd128, one thread, the MNIST CNN's
/// 8-32 channels) has not been measured, and without it the worker is 60 KB smaller.
pub(super) const WINOGRAD: bool = cfg!(feature = "native");

/// A table entry that reads padding.
const PADDING: u32 = u32::MAX;

/// Output positions from which a 1x1 stride-1 unpadded conv reads its input in place
/// ([`super::pointwise`]); below, im2col's copy puts several samples side by side in one wider
/// product (ResNet50's 7x7 layers: 49 positions a sample).
const POINTWISE_FROM: usize = 128;

/// `dst [m, n] (+)= lhs [m, k] * rhs [k, n]` on this thread, each matrix given as (values,
/// column stride, row stride) and `dst` row-major; `accumulate` keeps what `dst` held, and
/// without it `dst` is only written (it may be uninitialised).
///
/// # Safety
/// The strides must keep every index of an `m x k` and a `k x n` matrix inside its slice, and
/// `dst` must be valid for writing `m x n` values (and reading them where `accumulate`).
pub type Product = unsafe fn(usize, usize, usize, *mut f32, bool, (&[f32], isize, isize), (&[f32], isize, isize));

/// This build's matrix product.
#[cfg(feature = "native")]
pub const PRODUCT: Product = gemm_product;
#[cfg(not(feature = "native"))]
pub const PRODUCT: Product = matrixmultiply_product;

/// One conv's sizes.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    /// Input height and width.
    pub(super) size: [usize; 2],
    pub(super) c_out: usize,
    pub(super) kernel: [usize; 2],
    /// Output height and width, from the output gradient.
    pub(super) out: [usize; 2],
    pub(super) stride: [usize; 2],
    /// Padding before each axis (after it only changes the output size, read from `out`).
    pub(super) pad: [usize; 2],
    pub(super) dilation: [usize; 2],
    /// Samples per block instead of the chosen number (tests cut small batches).
    pub(super) block_samples: Option<usize>,
    /// Output rows per piece of a one-sample block instead of the chosen number (tests cut
    /// small images).
    pub(super) piece_rows: Option<usize>,
    /// Output widths below which im2col and col2im go through a table ([`TABLE_BELOW`]; tests
    /// try both ways).
    pub(super) table_below: usize,
    /// The matrix product ([`PRODUCT`]; tests try both).
    pub(super) product: Product,
    /// 3x3 stride-1 convs as Winograd's F(2x2, 3x3) (where [`WINOGRAD`]): `None` where
    /// [`super::winograd`] finds it pays, `Some` always or never (tests try both ways).
    pub(super) winograd: Option<bool>,
    /// Output positions from which 1x1 convs read their input in place ([`POINTWISE_FROM`];
    /// tests try both ways).
    pub(super) pointwise_from: usize,
}

/// The columns of one product: output rows `rows` of samples `start..start + n`.
#[derive(Clone, Debug)]
pub(super) struct Piece {
    pub(super) start: usize,
    pub(super) n: usize,
    pub(super) rows: Range<usize>,
}

impl Plan {
    /// The plan of a conv's gradients: `x` `[batch, c_in, h, w]`, `weight` `[c_out, c_in, kh, kw]`
    /// and the output gradient's `[batch, c_out, oh, ow]`. `None` where the kernels here do not
    /// apply (groups, shapes that do not match): the caller then uses the backend's own.
    pub fn new(x: &[usize], weight: &[usize], output_grad: &[usize], options: &ConvOptions<2>) -> Option<Self> {
        let &[gb, gc, oh, ow] = output_grad else { return None };
        Self::with_output(x, weight, [oh, ow], options).filter(|plan| gb == plan.batch && gc == plan.c_out)
    }

    /// The plan of the forward conv, its output size computed as burn does.
    pub fn forward(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Option<Self> {
        let (&[_, _, h, w], &[_, _, kh, kw]) = (x, weight) else { return None };
        let size = |axis: usize, len: usize, k: usize| {
            let (begin, end) = options.padding[axis];
            let reach = options.dilation[axis] * (k.max(1) - 1) + 1;
            (len + begin + end).checked_sub(reach).map(|room| room / options.stride[axis] + 1)
        };
        Self::with_output(x, weight, [size(0, h, kh)?, size(1, w, kw)?], options)
    }

    fn with_output(x: &[usize], weight: &[usize], out: [usize; 2], options: &ConvOptions<2>) -> Option<Self> {
        let (&[batch, c_in, h, w], &[c_out, wc_in, kh, kw]) = (x, weight) else { return None };
        if options.groups != 1 {
            return None;
        }
        let plan = Plan {
            batch,
            c_in,
            size: [h, w],
            c_out,
            kernel: [kh, kw],
            out,
            stride: options.stride,
            pad: options.padding_begin(),
            dilation: options.dilation,
            block_samples: None,
            piece_rows: None,
            table_below: TABLE_BELOW,
            product: PRODUCT,
            winograd: None,
            pointwise_from: POINTWISE_FROM,
        };
        let consistent = wc_in == plan.c_in && plan.batch > 0 && plan.positions() > 0 && plan.taps() > 0 && plan.c_out > 0;
        consistent.then_some(plan)
    }

    /// The output's shape, `[batch, c_out, oh, ow]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.out[0], self.out[1]]
    }

    /// The weight's shape, `[c_out, c_in, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in, self.kernel[0], self.kernel[1]]
    }

    /// The input's shape, `[batch, c_in, h, w]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.c_in, self.size[0], self.size[1]]
    }

    /// Rows of the columns: the kernel taps.
    pub(super) fn taps(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    pub(super) fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Output positions per product: [`BLOCK_POSITIONS`], more where the taps are few.
    fn block_positions(&self) -> usize {
        BLOCK_POSITIONS.max(BLOCK_VALUES / self.taps())
    }

    /// Samples per block: [`Self::block_positions`], but at least one block per thread.
    fn block(&self) -> usize {
        self.samples_per_block(self.block_positions(), self.positions())
    }

    /// Samples per block for blocks of about `target` cells where a sample has `per_sample`
    /// (output positions here, tiles in [`super::winograd`]), but at least one block per thread.
    pub(super) fn samples_per_block(&self, target: usize, per_sample: usize) -> usize {
        let wanted = target.div_ceil(per_sample);
        let shared = self.batch.div_ceil(rayon::current_num_threads());
        self.block_samples.unwrap_or(wanted.min(shared)).clamp(1, self.batch)
    }

    /// The pieces of the block of samples `start..start + n`, one product each: the whole block,
    /// or where a block is one sample, a few of its output rows at a time (about
    /// [`Self::block_positions`]), so that a piece's columns stay in the core's own cache
    /// while the product reads them: the 32x32 layers ran 1.5-2x slower with a whole sample's.
    fn pieces(&self, start: usize, n: usize) -> impl Iterator<Item = Piece> {
        self.cut(start, n, self.out, self.block_positions())
    }

    /// The pieces of samples `start..start + n` whose cells form a `[rows, cols]` grid per
    /// sample: the whole block, or a one-sample block's rows about `target` cells at a time.
    pub(super) fn cut(&self, start: usize, n: usize, [rows, cols]: [usize; 2], target: usize) -> impl Iterator<Item = Piece> {
        let per_piece = if n > 1 { rows } else { self.piece_rows.unwrap_or(target / cols).max(1) };
        (0..rows.div_ceil(per_piece)).map(move |i| Piece { start, n, rows: i * per_piece..((i + 1) * per_piece).min(rows) })
    }

    /// Columns of a piece: its output positions.
    fn width(&self, piece: &Piece) -> usize {
        piece.n * piece.rows.len() * self.out[1]
    }

    /// Where a piece's `[channels, width]` buffer lies in a `[batch, channels, oh, ow]` tensor:
    /// (offset in the tensor, offset in the buffer, length) of each contiguous run.
    fn runs(&self, piece: &Piece, channels: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let (p, width, (start, n)) = (self.positions(), self.width(piece), (piece.start, piece.n));
        let (first, len) = (piece.rows.start * self.out[1], piece.rows.len() * self.out[1]);
        (0..channels).flat_map(move |c| (0..n).map(move |s| (((start + s) * channels + c) * p + first, c * width + s * len, len)))
    }

    /// The conv itself, `[batch, c_out, oh, ow]`: weight `[c_out, taps]` times each piece's
    /// columns `[taps, width]`, plus the bias.
    pub fn output(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        if self.winograd() {
            return self.winograd_output(x, w, bias);
        }
        if self.pointwise() {
            return self.pointwise_output(x, w, bias);
        }
        let (taps, block) = (self.taps(), self.block());
        let sample = self.c_out * self.positions();
        let write = |b: usize, region: &mut [MaybeUninit<f32>]| {
            with_scratch(|columns, product_, _| {
                let base = b * block * sample;
                for piece in self.pieces(b * block, region.len() / sample) {
                    let k = self.width(&piece);
                    columns.resize(taps * k, 0.0);
                    product_.resize(self.c_out * k, 0.0);
                    self.im2col(x, &piece, columns);
                    for (c, row) in product_.chunks_mut(k).enumerate() {
                        row.fill(bias.map_or(0.0, |b| b[c]));
                    }
                    // product [c_out, k] = bias + weight [c_out, taps] * columns [taps, k]
                    unsafe { (self.product)(self.c_out, k, taps, product_.as_mut_ptr(), true, (w, 1, taps as isize), (columns, 1, k as isize)) };
                    for (at, from, len) in self.runs(&piece, self.c_out) {
                        region[at - base..][..len].write_copy_of_slice(&product_[from..][..len]);
                    }
                }
            })
        };
        // SAFETY: a block's pieces cover its samples' output rows, and their runs every channel
        // of those rows.
        unsafe { par_written(self.batch * sample, block * sample, write) }
    }

    /// dLoss/dWeight, `[c_out, c_in, kh, kw]`: the sum over pieces of the piece's columns
    /// `[taps, width]` times its output gradient^T `[width, c_out]`, transposed at the end.
    pub fn weight_grad(&self, x: &[f32], g: &[f32]) -> Vec<f32> {
        if self.winograd() {
            return self.winograd_weight_grad(x, g);
        }
        if self.pointwise() {
            return self.pointwise_weight_grad(x, g);
        }
        let (taps, block) = (self.taps(), self.block());
        let total = sum_over_blocks(self.batch.div_ceil(block), taps * self.c_out, |b, sum| {
            with_scratch(|columns, grads, _| {
                for piece in self.pieces(b * block, block.min(self.batch - b * block)) {
                    self.gather(g, &piece, grads);
                    self.add_weight_grad(x, grads, &piece, columns, sum);
                }
            })
        });
        transposed(&total, taps, self.c_out)
    }

    /// dLoss/dx, `[batch, c_in, h, w]`: col2im of weight^T `[taps, c_out]` times each piece's
    /// output gradient `[c_out, width]`.
    pub fn input_grad(&self, w: &[f32], g: &[f32]) -> Vec<f32> {
        if self.winograd() {
            return self.winograd_input_grad(w, g);
        }
        if self.pointwise() {
            return self.pointwise_input_grad(w, g);
        }
        let (wt, block, sample) = (self.weight_t(w), self.block(), self.input_sample());
        let write = |b: usize, region: &mut [MaybeUninit<f32>]| {
            let region = zeroed(region);
            with_scratch(|columns, grads, _| {
                for piece in self.pieces(b * block, region.len() / sample) {
                    self.gather(g, &piece, grads);
                    self.add_input_grad(&wt, grads, &piece, columns, region);
                }
            })
        };
        // SAFETY: `write` zeroes its region before adding into it.
        unsafe { par_written(self.batch * sample, block * sample, write) }
    }

    /// Both gradients, `(dx, dw)`, in one pass over the blocks: each piece's output gradient is
    /// gathered (Winograd's: transformed) once for the two.
    pub fn grads(&self, x: &[f32], w: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
        if self.winograd() {
            return self.winograd_grads(x, w, g);
        }
        if self.pointwise() {
            return (self.pointwise_input_grad(w, g), self.pointwise_weight_grad(x, g));
        }
        let (wt, block, sample, taps) = (self.weight_t(w), self.block(), self.input_sample(), self.taps());
        let (dx, total) = write_and_sum(self.batch * sample, block * sample, taps * self.c_out, |b, region, sum| {
            with_scratch(|columns, grads, _| {
                for piece in self.pieces(b * block, region.len() / sample) {
                    self.gather(g, &piece, grads);
                    self.add_input_grad(&wt, grads, &piece, columns, region);
                    self.add_weight_grad(x, grads, &piece, columns, sum);
                }
            })
        });
        (dx, transposed(&total, taps, self.c_out))
    }

    /// Values of one sample of the input.
    pub(super) fn input_sample(&self) -> usize {
        self.c_in * self.size[0] * self.size[1]
    }

    /// weight^T `[taps, c_out]` as a matrix of its own: the product ran at half the speed on a
    /// transposed view of the weight (the 4x4 layers).
    pub(super) fn weight_t(&self, w: &[f32]) -> Vec<f32> {
        transposed(w, self.c_out, self.taps())
    }

    /// Adds a piece's share of dLoss/dx into `dx` (its block's samples): col2im of weight^T
    /// `[taps, c_out]` times `grads`, the piece's output gradient `[c_out, width]` ([`Self::gather`]).
    fn add_input_grad(&self, wt: &[f32], grads: &[f32], piece: &Piece, columns: &mut Vec<f32>, dx: &mut [f32]) {
        let (taps, k) = (self.taps(), self.width(piece));
        columns.resize(taps * k, 0.0);
        // columns [taps, k] = weight^T [taps, c_out] * grads [c_out, k]
        unsafe { (self.product)(taps, k, self.c_out, columns.as_mut_ptr(), false, (wt, 1, self.c_out as isize), (&grads[..self.c_out * k], 1, k as isize)) };
        self.col2im_add(columns, piece, dx);
    }

    /// Adds a piece's share of dLoss/dWeight^T into `sum` (`[taps, c_out]`): its columns
    /// `[taps, width]` times `grads^T` `[width, c_out]`.
    fn add_weight_grad(&self, x: &[f32], grads: &[f32], piece: &Piece, columns: &mut Vec<f32>, sum: &mut [f32]) {
        let (taps, k) = (self.taps(), self.width(piece));
        columns.resize(taps * k, 0.0);
        self.im2col(x, piece, columns);
        // sum [taps, c_out] += columns [taps, k] * grads^T [k, c_out]; the other orientation,
        // [c_out, taps], ran at half the speed on the 32x32 layers.
        unsafe { (self.product)(taps, self.c_out, k, sum.as_mut_ptr(), true, (columns, 1, k as isize), (&grads[..self.c_out * k], k as isize, 1)) };
    }

    /// A piece of the output gradient `[batch, c_out, p]` as `[c_out, width]`.
    fn gather(&self, g: &[f32], piece: &Piece, out: &mut Vec<f32>) {
        out.resize(self.c_out * self.width(piece), 0.0);
        for (at, from, len) in self.runs(piece, self.c_out) {
            out[from..][..len].copy_from_slice(&g[at..][..len]);
        }
    }

    /// Fills `columns` (`[taps, width]`) from `x` (`[batch, c_in, h, w]`).
    fn im2col(&self, x: &[f32], piece: &Piece, columns: &mut [f32]) {
        let ([h, w], [kh, kw], ow_len) = (self.size, self.kernel, self.out[1]);
        let len = piece.rows.len() * ow_len;
        if let Some(table) = self.table(&piece.rows) {
            self.im2col_table(x, piece, &table, columns);
            return;
        }
        let spans = self.spans(w);
        columns.chunks_mut(piece.n * len).enumerate().for_each(|(tap, row)| {
            let (c, ki, kj) = (tap / (kh * kw), (tap / kw) % kh, tap % kw);
            for s in 0..piece.n {
                let plane = &x[((piece.start + s) * self.c_in + c) * h * w..][..h * w];
                for (r, oh) in piece.rows.clone().enumerate() {
                    let out = &mut row[s * len + r * ow_len..][..ow_len];
                    match self.input_index(0, oh, ki, h) {
                        Some(ih) => self.copy_row(&plane[ih * w..][..w], out, spans[kj]),
                        None => out.fill(0.0),
                    }
                }
            }
        });
    }

    /// [`Self::im2col`] through a [`Self::table`]. Without a branch per value (the source
    /// clamped into the plane, padding chosen after the read) the loop runs eight values to an
    /// AVX2 step; with one it was four fifths of im2col's time in fast-CNN training steps, and
    /// im2col went from 7.5 to 5.2% of the step (perf, 2026-12-05).
    #[inline(always)]
    fn im2col_table_on(&self, x: &[f32], piece: &Piece, table: &[u32], columns: &mut [f32]) {
        let ([h, w], [kh, kw]) = (self.size, self.kernel);
        let len = piece.rows.len() * self.out[1];
        if h * w == 0 {
            columns.fill(0.0);
            return;
        }
        // Loops, not closures: a closure is compiled apart, without AVX2.
        for (tap, row) in columns.chunks_mut(piece.n * len).enumerate() {
            let (c, sources) = (tap / (kh * kw), &table[(tap % (kh * kw)) * len..][..len]);
            for (s, out) in row.chunks_mut(len).enumerate() {
                let plane = &x[((piece.start + s) * self.c_in + c) * h * w..][..h * w];
                let last = plane.len() - 1;
                for (d, &i) in out.iter_mut().zip(sources) {
                    let v = plane[(i as usize).min(last)];
                    *d = if i == PADDING { 0.0 } else { v };
                }
            }
        }
    }

    /// Adds `columns` (`[taps, width]`, the gradient of a piece's columns) into `dx`, the
    /// piece's samples of the input gradient (`[n, c_in, h, w]`).
    fn col2im_add(&self, columns: &[f32], piece: &Piece, dx: &mut [f32]) {
        let ([h, w], [kh, kw], ow_len) = (self.size, self.kernel, self.out[1]);
        let len = piece.rows.len() * ow_len;
        let width = piece.n * len;
        if h * w == 0 {
            return;
        }
        if let Some(table) = self.table(&piece.rows) {
            // Scattered through the table. Gathered instead (each input value from each tap's
            // row through the table turned around, branch-free as in `im2col_table_on`), it took
            // as long: 5% of a fast-CNN step either way (perf, 2026-12-05).
            dx.chunks_mut(h * w).enumerate().for_each(|(i, plane)| {
                let (s, c) = (i / self.c_in, i % self.c_in);
                for (k, sources) in table.chunks(len).enumerate() {
                    let row = &columns[(c * kh * kw + k) * width + s * len..][..len];
                    for (&v, &i) in row.iter().zip(sources) {
                        if i != PADDING {
                            plane[i as usize] += v;
                        }
                    }
                }
            });
            return;
        }
        let spans = self.spans(w);
        dx.chunks_mut(h * w).enumerate().for_each(|(i, plane)| {
            let (s, c) = (i / self.c_in, i % self.c_in);
            for ki in 0..kh {
                for (kj, span) in spans.iter().enumerate() {
                    let Some(Span { lo, hi, first }) = *span else { continue };
                    let row = &columns[((c * kh + ki) * kw + kj) * width + s * len..][..len];
                    for (r, oh) in piece.rows.clone().enumerate() {
                        let Some(ih) = self.input_index(0, oh, ki, h) else { continue };
                        let src = &row[r * ow_len..][lo..hi];
                        let dst = &mut plane[ih * w..][..w];
                        if self.stride[1] == 1 {
                            dst[first..first + hi - lo].iter_mut().zip(src).for_each(|(d, v)| *d += v);
                        } else {
                            for (o, v) in src.iter().enumerate() {
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

    /// Where output rows are narrower than [`Self::table_below`]: for each kernel tap (kernel
    /// row, kernel column) and each output position of `rows`, the position it reads in an
    /// input plane, or [`PADDING`].
    fn table(&self, rows: &Range<usize>) -> Option<Vec<u32>> {
        let ([h, w], [kh, kw], ow) = (self.size, self.kernel, self.out[1]);
        if ow >= self.table_below || h * w >= PADDING as usize {
            return None;
        }
        let mut table = Vec::with_capacity(kh * kw * rows.len() * ow);
        for ki in 0..kh {
            for kj in 0..kw {
                for oh in rows.clone() {
                    for o in 0..ow {
                        table.push(match (self.input_index(0, oh, ki, h), self.input_index(1, o, kj, w)) {
                            (Some(ih), Some(iw)) => (ih * w + iw) as u32,
                            _ => PADDING,
                        });
                    }
                }
            }
        }
        Some(table)
    }

    /// For each kernel column, the output columns that read inside an input row `w` wide;
    /// `None` where it reads only padding.
    fn spans(&self, w: usize) -> Vec<Option<Span>> {
        (0..self.kernel[1])
            .map(|kj| {
                let inside = |o: &usize| self.input_index(1, *o, kj, w).is_some();
                let lo = (0..self.out[1]).find(inside)?;
                let hi = (lo..self.out[1]).rev().find(inside)? + 1;
                Some(Span { lo, hi, first: self.input_index(1, lo, kj, w)? })
            })
            .collect()
    }

    /// One output row of the columns: `src` (an input row) read through one kernel column.
    fn copy_row(&self, src: &[f32], out: &mut [f32], span: Option<Span>) {
        let Some(Span { lo, hi, first }) = span else {
            out.fill(0.0);
            return;
        };
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        if self.stride[1] == 1 {
            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        } else {
            for (o, v) in out[lo..hi].iter_mut().enumerate() {
                *v = src[first + o * self.stride[1]];
            }
        }
    }
}

impl Plan {
    with_avx2! {
        fn im2col_table / im2col_table_on(self: &Plan, x: &[f32], piece: &Piece, table: &[u32], columns: &mut [f32]);
    }
}

/// The output columns `lo..hi` that one kernel column reads inside the input row, the first of
/// them at input column `first`.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: usize,
    hi: usize,
    first: usize,
}

thread_local! {
    /// Each thread's scratch buffers (im2col's columns and output-gradient piece, Winograd's
    /// transformed tiles), kept from one call to the next: fresh ones cost a page fault per 4 KB
    /// on every conv (a sixth of a training step in the kernel).
    static SCRATCH: RefCell<[Vec<f32>; 3]> = RefCell::default();
}

/// `f` with this thread's three scratch buffers (fresh ones if they are already in use).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffers) => {
            let [a, b, c] = &mut *buffers;
            f(a, b, c)
        }
        Err(_) => f(&mut Vec::new(), &mut Vec::new(), &mut Vec::new()),
    })
}

/// The sum over blocks `0..blocks` of what `add(block, sum)` adds into a `len`-value sum: one
/// sum per thread over a fixed share of the blocks, added up in order, so that a gradient does
/// not depend on how rayon scheduled the work.
pub(super) fn sum_over_blocks(blocks: usize, len: usize, add: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let share = thread_share(blocks);
    let sums: Vec<Vec<f32>> = (0..blocks.div_ceil(share))
        .into_par_iter()
        .map(|t| {
            let mut sum = vec![0.0f32; len];
            (t * share..((t + 1) * share).min(blocks)).for_each(|b| add(b, &mut sum));
            sum
        })
        .collect();
    added_in_order(sums, len)
}

/// Blocks per thread of `blocks`: each thread sums a fixed run of them, so that the sums do not
/// depend on scheduling, and [`write_and_sum`] cuts them as [`sum_over_blocks`] does.
fn thread_share(blocks: usize) -> usize {
    blocks.div_ceil(rayon::current_num_threads()).max(1)
}

/// The threads' sums, in the order of their shares, added up.
fn added_in_order(sums: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0; len]);
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(a, b)| *a += b);
    }
    total
}

/// [`sum_over_blocks`] over blocks that also write an output: `step(block, region, sum)` fills
/// the block's `region`-value part of a `len`-value output (zeroed first; the last part may be
/// shorter) and adds into the `sum_len`-value sum of its thread's share of the blocks, whose
/// sums are added up in order as there. Returns the output and the sum.
pub(super) fn write_and_sum(len: usize, region: usize, sum_len: usize, step: impl Fn(usize, &mut [f32], &mut [f32]) + Sync) -> (Vec<f32>, Vec<f32>) {
    let share = thread_share(len.div_ceil(region));
    let sums = Mutex::new(Vec::new());
    let write = |t: usize, part: &mut [MaybeUninit<f32>]| {
        let mut sum = vec![0.0f32; sum_len];
        for (i, r) in zeroed(part).chunks_mut(region).enumerate() {
            step(t * share + i, r, &mut sum);
        }
        sums.lock().expect("no step panicked").push((t, sum));
    };
    // SAFETY: `write` zeroes its part before the steps add into it.
    let out = unsafe { par_written(len, share * region, write) };
    let mut sums = sums.into_inner().expect("no step panicked");
    sums.sort_by_key(|&(t, _)| t);
    (out, added_in_order(sums.into_iter().map(|(_, sum)| sum).collect(), sum_len))
}

/// A row-major `[rows, cols]` matrix as a row-major `[cols, rows]` one, in tiles the threads
/// share (an element at a time, its writes missed the cache: 8 ms for a 512-channel weight).
pub(super) fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 16;
    let mut out = vec![0.0f32; values.len()];
    out.par_chunks_mut(TILE * rows).enumerate().for_each(|(t, band)| {
        let (c0, width) = (t * TILE, band.len() / rows);
        for r in 0..rows {
            for (dc, v) in values[r * cols + c0..][..width].iter().enumerate() {
                band[dc * rows + r] = *v;
            }
        }
    });
    out
}

/// [`Product`] through the `gemm` crate.
#[cfg(feature = "native")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_product(m: usize, n: usize, k: usize, dst: *mut f32, accumulate: bool, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) {
    // Without `read_dst`, gemm only writes `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
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

/// [`Product`] through the `matrixmultiply` crate (ndarray's).
#[cfg(any(test, not(feature = "native")))]
#[allow(clippy::too_many_arguments)]
unsafe fn matrixmultiply_product(m: usize, n: usize, k: usize, dst: *mut f32, accumulate: bool, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)) {
    // With beta zero, matrixmultiply only writes `dst`.
    let beta = if accumulate { 1.0 } else { 0.0 };
    unsafe { matrixmultiply::sgemm(m, k, n, 1.0, lhs.0.as_ptr(), lhs.2, lhs.1, rhs.0.as_ptr(), rhs.2, rhs.1, beta, dst, n as isize, 1) }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};

    fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
        t.to_data().convert::<f32>().try_into_vec::<f32>().expect("f32")
    }

    fn close(ours: Vec<f32>, theirs: Tensor<4>, what: &str) {
        let theirs = values(&theirs);
        assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
        let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "{what}: element {i}: {a} against burn's {b}");
        }
    }

    /// The output and both gradients against burn's own (`conv2d` and its autodiff on flex) for
    /// `x: [batch, c_in, h, w]`, a `c_out x c_in x kh x kw` kernel and `options`, with the columns
    /// cut into chunks of `chunk` samples, through both matrix products.
    fn check(x: [usize; 4], c_out: usize, kernel: [usize; 2], options: ConvOptions<2>, chunk: usize) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(x, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let w = Tensor::<4>::random([c_out, x.dims()[1], kernel[0], kernel[1]], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let y = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
        let g = y.clone().detach().random_like(Distribution::Normal(0.0, 1.0));
        let grads = (y * g.clone()).sum().backward();
        let b = Tensor::<1>::random([c_out], Distribution::Normal(0.0, 1.0), &device);
        let with_bias = burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
        let (xv, wv, gv, bv) = (values(&x), values(&w), values(&g), values(&b));
        // One-sample blocks also cut into pieces of two output rows; rows copied one by one and
        // through the table.
        // 3x3 stride-1 convs both through im2col and as Winograd's, and 1x1 stride-1 convs both
        // through im2col and in place (`pointwise`), whatever their size.
        for special in [false, true] {
        for (name, product) in [("gemm", gemm_product as Product), ("matrixmultiply", matrixmultiply_product as Product)] {
            for (piece_rows, table_below) in [(None, 0), (Some(2), 0), (None, usize::MAX), (Some(2), usize::MAX)] {
                let what = format!("x {:?}, kernel {kernel:?}, {options:?}, chunk {chunk}, rows {piece_rows:?}, table below {table_below}, {name}, winograd or in place {special}", x.dims());
                let set = |plan: &mut Plan| (plan.block_samples, plan.piece_rows, plan.table_below, plan.product, plan.winograd, plan.pointwise_from) = (Some(chunk), piece_rows, table_below, product, Some(special), if special { 0 } else { usize::MAX });
                let mut plan = Plan::new(&x.dims(), &w.dims(), &g.dims(), &options).expect("a conv with one group");
                set(&mut plan);
                let mut forward = Plan::forward(&x.dims(), &w.dims(), &options).expect("a conv with one group");
                set(&mut forward);
                assert_eq!(forward.output_shape(), with_bias.dims(), "{what}");
                close(forward.output(&xv, &wv, Some(&bv)), with_bias.clone(), &format!("output, {what}"));
                close(plan.weight_grad(&xv, &gv), w.grad(&grads).expect("w takes part"), &format!("weight, {what}"));
                close(plan.input_grad(&wv, &gv), x.grad(&grads).expect("x takes part"), &format!("input, {what}"));
                let (dx, dw) = plan.grads(&xv, &wv, &gv);
                close(dx, x.grad(&grads).expect("x takes part"), &format!("input, both at once, {what}"));
                close(dw, w.grad(&grads).expect("w takes part"), &format!("weight, both at once, {what}"));
            }
        }
        }
    }

    #[test]
    fn output_and_gradients_match_burns_for_strides_paddings_dilations_and_blocks() {
        check([3, 4, 9, 7], 5, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 3);
        check([3, 4, 9, 7], 5, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 2);
        check([3, 4, 9, 7], 5, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 1);
        check([5, 3, 11, 10], 6, [3, 2], ConvOptions::new([2, 3], [1, 0], [1, 1], 1), 2);
        check([2, 2, 12, 12], 3, [3, 3], ConvOptions::new([1, 1], [2, 2], [2, 2], 1), 1);
        check([2, 8, 6, 6], 4, [1, 1], ConvOptions::new([1, 1], [0, 0], [1, 1], 1), 2);
        check([3, 5, 4, 7], 6, [1, 1], ConvOptions::new([1, 1], [0, 0], [2, 2], 1), 2);
        check([2, 3, 8, 9], 4, [7, 7], ConvOptions::new([2, 2], [3, 3], [1, 1], 1), 2);
        check([2, 3, 11, 9], 4, [7, 7], ConvOptions::new([2, 2], [3, 3], [1, 1], 1), 1);
        check([2, 3, 8, 8], 4, [3, 3], ConvOptions::new_with_padding([2, 2], [(0, 1), (1, 0)], [1, 1], 1), 1);
        // Kernel columns and rows that read only padding: ResNet50's convs on a 32-pixel image.
        check([2, 3, 1, 2], 4, [3, 3], ConvOptions::new([2, 2], [1, 1], [1, 1], 1), 1);
        check([2, 3, 2, 3], 4, [7, 7], ConvOptions::new([2, 2], [3, 3], [1, 1], 1), 2);
        check([3, 2, 1, 1], 4, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 2);
        // 3x3 stride-1 convs of odd and even sizes, without padding and padded unevenly (tiles
        // that reach past the output, rows that read only padding).
        check([3, 6, 8, 5], 7, [3, 3], ConvOptions::new([1, 1], [0, 0], [1, 1], 1), 2);
        check([2, 5, 7, 6], 3, [3, 3], ConvOptions::new_with_padding([1, 1], [(0, 2), (2, 0)], [1, 1], 1), 1);
        check([2, 4, 4, 4], 6, [3, 3], ConvOptions::new_with_padding([1, 1], [(2, 2), (0, 1)], [1, 1], 1), 2);
        // The page's MNIST CNN: one input channel at 28x28, a batch the blocks do not divide.
        check([7, 1, 28, 28], 8, [3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1), 3);
    }

    #[test]
    fn groups_and_shapes_that_do_not_match_are_left_to_burn() {
        let one = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        assert!(Plan::new(&[1, 4, 5, 5], &[4, 2, 3, 3], &[1, 4, 3, 3], &ConvOptions::new([1, 1], [0, 0], [1, 1], 2)).is_none());
        assert!(Plan::new(&[1, 4, 5, 5], &[4, 3, 3, 3], &[1, 4, 3, 3], &one).is_none(), "weight's c_in differs");
        assert!(Plan::new(&[2, 4, 5, 5], &[4, 4, 3, 3], &[1, 4, 3, 3], &one).is_none(), "gradient's batch differs");
        assert!(Plan::forward(&[1, 4, 2, 2], &[4, 4, 3, 3], &one).is_none(), "kernel larger than the input");
        assert!(Plan::forward(&[4, 5, 5], &[4, 4, 3, 3], &one).is_none(), "not 4D");
    }
}
