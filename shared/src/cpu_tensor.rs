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
        match view.is_standard_layout() {
            true => self.clone(),
            false => Self::from_values(view.iter().copied().collect(), view.shape()),
        }
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
