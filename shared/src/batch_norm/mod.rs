//! The models' batch-norm in training, as one pass for the statistics and one for the output on
//! the CPU backends (flex natively, ndarray in the page's worker).
//!
//! burn's `BatchNorm` differentiates training batch-norm as one operation, but on flex both that
//! operation and its backward are built from tensor operations: swapped axes, reductions and
//! broadcasts, each a pass over the activation. They took 117-137 ms of a paper-CNN step where
//! PyTorch's fused kernels take 23 ms (docs/performance.md). [`FastNorm`] is the same operation
//! through burn's backend-extension API; on flex and ndarray (f32) it runs [`cpu`]'s fused loops, elsewhere
//! burn's own. It can apply a ReLU to its output in the same pass ([`forward_relu`]): a separate
//! ReLU took another pass each way, 20-25 ms of a paper-CNN step.

#[cfg(any(feature = "native", feature = "web"))]
mod autodiff;
#[cfg(any(feature = "native", feature = "web"))]
pub mod cpu;

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

#[cfg(any(feature = "native", feature = "web"))]
pub use extension::FastNorm;

// burn marks ndarray deprecated in favour of flex, yet in wasm it trains the page's networks
// faster (docs/building.md).
#[cfg(any(feature = "native", feature = "web"))]
#[allow(deprecated)]
mod extension {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, backend_extension};

    use super::cpu::Plan;

    /// Training batch-norm: the output (with a ReLU applied where `relu`), the batch mean and
    /// the biased batch variance (burn's `batch_norm_train`), differentiated through
    /// [`FastNorm::batch_norm_grads`].
    #[backend_extension(
        Flex: cfg(feature = "native"),
        NdArray: cfg(feature = "web"),
        Cube: cfg(any(feature = "native", feature = "webgpu")),
        Autodiff
    )]
    pub trait FastNorm: Backend {
        fn fast_batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            burns_train::<Self>(x, gamma, beta, epsilon, relu)
        }
        /// The gradients of x, gamma and beta.
        fn batch_norm_grads(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            mean: FloatTensor<Self>,
            variance: FloatTensor<Self>,
            epsilon: f64,
            output_grad: FloatTensor<Self>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            burns_grads::<Self>(x, gamma, mean, variance, epsilon, None, output_grad)
        }
        /// The same through the ReLU the forward applied; `output` is its output (the gradient
        /// is zero where that is not above zero).
        #[allow(clippy::too_many_arguments)]
        fn batch_norm_relu_grads(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            mean: FloatTensor<Self>,
            variance: FloatTensor<Self>,
            epsilon: f64,
            output: FloatTensor<Self>,
            output_grad: FloatTensor<Self>,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            burns_grads::<Self>(x, gamma, mean, variance, epsilon, Some(output), output_grad)
        }
    }

    /// burn's own training batch-norm (and ReLU), as the tuple [`FastNorm`] returns.
    fn burns_train<B: Backend>(x: FloatTensor<B>, gamma: FloatTensor<B>, beta: FloatTensor<B>, epsilon: f64, relu: bool) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let r = B::batch_norm_train(x, gamma, beta, epsilon);
        (if relu { B::relu(r.output) } else { r.output }, r.mean, r.variance)
    }

    /// burn's own batch-norm (and ReLU) backward, as the tuple [`FastNorm`] returns.
    fn burns_grads<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        mean: FloatTensor<B>,
        variance: FloatTensor<B>,
        epsilon: f64,
        relu_output: Option<FloatTensor<B>>,
        output_grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let output_grad = match relu_output {
            Some(output) => B::relu_backward(output, output_grad),
            None => output_grad,
        };
        let r = B::batch_norm_train_backward(x, gamma, mean, variance, epsilon, output_grad);
        (r.x_grad, r.gamma_grad, r.beta_grad)
    }

    #[cfg(any(feature = "native", feature = "webgpu"))]
    impl FastNorm for burn::backend::Cube {}

    /// The CPU backends: [`super::cpu`]'s loops where they apply, burn's own elsewhere.
    macro_rules! on_the_cpu {
        ($backend:ty) => {
            impl FastNorm for $backend {
                fn fast_batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                    use crate::cpu_tensor::F32Tensor;
                    // Plan::new read gamma as f32s: beta is too when it has gamma's shape.
                    match Plan::new(&x, &gamma).filter(|_| beta.f32_shape() == gamma.f32_shape()) {
                        Some(plan) => plan.train(&x, &gamma, &beta, epsilon, relu),
                        None => burns_train::<Self>(x, gamma, beta, epsilon, relu),
                    }
                }
                fn batch_norm_grads(
                    x: FloatTensor<Self>,
                    gamma: FloatTensor<Self>,
                    mean: FloatTensor<Self>,
                    variance: FloatTensor<Self>,
                    epsilon: f64,
                    output_grad: FloatTensor<Self>,
                ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                    cpu_grads::<Self>(x, gamma, mean, variance, epsilon, None, output_grad)
                }
                fn batch_norm_relu_grads(
                    x: FloatTensor<Self>,
                    gamma: FloatTensor<Self>,
                    mean: FloatTensor<Self>,
                    variance: FloatTensor<Self>,
                    epsilon: f64,
                    output: FloatTensor<Self>,
                    output_grad: FloatTensor<Self>,
                ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                    cpu_grads::<Self>(x, gamma, mean, variance, epsilon, Some(output), output_grad)
                }
            }
        };
    }

    #[cfg(feature = "native")]
    on_the_cpu!(burn::backend::Flex);
    #[cfg(feature = "web")]
    on_the_cpu!(burn::backend::NdArray);

    /// [`FastNorm::batch_norm_grads`] on a CPU backend: [`super::cpu`]'s where its loops apply.
    fn cpu_grads<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        mean: FloatTensor<B>,
        variance: FloatTensor<B>,
        epsilon: f64,
        relu_output: Option<FloatTensor<B>>,
        output_grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>)
    where
        FloatTensor<B>: crate::cpu_tensor::F32Tensor,
    {
        use crate::cpu_tensor::F32Tensor;
        let statistics = |t: &FloatTensor<B>| t.f32_shape() == gamma.f32_shape();
        match Plan::new(&x, &gamma).filter(|plan| plan.fits(&output_grad) && relu_output.as_ref().is_none_or(|y| plan.fits(y)) && statistics(&mean) && statistics(&variance)) {
            Some(plan) => plan.grads(&x, &gamma, &mean, &variance, epsilon, relu_output.as_ref(), &output_grad),
            None => burns_grads::<B>(x, gamma, mean, variance, epsilon, relu_output, output_grad),
        }
    }
}

/// `norm.forward(x)`: in training (an autodiff device and the layer's training flag on) through
/// [`FastNorm`], with burn's own update of the running statistics; otherwise burn's.
pub fn forward(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    forward_then(norm, x, false)
}

/// `relu(norm.forward(x))`, in training as one operation ([`FastNorm`] with its ReLU).
pub fn forward_relu(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    forward_then(norm, x, true)
}

fn forward_then(norm: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    #[cfg(any(feature = "native", feature = "web"))]
    if x.device().is_autodiff() && norm.training.is_enabled() {
        let device = x.device();
        let (output, mean, variance) = train(x, norm.gamma.val(), norm.beta.val(), norm.epsilon, relu);
        let m = norm.momentum;
        let running_mean = norm.running_mean.value_sync().to_device(&device).mul_scalar(1.0 - m).add(mean.detach().mul_scalar(m));
        let running_var = norm.running_var.value_sync().to_device(&device).mul_scalar(1.0 - m).add(variance.detach().mul_scalar(m));
        norm.running_mean.update(running_mean.detach());
        norm.running_var.update(running_var.detach());
        return output;
    }
    if !norm.training.is_enabled() || !x.device().is_autodiff() {
        let stats = [norm.gamma.val(), norm.beta.val(), norm.running_mean.value(), norm.running_var.value()];
        if let Some(out) = crate::eval_ops::batch_norm(&x, stats, norm.epsilon, relu) {
            return out;
        }
    }
    let output = norm.forward(x);
    if relu { burn::tensor::activation::relu(output) } else { output }
}

/// [`FastNorm::fast_batch_norm_train`] on tensors of any device: output (after a ReLU where
/// `relu`), mean, biased variance.
#[cfg(any(feature = "native", feature = "web"))]
pub fn train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64, relu: bool) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    use burn::backend::Dispatch;
    let (output, mean, variance) = <Dispatch as FastNorm>::fast_batch_norm_train(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), epsilon, relu);
    (Tensor::from_dispatch(output), Tensor::from_dispatch(mean), Tensor::from_dispatch(variance))
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    fn close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>, what: &str) {
        let scale = theirs.clone().abs().max().into_scalar::<f32>().max(1.0);
        let worst = (ours - theirs).abs().max().into_scalar::<f32>();
        assert!(worst <= 1e-4 * scale, "{what}: differs from burn's by {worst} (largest value {scale})");
    }

    /// Through autodiff on flex, two steps: the output, the gradients of x, gamma and beta, and
    /// the running statistics equal burn's own `BatchNorm`'s.
    #[test]
    fn training_batch_norm_equals_burns_through_autodiff() {
        check(false);
    }

    /// With its ReLU: the output and gradients of `relu(BatchNorm)`.
    #[test]
    fn training_batch_norm_with_relu_equals_burns_through_autodiff() {
        check(true);
    }

    /// Values far from zero with a small spread (one pass of sums must not cancel the
    /// variance away): mean and variance as a two-pass sum in f64 gives them.
    #[test]
    fn statistics_of_values_far_from_zero() {
        let device = Device::flex();
        let x = Tensor::<4>::random([4, 2, 5, 5], Distribution::Normal(0.0, 0.01), &device).add_scalar(3000.0);
        let values = x.clone().into_data().try_to_vec::<f32>().unwrap();
        let ones = Tensor::<1>::ones([2], &device);
        let (_, mean, variance) = train(x, ones.clone(), ones.zeros_like(), 1e-5, false);
        let (mean, variance) = (mean.into_data().try_to_vec::<f32>().unwrap(), variance.into_data().try_to_vec::<f32>().unwrap());
        for c in 0..2 {
            let channel: Vec<f64> = values.chunks(25).skip(c).step_by(2).flatten().map(|&v| v as f64).collect();
            let m = channel.iter().sum::<f64>() / channel.len() as f64;
            let v = channel.iter().map(|x| (x - m).powi(2)).sum::<f64>() / channel.len() as f64;
            assert!((mean[c] as f64 - m).abs() <= 1e-6 * m, "channel {c}: mean {} against {m}", mean[c]);
            assert!((variance[c] as f64 - v).abs() <= 1e-3 * v, "channel {c}: variance {} against {v}", variance[c]);
        }
    }

    /// Planes of 24 values (three lanes of 8), 35 (a remainder of 3) and 323 (more than one block
    /// of sums, and a remainder).
    fn check(relu: bool) {
        for side in [[4, 6], [7, 5], [17, 19]] {
            check_shape(relu, side);
        }
    }

    fn check_shape(relu: bool, [h, w]: [usize; 2]) {
        let device = Device::flex().autodiff();
        let channels = 5;
        let gamma = Tensor::<1>::random([channels], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.5), &device);
        let layer = || {
            let mut norm = BatchNormConfig::new(channels).with_momentum(0.3).init(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            norm.beta = Param::from_tensor(beta.clone());
            norm
        };
        let (ours_norm, burns_norm) = (layer(), layer());
        for step in 0..2 {
            let x = Tensor::<4>::random([3, channels, h, w], Distribution::Normal(2.0, 3.0), &device).require_grad();
            let (ours, theirs) = match relu {
                true => (forward_relu(&ours_norm, x.clone()), burn::tensor::activation::relu(burns_norm.forward(x.clone()))),
                false => (forward(&ours_norm, x.clone()), burns_norm.forward(x.clone())),
            };
            close(ours.clone(), theirs.clone(), &format!("output, step {step}, {h}x{w}"));
            let g = theirs.clone().detach().random_like(Distribution::Normal(0.0, 1.0));
            let (grads_ours, grads_theirs) = ((ours * g.clone()).sum().backward(), (theirs * g).sum().backward());
            close(x.grad(&grads_ours).unwrap(), x.grad(&grads_theirs).unwrap(), "x");
            for (name, ours_p, theirs_p) in [("gamma", &ours_norm.gamma, &burns_norm.gamma), ("beta", &ours_norm.beta, &burns_norm.beta)] {
                close(ours_p.val().grad(&grads_ours).unwrap(), theirs_p.val().grad(&grads_theirs).unwrap(), name);
            }
            close(ours_norm.running_mean.value(), burns_norm.running_mean.value(), "running mean");
            close(ours_norm.running_var.value(), burns_norm.running_var.value(), "running variance");
        }
    }
}
