//! 3x3 stride-1 convolutions as Winograd's F(2x2, 3x3) (Lavin & Gray, 2015): the output in 2x2
//! tiles, each from a 4x4 input tile, and the sum over input channels as 16 matrix products of
//! `[c_out, c_in] x [c_in, tiles]`, one per element of the transformed tile. That is 16
//! multiply-adds per input channel, output channel and tile where im2col's product does 36: the
//! paper CNN's convolutions (11 of its 12 layers are 3x3, stride 1, 64 to 512 channels) spent
//! most of a CPU training step in those products, a quarter more than PyTorch's (oneDNN's
//! direct convolution) on the same two cores (docs/performance.md).
//!
//! Both gradients are the gradients of that same computation, so they take the same shape:
//! - forward: `V = Bᵀ d B` per input tile, `M_e = U_e V_e` with `U = G g Gᵀ`, `y = Aᵀ M A`;
//! - input: `dM = A dy Aᵀ`, `dV_e = U_eᵀ dM_e`, `dx += B dV Bᵀ` (input tiles overlap);
//! - weight: `dU_e = Σ dM_e V_eᵀ` over the tiles, `dg = Gᵀ dU G`.
//!
//! The work is cut as in [`super::im2col`]: blocks of samples the threads share out, a one-sample
//! block into pieces of a few tile rows whose transformed tiles stay in the core's cache.

use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::{Add, Mul, Neg, Sub};

use super::im2col::{Piece, Plan, WINOGRAD, sum_over_blocks, with_scratch, write_and_sum};
use crate::simd::with_avx2;
use crate::uninit::{par_written, zeroed};

/// Values a piece's transformed input and product (`16 x (c_in + c_out) x tiles`) aim at: 512 KB,
/// a core's own cache here (pieces of 256 KB and 1 MB ran at about the same speed).
const PIECE_VALUES: usize = 1 << 17;

/// Tiles a piece holds at least: the width of its products (the 512-channel layers' pieces
/// would otherwise be a few tiles wide).
const MIN_TILES: usize = 64;

/// Values between the 16 matrices of a transformed piece beyond their own: matrices a multiple
/// of 4 KB apart fall in the same sets of the core's cache, and a transform reads or writes all
/// 16 at once.
const SKEW: usize = 16;

/// Tiles (or kernels) transformed at once, one to a SIMD lane: tile by tile, scalar, the
/// transforms took twice as long as the products they feed.
const LANES: usize = 8;

/// [`LANES`] values, added and scaled lane by lane (LLVM makes each one vector instruction).
#[derive(Clone, Copy)]
struct Lanes([f32; LANES]);

impl Lanes {
    /// `len` values from `at`, zero in the lanes past them.
    #[inline(always)]
    fn load(s: &[f32], at: usize, len: usize) -> Self {
        if len == LANES {
            Lanes(*<&[f32; LANES]>::try_from(&s[at..at + LANES]).expect("LANES values"))
        } else {
            let mut l = [0.0; LANES];
            l[..len].copy_from_slice(&s[at..at + len]);
            Lanes(l)
        }
    }

    /// The first `d.len()` lanes into `d`.
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        if d.len() == LANES {
            d.copy_from_slice(&self.0);
        } else {
            d.copy_from_slice(&self.0[..d.len()]);
        }
    }

    #[inline(always)]
    fn add_into(self, d: &mut [f32], at: usize, len: usize) {
        d[at..at + len].iter_mut().zip(&self.0).for_each(|(d, v)| *d += v);
    }
}

impl Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        let mut r = self.0;
        for i in 0..LANES {
            r[i] += o.0[i];
        }
        Lanes(r)
    }
}

impl Sub for Lanes {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let mut r = self.0;
        for i in 0..LANES {
            r[i] -= o.0[i];
        }
        Lanes(r)
    }
}

impl Neg for Lanes {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        let mut r = self.0;
        for v in &mut r {
            *v = -*v;
        }
        Lanes(r)
    }
}

impl Mul<f32> for Lanes {
    type Output = Self;
    #[inline(always)]
    fn mul(self, k: f32) -> Self {
        let mut r = self.0;
        for v in &mut r {
            *v *= k;
        }
        Lanes(r)
    }
}

/// What the transforms compute with: one value, or [`Lanes`].
trait Value: Copy + Add<Output = Self> + Sub<Output = Self> + Neg<Output = Self> + Mul<f32, Output = Self> {
    const ZERO: Self;
}

impl Value for f32 {
    const ZERO: Self = 0.0;
}

impl Value for Lanes {
    const ZERO: Self = Lanes([0.0; LANES]);
}

/// `G v`: the kernel transform along one axis.
#[inline(always)]
fn g<T: Value>(v: [T; 3]) -> [T; 4] {
    [v[0], (v[0] + v[1] + v[2]) * 0.5, (v[0] - v[1] + v[2]) * 0.5, v[2]]
}

/// `Gᵀ v`, the kernel gradient's transform along one axis.
#[inline(always)]
fn g_t<T: Value>(v: [T; 4]) -> [T; 3] {
    [v[0] + (v[1] + v[2]) * 0.5, (v[1] - v[2]) * 0.5, (v[1] + v[2]) * 0.5 + v[3]]
}

/// `Bᵀ v`, the input transform along one axis.
#[inline(always)]
fn b_t<T: Value>(v: [T; 4]) -> [T; 4] {
    [v[0] - v[2], v[1] + v[2], v[2] - v[1], v[1] - v[3]]
}

/// `B v`, the input gradient's transform along one axis.
#[inline(always)]
fn b<T: Value>(v: [T; 4]) -> [T; 4] {
    [v[0], v[1] - v[2] + v[3], v[1] + v[2] - v[0], -v[3]]
}

/// `Aᵀ v`, the output transform along one axis.
#[inline(always)]
fn a_t<T: Value>(v: [T; 4]) -> [T; 2] {
    [v[0] + v[1] + v[2], v[1] - v[2] - v[3]]
}

/// `A v`, the output gradient's transform along one axis.
#[inline(always)]
fn a<T: Value>(v: [T; 2]) -> [T; 4] {
    [v[0], v[0] + v[1], v[0] - v[1], -v[1]]
}

/// `F t Fᵀ` for a tile `t` (`[row][column]`) and an axis transform `f`: `f` down each column,
/// then along each row. (Plain loops: through `std::array::from_fn` the tiles went through
/// memcpy calls and the stack, the transforms at a fifth of the speed.)
#[inline(always)]
fn both_axes<T: Value, const I: usize, const O: usize>(t: &[[T; I]; I], f: impl Fn([T; I]) -> [T; O]) -> [[T; O]; O] {
    let mut columns = [[T::ZERO; O]; I]; // [column][row]
    for (j, column) in columns.iter_mut().enumerate() {
        let mut c = [T::ZERO; I];
        for i in 0..I {
            c[i] = t[i][j];
        }
        *column = f(c);
    }
    let mut out = [[T::ZERO; O]; O];
    for (o, row) in out.iter_mut().enumerate() {
        let mut r = [T::ZERO; I];
        for j in 0..I {
            r[j] = columns[j][o];
        }
        *row = f(r);
    }
    out
}

/// The 16 matrices' values at `at + e * span` (`e` = 4 * row + column of the tile), `len` lanes.
#[inline(always)]
fn load_tiles(s: &[f32], at: usize, span: usize, len: usize) -> [[Lanes; 4]; 4] {
    let mut t = [[Lanes::ZERO; 4]; 4];
    for (i, row) in t.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = Lanes::load(s, at + (i * 4 + j) * span, len);
        }
    }
    t
}

impl Plan {
    /// Whether this conv runs here rather than through im2col: 3x3, stride 1, no dilation, and
    /// (unless the plan says) large enough for the products to pay for the transforms.
    pub(super) fn winograd(&self) -> bool {
        let applies = self.kernel == [3, 3] && self.stride == [1, 1] && self.dilation == [1, 1];
        WINOGRAD && applies && self.winograd.unwrap_or_else(|| self.winograd_pays())
    }

    /// Measured per layer (`trainer bench --profile`, 2026-12-05, 2-core AMD EPYC): a third to
    /// half faster from 16 channels at 16x16 and more (e.g. the paper CNN's 64 at 32x32, 43.0
    /// against 60.0 ms for its three products), and on the paper's 256 and 512 channels at 8x8
    /// and 4x4; slower on the fast CNN's 32-128 channels at 8x8 and 4x4 (128 at 4x4: 12.9
    /// against 8.1 ms), where the products are too narrow for the matrix product to run at speed.
    fn winograd_pays(&self) -> bool {
        let channels = self.c_in.min(self.c_out);
        channels >= 16 && (self.out[0] * self.out[1] >= 256 || channels >= 256)
    }

    /// Tile rows and columns: the output's, halved, rounded up.
    fn tiles(&self) -> [usize; 2] {
        [self.out[0].div_ceil(2), self.out[1].div_ceil(2)]
    }

    fn tile_target(&self) -> usize {
        (PIECE_VALUES / (16 * (self.c_in + self.c_out))).max(MIN_TILES)
    }

    fn tile_block(&self) -> usize {
        let [th, tw] = self.tiles();
        self.samples_per_block(self.tile_target(), th * tw)
    }

    /// The pieces of samples `start..start + n`: the whole block, or a one-sample block's tile
    /// rows a few at a time.
    fn tile_pieces(&self, start: usize, n: usize) -> impl Iterator<Item = Piece> {
        self.cut(start, n, self.tiles(), self.tile_target())
    }

    /// Where each of the 16 `[rows, cols]` matrices of a transformed piece starts: `e * span`.
    fn span(&self, rows: usize, cols: usize) -> usize {
        rows * cols + SKEW
    }

    fn tile_count(&self, piece: &Piece) -> usize {
        piece.n * piece.rows.len() * self.tiles()[1]
    }

    /// Each half of a parity-split padded row: room for a tile row's `tw + 1` values, and for
    /// whole [`LANES`] read from `tw - 1`.
    fn half_width(&self) -> usize {
        self.tiles()[1] + LANES + 1
    }

    /// `U = G g Gᵀ` of every kernel, laid out `[outer][16][inner]`: `[c_out][16][c_in]`, or
    /// with `transpose` `[c_in][16][c_out]`. Element `e`'s matrix is then the slice from
    /// `e * inner` with rows `16 * inner` apart.
    fn transformed_weight(&self, w: &[f32], transpose: bool) -> Vec<f32> {
        let inner = if transpose { self.c_out } else { self.c_in };
        let mut u = vec![0.0f32; 16 * self.c_in * self.c_out];
        u.par_chunks_mut(16 * inner).enumerate().for_each(|(o, rows)| self.weight_rows(w, transpose, o, rows));
        u
    }

    /// Row `o` of [`Self::transformed_weight`]'s layout.
    #[inline(always)]
    fn weight_rows_on(&self, w: &[f32], transpose: bool, o: usize, rows: &mut [f32]) {
        let inner = if transpose { self.c_out } else { self.c_in };
        for i0 in (0..inner).step_by(LANES) {
            let len = LANES.min(inner - i0);
            // The lanes' kernels side by side, [lane][tap].
            let mut taps = [[0.0f32; 9]; LANES];
            for (l, t) in taps.iter_mut().enumerate().take(len) {
                let (co, ci) = if transpose { (i0 + l, o) } else { (o, i0 + l) };
                t.copy_from_slice(&w[(co * self.c_in + ci) * 9..][..9]);
            }
            let mut k = [[Lanes::ZERO; 3]; 3];
            for (tap, v) in k.iter_mut().flatten().enumerate() {
                for (l, t) in taps.iter().enumerate() {
                    v.0[l] = t[tap];
                }
            }
            for (e, v) in both_axes(&k, g).iter().flatten().enumerate() {
                v.store(&mut rows[e * inner + i0..][..len]);
            }
        }
    }

    /// `V = Bᵀ d B` of every input tile of a piece, `[16][c_in][tiles]`.
    #[inline(always)]
    fn transform_input_on(&self, x: &[f32], piece: &Piece, v: &mut [f32], padded: &mut Vec<f32>) {
        let ([h, w], [pt, pl], [_, tw]) = (self.size, self.pad, self.tiles());
        let (count, half, width) = (self.tile_count(piece), self.half_width(), 2 * tw + 2);
        // The input rows the piece's tiles read, padded (column c is input column c - pl, row
        // r input row 2 * first tile row + r - pt) and split by parity: [row][even, odd][half].
        let height = 2 * piece.rows.len() + 2;
        // Zeroed once: the padding (the margins, the rows outside the input) lies in the same
        // places for every plane, and only the input's own values are written below. Zeroed
        // row by row, plane by plane, it was a fifth of this transform (perf, 2026-12-05).
        padded.clear();
        padded.resize(height * 2 * half, 0.0);
        let (lo, hi) = (pl.min(width), (pl + w).min(width));
        for s in 0..piece.n {
            for ci in 0..self.c_in {
                let plane = &x[((piece.start + s) * self.c_in + ci) * h * w..][..h * w];
                for (r, row) in padded.chunks_mut(2 * half).enumerate() {
                    let Some(ih) = (2 * piece.rows.start + r).checked_sub(pt).filter(|&i| i < h) else { continue };
                    let (even, odd) = row.split_at_mut(half);
                    // Input column j lands in padded column pl + j.
                    let src = &plane[ih * w..][..hi - lo];
                    let (first, second) = if pl % 2 == 0 { (&mut even[pl / 2..], &mut odd[pl / 2..]) } else { (&mut odd[pl / 2..], &mut even[pl / 2 + 1..]) };
                    let mut pairs = src.chunks_exact(2);
                    for ((a, b), pair) in first.iter_mut().zip(second.iter_mut()).zip(&mut pairs) {
                        (*a, *b) = (pair[0], pair[1]);
                    }
                    if let [v] = pairs.remainder() {
                        first[src.len() / 2] = *v;
                    }
                }
                for ty in 0..piece.rows.len() {
                    let base = (s * piece.rows.len() + ty) * tw;
                    for tx in (0..tw).step_by(LANES) {
                        let len = LANES.min(tw - tx);
                        let mut d = [[Lanes::ZERO; 4]; 4];
                        for (i, row) in d.iter_mut().enumerate() {
                            let (even, odd) = padded[(2 * ty + i) * 2 * half..][..2 * half].split_at(half);
                            *row = [Lanes::load(even, tx, LANES), Lanes::load(odd, tx, LANES), Lanes::load(even, tx + 1, LANES), Lanes::load(odd, tx + 1, LANES)];
                        }
                        for (e, value) in both_axes(&d, b_t).iter().flatten().enumerate() {
                            value.store(&mut v[e * self.span(self.c_in, count) + ci * count + base + tx..][..len]);
                        }
                    }
                }
            }
        }
    }

    /// `dM = A dy Aᵀ` of every output tile of a piece, `[16][c_out][tiles]` (zero outside the
    /// output where its size is odd).
    #[inline(always)]
    fn transform_output_grad_on(&self, g: &[f32], piece: &Piece, dm: &mut [f32]) {
        let ([oh, ow], [_, tw]) = (self.out, self.tiles());
        let count = self.tile_count(piece);
        for s in 0..piece.n {
            for co in 0..self.c_out {
                let plane = &g[((piece.start + s) * self.c_out + co) * oh * ow..][..oh * ow];
                for ty in piece.rows.clone() {
                    let base = (s * piece.rows.len() + ty - piece.rows.start) * tw;
                    for tx in (0..tw).step_by(LANES) {
                        let len = LANES.min(tw - tx);
                        // Output rows 2ty and 2ty + 1, columns 2tx.., split by parity.
                        let mut rows = [[Lanes::ZERO; 2]; 2];
                        for (i, [even, odd]) in rows.iter_mut().enumerate() {
                            let r = 2 * ty + i;
                            if r >= oh {
                                continue;
                            }
                            let mut pair = [0.0f32; 2 * LANES];
                            let n = (2 * LANES).min(ow - 2 * tx);
                            pair[..n].copy_from_slice(&plane[r * ow + 2 * tx..][..n]);
                            for l in 0..LANES {
                                even.0[l] = pair[2 * l];
                                odd.0[l] = pair[2 * l + 1];
                            }
                        }
                        for (e, value) in both_axes(&rows, a).iter().flatten().enumerate() {
                            value.store(&mut dm[e * self.span(self.c_out, count) + co * count + base + tx..][..len]);
                        }
                    }
                }
            }
        }
    }

    /// `y = Aᵀ M A` of a piece's tiles (`m`, `[16][c_out][tiles]`) plus the bias, into
    /// `region`, whose sample `first` is the piece's first.
    #[inline(always)]
    fn output_tiles_on(&self, m: &[f32], piece: &Piece, first: usize, bias: Option<&[f32]>, region: &mut [MaybeUninit<f32>]) {
        let ([oh, ow], [_, tw], count) = (self.out, self.tiles(), self.tile_count(piece));
        for s in 0..piece.n {
            for co in 0..self.c_out {
                let plane = &mut region[((first + s) * self.c_out + co) * oh * ow..][..oh * ow];
                let add = bias.map_or(0.0, |b| b[co]);
                for ty in piece.rows.clone() {
                    let base = (s * piece.rows.len() + ty - piece.rows.start) * tw;
                    for tx in (0..tw).step_by(LANES) {
                        let len = LANES.min(tw - tx);
                        let t = load_tiles(m, co * count + base + tx, self.span(self.c_out, count), len);
                        for (i, [even, odd]) in both_axes(&t, a_t).into_iter().enumerate() {
                            let r = 2 * ty + i;
                            if r >= oh {
                                continue;
                            }
                            let mut pair = [0.0f32; 2 * LANES];
                            for l in 0..LANES {
                                pair[2 * l] = even.0[l] + add;
                                pair[2 * l + 1] = odd.0[l] + add;
                            }
                            let n = (2 * len).min(ow - 2 * tx);
                            plane[r * ow + 2 * tx..][..n].write_copy_of_slice(&pair[..n]);
                        }
                    }
                }
            }
        }
    }

    /// The conv, `[batch, c_out, oh, ow]`.
    pub(super) fn winograd_output(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let ([oh, ow], block) = (self.out, self.tile_block());
        let u = self.transformed_weight(w, false);
        let sample = self.c_out * oh * ow;
        let write = |k: usize, region: &mut [MaybeUninit<f32>]| {
            with_scratch(|v, m, rows| {
                for piece in self.tile_pieces(k * block, region.len() / sample) {
                    let count = self.tile_count(&piece);
                    v.resize(16 * self.span(self.c_in, count), 0.0);
                    m.resize(16 * self.span(self.c_out, count), 0.0);
                    self.transform_input(x, &piece, v, rows);
                    for e in 0..16 {
                        // M_e [c_out, tiles] = U_e [c_out, c_in] * V_e [c_in, tiles]
                        let (m_e, v_e, u_e) = (&mut m[e * self.span(self.c_out, count)..], &v[e * self.span(self.c_in, count)..], &u[e * self.c_in..]);
                        unsafe { (self.product)(self.c_out, count, self.c_in, m_e.as_mut_ptr(), false, (u_e, 1, 16 * self.c_in as isize), (v_e, 1, count as isize)) };
                    }
                    self.output_tiles(m, &piece, piece.start - k * block, bias, region);
                }
            })
        };
        // SAFETY: a block's pieces cover its samples' tile rows, and the tiles of a row every
        // output row and column they reach (`output_tiles`).
        unsafe { par_written(self.batch * sample, block * sample, write) }
    }

    /// `dx += B dV Bᵀ` of a piece's tiles (`dv`, `[16][c_in][tiles]`) into `region`, whose
    /// sample `first` is the piece's first. Input tiles overlap: each input plane's share is
    /// summed in `plane`, padded (column c is input column c - pl, row r input row 2 * first
    /// tile row + r - pt) and split by parity (`[row][even, odd][half]`), then added.
    #[inline(always)]
    fn input_tiles_on(&self, dv: &[f32], piece: &Piece, first: usize, plane: &mut Vec<f32>, region: &mut [f32]) {
        let ([h, wd], [pt, pl], [_, tw]) = (self.size, self.pad, self.tiles());
        let (count, half) = (self.tile_count(piece), self.half_width());
        let height = 2 * piece.rows.len() + 2;
        plane.resize(height * 2 * half, 0.0);
        let (lo, hi) = (pl.min(2 * tw + 2), (pl + wd).min(2 * tw + 2));
        for s in 0..piece.n {
            for ci in 0..self.c_in {
                plane.fill(0.0);
                for ty in 0..piece.rows.len() {
                    let base = (s * piece.rows.len() + ty) * tw;
                    for tx in (0..tw).step_by(LANES) {
                        let len = LANES.min(tw - tx);
                        let t = load_tiles(dv, ci * count + base + tx, self.span(self.c_in, count), len);
                        for (i, [c0, c1, c2, c3]) in both_axes(&t, b).into_iter().enumerate() {
                            let row = &mut plane[(2 * ty + i) * 2 * half..][..2 * half];
                            let (even, odd) = row.split_at_mut(half);
                            c0.add_into(even, tx, LANES);
                            c1.add_into(odd, tx, LANES);
                            c2.add_into(even, tx + 1, LANES);
                            c3.add_into(odd, tx + 1, LANES);
                        }
                    }
                }
                let into = &mut region[((first + s) * self.c_in + ci) * h * wd..][..h * wd];
                for (r, row) in plane.chunks(2 * half).enumerate() {
                    let Some(ih) = (2 * piece.rows.start + r).checked_sub(pt).filter(|&i| i < h) else { continue };
                    let (even, odd) = row.split_at(half);
                    for (c, d) in (lo..hi).zip(&mut into[ih * wd..][..hi - lo]) {
                        *d += if c % 2 == 0 { even[c / 2] } else { odd[c / 2] };
                    }
                }
            }
        }
    }

    /// dLoss/dx, `[batch, c_in, h, w]`.
    pub(super) fn winograd_input_grad(&self, w: &[f32], g: &[f32]) -> Vec<f32> {
        let (block, sample) = (self.tile_block(), self.input_sample());
        let ut = self.transformed_weight(w, true);
        let write = |k: usize, region: &mut [MaybeUninit<f32>]| {
            let region = zeroed(region);
            with_scratch(|dv, dm, plane| {
                for piece in self.tile_pieces(k * block, region.len() / sample) {
                    self.transformed_output_grad(g, &piece, dm);
                    self.add_input_grad_tiles(&ut, dm, &piece, piece.start - k * block, dv, plane, region);
                }
            })
        };
        // SAFETY: `write` zeroes its region before adding into it.
        unsafe { par_written(self.batch * sample, block * sample, write) }
    }

    /// dLoss/dWeight, `[c_out, c_in, 3, 3]`.
    pub(super) fn winograd_weight_grad(&self, x: &[f32], g: &[f32]) -> Vec<f32> {
        let block = self.tile_block();
        let total = sum_over_blocks(self.batch.div_ceil(block), 16 * self.span(self.c_in, self.c_out), |b, sum| {
            with_scratch(|v, dm, rows| {
                for piece in self.tile_pieces(b * block, block.min(self.batch - b * block)) {
                    self.transformed_output_grad(g, &piece, dm);
                    self.add_weight_grad_tiles(x, dm, &piece, v, rows, sum);
                }
            })
        });
        self.kernels_of(&total)
    }

    /// Both gradients, `(dx, dw)`, in one pass: each piece's `dM` serves both.
    pub(super) fn winograd_grads(&self, x: &[f32], w: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (block, sample) = (self.tile_block(), self.input_sample());
        let ut = self.transformed_weight(w, true);
        let (dx, total) = write_and_sum(self.batch * sample, block * sample, 16 * self.span(self.c_in, self.c_out), |k, region, sum| {
            // `dv` and `v`, `plane` and the padded rows are the same sizes and never needed at once.
            with_scratch(|tiles, dm, rows| {
                for piece in self.tile_pieces(k * block, region.len() / sample) {
                    self.transformed_output_grad(g, &piece, dm);
                    self.add_input_grad_tiles(&ut, dm, &piece, piece.start - k * block, tiles, rows, region);
                    self.add_weight_grad_tiles(x, dm, &piece, tiles, rows, sum);
                }
            })
        });
        (dx, self.kernels_of(&total))
    }

    /// `dM` of a piece's tiles into `dm` (`[16][c_out][tiles]`).
    fn transformed_output_grad(&self, g: &[f32], piece: &Piece, dm: &mut Vec<f32>) {
        dm.resize(16 * self.span(self.c_out, self.tile_count(piece)), 0.0);
        self.transform_output_grad(g, piece, dm);
    }

    /// Adds a piece's share of dx into `region` (whose sample `first` is the piece's first):
    /// `dV_e = U_eᵀ dM_e` from `ut` ([`Self::transformed_weight`], transposed) and `dm`, then
    /// `B dV Bᵀ` (`input_tiles`).
    #[allow(clippy::too_many_arguments)]
    fn add_input_grad_tiles(&self, ut: &[f32], dm: &[f32], piece: &Piece, first: usize, dv: &mut Vec<f32>, plane: &mut Vec<f32>, region: &mut [f32]) {
        let count = self.tile_count(piece);
        dv.resize(16 * self.span(self.c_in, count), 0.0);
        for e in 0..16 {
            // dV_e [c_in, tiles] = U_eᵀ [c_in, c_out] * dM_e [c_out, tiles]
            let (dv_e, dm_e, ut_e) = (&mut dv[e * self.span(self.c_in, count)..], &dm[e * self.span(self.c_out, count)..], &ut[e * self.c_out..]);
            unsafe { (self.product)(self.c_in, count, self.c_out, dv_e.as_mut_ptr(), false, (ut_e, 1, 16 * self.c_out as isize), (dm_e, 1, count as isize)) };
        }
        self.input_tiles(dv, piece, first, plane, region);
    }

    /// Adds a piece's share of dUᵀ (`[16][c_in][c_out]`) into `sum`: `V_e dM_eᵀ`, `V` of the
    /// piece's input tiles (`transform_input`) and `dm`.
    fn add_weight_grad_tiles(&self, x: &[f32], dm: &[f32], piece: &Piece, v: &mut Vec<f32>, rows: &mut Vec<f32>, sum: &mut [f32]) {
        let (ci_n, co_n, count) = (self.c_in, self.c_out, self.tile_count(piece));
        v.resize(16 * self.span(ci_n, count), 0.0);
        self.transform_input(x, piece, v, rows);
        for e in 0..16 {
            // dU_eᵀ [c_in, c_out] += V_e [c_in, tiles] * dM_eᵀ [tiles, c_out]
            let (sum_e, v_e, dm_e) = (&mut sum[e * self.span(ci_n, co_n)..], &v[e * self.span(ci_n, count)..], &dm[e * self.span(co_n, count)..]);
            unsafe { (self.product)(ci_n, co_n, count, sum_e.as_mut_ptr(), true, (v_e, 1, count as isize), (dm_e, count as isize, 1)) };
        }
    }

    /// The kernels' gradient `[c_out, c_in, 3, 3]` from dUᵀ summed over all tiles
    /// (`[16][c_in][c_out]`): `dg = Gᵀ dU G`, [`LANES`] output channels at a time.
    fn kernels_of(&self, total: &[f32]) -> Vec<f32> {
        let mut dw = vec![0.0f32; self.c_out * self.c_in * 9];
        dw.par_chunks_mut(LANES * self.c_in * 9).enumerate().for_each(|(group, kernels)| self.kernel_grads(total, group * LANES, kernels));
        dw
    }

    /// `dg = Gᵀ dU G` of output channels `co..` (as many as `kernels` holds, at most
    /// [`LANES`]) from `total`, dUᵀ laid out `[16][c_in][c_out]`.
    #[inline(always)]
    fn kernel_grads_on(&self, total: &[f32], co: usize, kernels: &mut [f32]) {
        let (ci_n, co_n) = (self.c_in, self.c_out);
        let len = kernels.len() / (ci_n * 9);
        for ci in 0..ci_n {
            let t = load_tiles(total, ci * co_n + co, self.span(ci_n, co_n), len);
            for (r, row) in both_axes(&t, g_t).iter().enumerate() {
                for (c, value) in row.iter().enumerate() {
                    for (l, v) in value.0[..len].iter().enumerate() {
                        kernels[(l * ci_n + ci) * 9 + r * 3 + c] = *v;
                    }
                }
            }
        }
    }
}

// The transforms' 16 tiles of [`LANES`] values fill twice the SSE2 registers there are and spill
// to the stack: built for the baseline, the transforms took longer than the products they feed.
impl Plan {
    with_avx2! {
        fn weight_rows / weight_rows_on(self: &Plan, w: &[f32], transpose: bool, o: usize, rows: &mut [f32]);
        fn transform_input / transform_input_on(self: &Plan, x: &[f32], piece: &Piece, v: &mut [f32], padded: &mut Vec<f32>);
        fn transform_output_grad / transform_output_grad_on(self: &Plan, g: &[f32], piece: &Piece, dm: &mut [f32]);
        fn output_tiles / output_tiles_on(self: &Plan, m: &[f32], piece: &Piece, first: usize, bias: Option<&[f32]>, region: &mut [MaybeUninit<f32>]);
        fn input_tiles / input_tiles_on(self: &Plan, dv: &[f32], piece: &Piece, first: usize, plane: &mut Vec<f32>, region: &mut [f32]);
        fn kernel_grads / kernel_grads_on(self: &Plan, total: &[f32], co: usize, kernels: &mut [f32]);
    }
}
