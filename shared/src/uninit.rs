//! New CPU tensors written in parallel without zeroing them first. Zeroing is a pass of its own
//! over the whole output, and where it ran before the parallel loop (`vec![0.0; len]`) one core
//! zeroed while the other waited: 2% of a fast-CNN training step on the calling thread (perf,
//! 2026-12-05).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A `len`-value vector whose chunks of `chunk` values (the last may be shorter) `write(index,
/// chunk)` fills, the threads sharing the chunks out.
///
/// # Safety
/// `write` must write every value of the chunk it is given.
pub(crate) unsafe fn par_written(len: usize, chunk: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| write(i, c));
    // SAFETY: the caller's `write` wrote every value of every chunk, and the chunks cover `len`.
    unsafe { out.set_len(len) };
    out
}

/// `values` zeroed, as f32s: for outputs that are summed into, zeroed by the thread that sums.
pub(crate) fn zeroed(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    values.fill(MaybeUninit::new(0.0));
    // SAFETY: every value was just written, and MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}
