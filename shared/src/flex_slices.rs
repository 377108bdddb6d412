//! Reading and making f32 tensors of burn's flex backend: flex's side of
//! [`crate::cpu_tensor::F32Tensor`], and [`crate::adam`]'s fused step (flex only).

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// The elements of a contiguous f32 tensor (from `to_contiguous`).
pub(crate) fn slice(t: &FlexTensor) -> &[f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("a contiguous tensor");
    &t.storage::<f32>()[start..end]
}

pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Vec<usize>>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}
