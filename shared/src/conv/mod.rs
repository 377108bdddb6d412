//! The models' 2D convolution: on the CPU backends (flex natively, ndarray in the browser) its
//! output and both gradients are one matrix product each per block of samples.
//!
//! burn's autodiff derives a conv's weight gradient as another convolution (batch and channel
//! axes swapped) and its input gradient as a transposed convolution. On flex both ran at a
//! quarter to a half of its matrix-product speed, and they were 60% of a CIFAR CNN's training
//! step (docs/performance.md); ndarray's direct convolution trained the page's small CNN at
//! 70-160 samples/s where its MLP, of about as many operations, trained at 2000-3800. burn's
//! backend-extension API lets a crate add an operation with its own backward to the run-time
//! dispatched `Device`: [`FastConv`] is that operation. On flex and ndarray (f32, one group) its
//! output, weight gradient and input gradient are im2col, one product and (for the input)
//! col2im ([`im2col`]), or for 3x3 stride-1 layers natively, Winograd's F(2x2, 3x3) (`winograd`:
//! 16 products of 2.25x fewer multiply-adds in all), or for 1x1 stride-1 layers one product on
//! the tensors in place (`pointwise`); on the GPU they are burn's own.

#[cfg(any(feature = "native", feature = "web"))]
mod autodiff;
#[cfg(any(feature = "native", feature = "web"))]
pub mod im2col;
#[cfg(any(feature = "native", feature = "web"))]
mod pointwise;
#[cfg(any(feature = "native", feature = "web"))]
mod tensors;
#[cfg(any(feature = "native", feature = "web"))]
mod winograd;

#[cfg(any(feature = "native", feature = "web"))]
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
#[cfg(any(feature = "native", feature = "web"))]
use burn::tensor::ops::ConvOptions;

#[cfg(any(feature = "native", feature = "web"))]
pub use extension::FastConv;

// burn marks ndarray deprecated in favour of flex, yet in wasm it trains the page's networks
// faster (docs/building.md).
#[cfg(any(feature = "native", feature = "web"))]
#[allow(deprecated)]
mod extension {
    use burn::backend::ops::ModuleOps;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, backend_extension};
    use burn::tensor::ops::ConvOptions;

    use super::tensors;

    /// A conv2d whose backward calls [`FastConv::conv2d_grads`] (or, where only one gradient is
    /// wanted, [`FastConv::conv2d_weight_grad`] or [`FastConv::conv2d_input_grad`]); by default
    /// those are the backend's own.
    #[backend_extension(
        Flex: cfg(feature = "native"),
        NdArray: cfg(feature = "web"),
        Cube: cfg(any(feature = "native", feature = "webgpu")),
        Autodiff
    )]
    pub trait FastConv: Backend {
        fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
            Self::conv2d(x, weight, None, options)
        }
        /// With a bias (the extension macro takes no optional tensors).
        fn fast_conv2d_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
            Self::conv2d(x, weight, Some(bias), options)
        }
        fn conv2d_weight_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
            Self::conv2d_weight_backward(x, weight, output_grad, options)
        }
        fn conv2d_input_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
            Self::conv2d_x_backward(x, weight, output_grad, options)
        }
        /// `(input gradient, weight gradient)`, where both are wanted: on the CPU the two share
        /// one pass over the output gradient.
        fn conv2d_grads(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> (FloatTensor<Self>, FloatTensor<Self>) {
            let dx = Self::conv2d_input_grad(x.clone(), weight.clone(), output_grad.clone(), options.clone());
            (dx, Self::conv2d_weight_grad(x, weight, output_grad, options))
        }
    }

    #[cfg(any(feature = "native", feature = "webgpu"))]
    impl FastConv for burn::backend::Cube {}

    /// The CPU backends: the kernels of [`super::im2col`] where they apply, burn's own elsewhere.
    macro_rules! on_the_cpu {
        ($backend:ty) => {
            impl FastConv for $backend {
                fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
                    tensors::output(&x, &weight, None, &options).unwrap_or_else(|| Self::conv2d(x, weight, None, options))
                }
                fn fast_conv2d_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
                    tensors::output(&x, &weight, Some(&bias), &options).unwrap_or_else(|| Self::conv2d(x, weight, Some(bias), options))
                }
                fn conv2d_weight_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
                    tensors::weight_grad(&x, &weight, &output_grad, &options).unwrap_or_else(|| Self::conv2d_weight_backward(x, weight, output_grad, options))
                }
                fn conv2d_input_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
                    tensors::input_grad(&x, &weight, &output_grad, &options).unwrap_or_else(|| Self::conv2d_x_backward(x, weight, output_grad, options))
                }
                fn conv2d_grads(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> (FloatTensor<Self>, FloatTensor<Self>) {
                    tensors::grads(&x, &weight, &output_grad, &options).unwrap_or_else(|| {
                        let dx = Self::conv2d_x_backward(x.clone(), weight.clone(), output_grad.clone(), options.clone());
                        (dx, Self::conv2d_weight_backward(x, weight, output_grad, options))
                    })
                }
            }
        };
    }

    #[cfg(feature = "native")]
    on_the_cpu!(burn::backend::Flex);
    #[cfg(feature = "web")]
    on_the_cpu!(burn::backend::NdArray);
}

/// `conv.forward(x)`, through [`FastConv`] where it exists (native and browser builds).
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(any(feature = "native", feature = "web"))]
    if let Some(padding) = explicit_padding(&conv.padding) {
        let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
        return apply(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options);
    }
    conv.forward(x)
}

/// [`FastConv::fast_conv2d`] on tensors of any device.
#[cfg(any(feature = "native", feature = "web"))]
pub fn apply(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    use burn::backend::Dispatch;
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => <Dispatch as FastConv>::fast_conv2d_bias(x, weight, bias.into_dispatch(), options),
        None => <Dispatch as FastConv>::fast_conv2d(x, weight, options),
    })
}

/// `(begin, end)` padding of each spatial axis; `None` for `Same`, which depends on the input.
#[cfg(any(feature = "native", feature = "web"))]
fn explicit_padding(padding: &PaddingConfig2d) -> Option<[(usize, usize); 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Same => None,
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    fn close(ours: Tensor<4>, theirs: Tensor<4>, what: &str) {
        let scale = theirs.clone().abs().max().into_scalar::<f32>().max(1.0);
        let worst = (ours - theirs).abs().max().into_scalar::<f32>();
        assert!(worst <= 1e-4 * scale, "{what}: differs from burn's by {worst} (largest value {scale})");
    }

    /// Through autodiff on flex: the output and the gradients of x, the weight and the bias
    /// equal burn's own `Conv2d`'s, with and without bias, for a strided, padded conv.
    #[test]
    fn forward_and_gradients_equal_burns_conv2d_through_autodiff() {
        let device = Device::flex().autodiff();
        for bias in [true, false] {
            let conv = Conv2dConfig::new([3, 5], [3, 3]).with_stride([2, 1]).with_padding(PaddingConfig2d::Explicit(1, 2, 1, 0)).with_bias(bias).init(&device);
            let x = Tensor::<4>::random([4, 3, 9, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let ours = forward(&conv, x.clone());
            let theirs = conv.forward(x.clone());
            close(ours.clone(), theirs.clone(), &format!("output, bias {bias}"));
            let g = theirs.clone().detach().random_like(Distribution::Normal(0.0, 1.0));
            let grads_ours = (ours * g.clone()).sum().backward();
            let grads_theirs = (theirs * g.clone()).sum().backward();
            close(x.grad(&grads_ours).unwrap(), x.grad(&grads_theirs).unwrap(), "x");
            let w = conv.weight.val();
            close(w.grad(&grads_ours).unwrap(), w.grad(&grads_theirs).unwrap(), "weight");
            // Only the weight's gradient (a first layer, its input data).
            let data = x.clone().detach();
            let alone_ours = (forward(&conv, data.clone()) * g.clone()).sum().backward();
            let alone_theirs = (conv.forward(data) * g.clone()).sum().backward();
            close(w.grad(&alone_ours).unwrap(), w.grad(&alone_theirs).unwrap(), "weight alone");
            if let Some(b) = &conv.bias {
                let (ours, theirs) = (b.val().grad(&grads_ours).unwrap(), b.val().grad(&grads_theirs).unwrap());
                close(ours.unsqueeze::<4>(), theirs.unsqueeze::<4>(), "bias");
            }
        }
    }
}
