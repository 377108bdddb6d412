//! The CPU backends' f32 tensors (flex natively, ndarray in the browser's worker) as slices: the
//! project's CPU kernels ([`crate::conv`], [`crate::batch_norm`], [`crate::pool`]) are written
//! once over `&[f32]` and reach either backend through [`F32Tensor`].

/// A backend's float tensor as f32 values in row-major order.
pub trait F32Tensor: Sized {
    /// The shape, or `None` unless the tensor holds f32s.
    fn f32_shape(&self) -> Option<Vec<usize>>;
    /// The same values in row-major order: the tensor itself (shared, not copied) where they
    /// already are.
    fn row_major(&self) -> Self;
    /// The values of an f32 tensor from [`F32Tensor::row_major`] or [`F32Tensor::from_values`].
    fn values(&self) -> &[f32];
    fn from_values(values: Vec<f32>, shape: &[usize]) -> Self;
}

#[cfg(feature = "native")]
impl F32Tensor for burn::backend::flex::FlexTensor {
    fn f32_shape(&self) -> Option<Vec<usize>> {
        (self.dtype() == burn::backend::DType::F32).then(|| self.layout().shape().to_vec())
    }

    fn row_major(&self) -> Self {
        self.to_contiguous()
    }

    fn values(&self) -> &[f32] {
        crate::flex_slices::slice(self)
    }

    fn from_values(values: Vec<f32>, shape: &[usize]) -> Self {
        crate::flex_slices::tensor(values, shape)
    }
}

// burn marks ndarray deprecated in favour of flex, yet in wasm it trains the page's networks
// faster (docs/building.md).
#[cfg(feature = "web")]
#[allow(deprecated)]
impl F32Tensor for burn::backend::ndarray::NdArrayTensor {
    fn f32_shape(&self) -> Option<Vec<usize>> {
        use burn::backend::TensorMetadata;
        matches!(self, Self::F32(_)).then(|| self.shape().to_vec())
    }

    fn row_major(&self) -> Self {
        let Self::F32(storage) = self else { return self.clone() };
        let view = storage.view();
        if view.is_standard_layout() {
            return self.clone();
        }
        let gathered = view.as_slice_memory_order().and_then(|memory| gather(memory, view.shape(), view.strides()));
        Self::from_values(gathered.unwrap_or_else(|| view.iter().copied().collect()), view.shape())
    }

    fn values(&self) -> &[f32] {
        match self {
            Self::F32(storage) => storage.view().to_slice().expect("a row-major tensor (from row_major)"),
            _ => panic!("values of a tensor that holds no f32s (f32_shape says which do)"),
        }
    }

    fn from_values(values: Vec<f32>, shape: &[usize]) -> Self {
        Self::from_data(burn::tensor::TensorData::new(values, shape.to_vec()))
    }
}

/// The values of a view onto `memory` (all of its elements, in memory order; non-negative
/// `strides` in elements) in row-major order: the last axis' runs copied or gathered in a plain
/// loop. ndarray's own iterator over a dynamic-rank view (a permuted tensor's) takes about
/// 30 ns a value. `None` for a negative stride.
#[cfg(any(feature = "web", test))]
fn gather(memory: &[f32], shape: &[usize], strides: &[isize]) -> Option<Vec<f32>> {
    if strides.iter().any(|&s| s < 0) || strides.len() != shape.len() {
        return None;
    }
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let Some((&inner, outer)) = shape.split_last() else {
        out.extend(memory.first());
        return Some(out);
    };
    if total == 0 {
        return Some(out);
    }
    let step = strides[outer.len()] as usize;
    let mut index = vec![0usize; outer.len()];
    let mut base = 0usize;
    loop {
        match step {
            1 => out.extend_from_slice(&memory[base..base + inner]),
            _ => out.extend((0..inner).map(|i| memory[base + i * step])),
        }
        // The next outer index, the last axis fastest.
        let mut axis = outer.len();
        loop {
            if axis == 0 {
                return Some(out);
            }
            axis -= 1;
            index[axis] += 1;
            base += strides[axis] as usize;
            if index[axis] < outer[axis] {
                break;
            }
            base -= outer[axis] * strides[axis] as usize;
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    /// A permuted 4-d layout read back in row-major order, against the index arithmetic done by
    /// hand; a strided view (every other row) and a 0-d one.
    #[test]
    fn gather_reads_permuted_and_strided_views_in_row_major_order() {
        let (b, h, w, c) = (2, 3, 4, 5);
        let memory: Vec<f32> = (0..b * h * w * c).map(|i| i as f32).collect(); // [b, h, w, c]
        // The view [b, c, h, w] of that memory.
        let got = super::gather(&memory, &[b, c, h, w], &[(h * w * c) as isize, 1, (w * c) as isize, c as isize]).unwrap();
        let mut want = Vec::new();
        for bi in 0..b {
            for ci in 0..c {
                for hi in 0..h {
                    for wi in 0..w {
                        want.push(memory[((bi * h + hi) * w + wi) * c + ci]);
                    }
                }
            }
        }
        assert_eq!(got, want);
        let rows = super::gather(&memory[..3 * 8], &[2, 8], &[16, 1]).unwrap();
        assert_eq!(rows, (0..8).chain(16..24).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(super::gather(&memory, &[], &[]).unwrap(), vec![0.0]);
        assert_eq!(super::gather(&memory, &[2, 0, 3], &[1, 1, 1]).unwrap(), Vec::<f32>::new());
        assert!(super::gather(&memory, &[2], &[-1]).is_none());
    }
}
