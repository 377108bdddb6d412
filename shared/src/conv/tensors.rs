//! The CPU backends' f32 tensors into and out of the slices of [`super::im2col`]:
//! [`FastConv`](super::FastConv) on flex or ndarray is these functions, which answer `None`
//! where the kernels do not apply (another dtype, groups).

use burn::tensor::ops::ConvOptions;

use super::im2col::Plan;
use crate::cpu_tensor::F32Tensor;

/// The conv's output, `[batch, c_out, oh, ow]`.
pub fn output<T: F32Tensor>(x: &T, weight: &T, bias: Option<&T>, options: &ConvOptions<2>) -> Option<T> {
    let plan = Plan::forward(&x.f32_shape()?, &weight.f32_shape()?, options)?;
    if let Some(b) = bias {
        b.f32_shape().filter(|s| *s == [plan.output_shape()[1]])?;
    }
    let (x, weight, bias) = (x.row_major(), weight.row_major(), bias.map(T::row_major));
    let y = plan.output(x.values(), weight.values(), bias.as_ref().map(T::values));
    Some(T::from_values(y, &plan.output_shape()))
}

/// dLoss/dWeight, `[c_out, c_in, kh, kw]`.
pub fn weight_grad<T: F32Tensor>(x: &T, weight: &T, output_grad: &T, options: &ConvOptions<2>) -> Option<T> {
    let plan = Plan::new(&x.f32_shape()?, &weight.f32_shape()?, &output_grad.f32_shape()?, options)?;
    let (x, g) = (x.row_major(), output_grad.row_major());
    Some(T::from_values(plan.weight_grad(x.values(), g.values()), &plan.weight_shape()))
}

/// dLoss/dx, `[batch, c_in, h, w]`.
pub fn input_grad<T: F32Tensor>(x: &T, weight: &T, output_grad: &T, options: &ConvOptions<2>) -> Option<T> {
    let plan = Plan::new(&x.f32_shape()?, &weight.f32_shape()?, &output_grad.f32_shape()?, options)?;
    let (w, g) = (weight.row_major(), output_grad.row_major());
    Some(T::from_values(plan.input_grad(w.values(), g.values()), &plan.input_shape()))
}

/// `(dLoss/dx, dLoss/dWeight)` at once (see [`Plan::grads`]).
pub fn grads<T: F32Tensor>(x: &T, weight: &T, output_grad: &T, options: &ConvOptions<2>) -> Option<(T, T)> {
    let plan = Plan::new(&x.f32_shape()?, &weight.f32_shape()?, &output_grad.f32_shape()?, options)?;
    let (x, w, g) = (x.row_major(), weight.row_major(), output_grad.row_major());
    let (dx, dw) = plan.grads(x.values(), w.values(), g.values());
    Some((T::from_values(dx, &plan.input_shape()), T::from_values(dw, &plan.weight_shape())))
}
