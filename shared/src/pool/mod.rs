//! The CNN's max-pooling between stages: on the CPU backends (flex natively, ndarray in the
//! page's worker) its output and its gradient are one pass each.
//!
//! burn's max-pool on flex keeps an i64 index per output for the backward and scatters through
//! it; with its backward it took 22-25 ms of a paper-CNN training step, as long as all twelve
//! layers' activations. [`FastPool`] is the same operation through burn's backend-extension API
//! for windows that tile the input (stride = kernel, no padding, no dilation, floor mode: the
//! models' 2x2 pooling). Its backward finds each window's maximum again in the input instead of
//! keeping indices. Elsewhere, and on other backends, it is burn's own.

#[cfg(any(feature = "native", feature = "web"))]
mod autodiff;
#[cfg(any(feature = "native", feature = "web"))]
pub mod cpu;

#[cfg(any(feature = "native", feature = "web"))]
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

#[cfg(any(feature = "native", feature = "web"))]
pub use extension::FastPool;

// burn marks ndarray deprecated in favour of flex, yet in wasm it trains the page's networks
// faster (docs/building.md).
#[cfg(any(feature = "native", feature = "web"))]
#[allow(deprecated)]
mod extension {
    use burn::backend::ops::ModuleOps;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata, backend_extension, get_or_init_device_settings};

    use super::cpu::Plan;

    /// Max-pooling over windows of `kernel` that tile the input, differentiated through
    /// [`FastPool::max_pool2d_grad`].
    #[backend_extension(
        Flex: cfg(feature = "native"),
        NdArray: cfg(feature = "web"),
        Cube: cfg(any(feature = "native", feature = "webgpu")),
        Autodiff
    )]
    pub trait FastPool: Backend {
        fn fast_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
            Self::max_pool2d(x, kernel, kernel, [0, 0], [1, 1], false)
        }
        /// The gradient of x, given the gradient of the pooled output.
        fn max_pool2d_grad(x: FloatTensor<Self>, kernel: [usize; 2], output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
            burns_grad::<Self>(x, kernel, output_grad)
        }
    }

    /// burn's own backward: the indices of the maxima (in the device's int type, as burn's
    /// autodiff asks for them: wgpu has no i64), then its scatter.
    fn burns_grad<B: Backend>(x: FloatTensor<B>, kernel: [usize; 2], output_grad: FloatTensor<B>) -> FloatTensor<B> {
        let int_dtype = get_or_init_device_settings::<B>(&x.device()).int_dtype;
        let indices = B::max_pool2d_with_indices(x.clone(), kernel, kernel, [0, 0], [1, 1], false, int_dtype).indices;
        B::max_pool2d_with_indices_backward(x, kernel, kernel, [0, 0], [1, 1], false, output_grad, indices).x_grad
    }

    #[cfg(any(feature = "native", feature = "webgpu"))]
    impl FastPool for burn::backend::Cube {}

    /// The CPU backends: [`super::cpu`]'s loops where they apply, burn's own elsewhere.
    macro_rules! on_the_cpu {
        ($backend:ty) => {
            impl FastPool for $backend {
                fn fast_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
                    match Plan::new(&x, kernel) {
                        Some(plan) => plan.output(&x),
                        None => Self::max_pool2d(x, kernel, kernel, [0, 0], [1, 1], false),
                    }
                }
                fn max_pool2d_grad(x: FloatTensor<Self>, kernel: [usize; 2], output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
                    match Plan::new(&x, kernel).filter(|plan| plan.takes_grad(&output_grad)) {
                        Some(plan) => plan.input_grad(&x, &output_grad),
                        None => burns_grad::<Self>(x, kernel, output_grad),
                    }
                }
            }
        };
    }

    #[cfg(feature = "native")]
    on_the_cpu!(burn::backend::Flex);
    #[cfg(feature = "web")]
    on_the_cpu!(burn::backend::NdArray);
}

/// `pool.forward(x)`, through [`FastPool`] where its windows tile the input (native and browser
/// builds).
pub fn forward(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(any(feature = "native", feature = "web"))]
    if pool.stride == pool.kernel_size && pool.dilation == [1, 1] && !pool.ceil_mode && matches!(pool.padding, PaddingConfig2d::Valid) {
        use burn::backend::Dispatch;
        return Tensor::from_dispatch(<Dispatch as FastPool>::fast_max_pool2d(x.into_dispatch(), pool.kernel_size));
    }
    pool.forward(x)
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, Distribution, TensorData};

    fn same(ours: Tensor<4>, theirs: Tensor<4>, what: &str) {
        let (ours, theirs) = (ours.into_data().try_to_vec::<f32>().unwrap(), theirs.into_data().try_to_vec::<f32>().unwrap());
        assert_eq!(ours.len(), theirs.len(), "{what}: sizes");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{what}: element {i}: {a} against burn's {b}");
        }
    }

    /// Output and input gradient, through autodiff on flex, equal burn's own `MaxPool2d`'s: the
    /// same values exactly (a max-pool only moves them), ties to the first maximum of a window.
    fn check(x: Tensor<4>, kernel: [usize; 2]) {
        let pool = MaxPool2dConfig::new(kernel).init();
        let what = format!("x {:?}, kernel {kernel:?}", x.dims());
        let (xa, xb) = (x.clone().require_grad(), x.require_grad());
        let (ours, theirs) = (forward(&pool, xa.clone()), pool.forward(xb.clone()));
        same(ours.clone(), theirs.clone(), &format!("output, {what}"));
        let g = theirs.clone().detach().random_like(Distribution::Normal(0.0, 1.0));
        let (grads_ours, grads_theirs) = ((ours * g.clone()).sum().backward(), (theirs * g).sum().backward());
        same(xa.grad(&grads_ours).unwrap(), xb.grad(&grads_theirs).unwrap(), &format!("gradient, {what}"));
    }

    #[test]
    fn output_and_gradient_equal_burns_max_pool() {
        let device = Device::flex().autodiff();
        let random = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        check(random([3, 4, 8, 8]), [2, 2]);
        // Sizes the windows do not divide: the last row and columns are left out (floor mode).
        check(random([2, 3, 9, 7]), [2, 2]);
        // More planes than a task's (16), the last task shorter.
        check(random([3, 7, 9, 7]), [2, 2]);
        check(random([5, 7, 6, 5]), [3, 2]);
        check(random([2, 2, 7, 9]), [3, 2]);
        // Ties (as after a ReLU): the first maximum of each window takes the gradient.
        let ties = Tensor::<4>::from_data(TensorData::new((0..64).map(|i| (i % 3 == 0) as u8 as f32).collect::<Vec<_>>(), [1, 1, 8, 8]), &device);
        check(ties, [2, 2]);
        check(Tensor::<4>::zeros([1, 2, 4, 4], &device), [2, 2]);
        // NaN: the last NaN of a window is its maximum, before and after a larger value.
        let values = [f32::NAN, 1.0, 2.0, f32::NAN, 3.0, f32::NAN, 0.5, -1.0, -2.0, 7.0, f32::NAN, f32::NAN, 4.0, 5.0, f32::NAN, 6.0];
        let nans = Tensor::<4>::from_data(TensorData::new(values.repeat(4).to_vec(), [1, 1, 8, 8]), &device);
        check(nans.clone(), [2, 2]);
        check(nans, [2, 4]);
    }

    #[test]
    fn windows_that_do_not_tile_the_input_are_burns() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([1, 1]).init();
        same(forward(&pool, x.clone()), pool.forward(x), "stride 1");
    }
}
