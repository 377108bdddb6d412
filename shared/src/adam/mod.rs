//! Adam as burn's `Adam` computes it, in one pass per parameter on burn's flex CPU backend.
//!
//! burn's Adam is a chain of tensor operations: the two moments, their bias corrections, the
//! square root, the division and the update each pass over every parameter, about a dozen passes
//! where the arithmetic needs one. On the paper CNN it took 45 ms of a 527 ms training step
//! where PyTorch's takes 27 (docs/performance.md). [`FusedAdam`] is burn's Adam (no weight
//! decay, no AMSGrad) with burn's state record, so checkpoints are the same either way; on flex
//! (f32) one loop reads the parameter, its gradient and both moments once and updates them in
//! place, through burn's backend-extension API. On other devices it is burn's own Adam.

#[cfg(feature = "native")]
pub mod flex;

use burn::optim::ModuleOptimizer;

/// burn's Adam with `beta_1`, `beta_2` and `epsilon`; fused on flex in native builds.
pub fn adam(beta_1: f32, beta_2: f32, epsilon: f32) -> ModuleOptimizer {
    #[cfg(feature = "native")]
    return ModuleOptimizer::from(FusedAdam::new(beta_1, beta_2, epsilon));
    #[cfg(not(feature = "native"))]
    burn::optim::AdamConfig::new().with_beta_1(beta_1).with_beta_2(beta_2).with_epsilon(epsilon).init()
}

#[cfg(feature = "native")]
pub use fused::FusedAdam;

#[cfg(feature = "native")]
mod fused {
    use burn::backend::DispatchDevice;
    use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
    use burn::tensor::{DType, Device, Tensor};

    use super::extension::FastAdam;

    /// burn's `Adam` (no weight decay, no AMSGrad) with its state record; one pass per
    /// parameter on flex.
    #[derive(Clone)]
    pub struct FusedAdam {
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        /// burn's own, for parameters not on flex in f32.
        burns: burn::optim::Adam,
    }

    impl FusedAdam {
        pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
            let burns = AdamConfig::new().with_beta_1(beta_1).with_beta_2(beta_2).with_epsilon(epsilon).build();
            Self { beta_1, beta_2, epsilon, burns }
        }

        /// The step's scalars for moment estimates `time` steps old, computed in f32 as burn's
        /// Adam computes them (so the update is the same to the bit).
        fn coefficients(&self, time: usize, lr: LearningRate) -> super::Coefficients {
            let time = time as i32;
            let bias_correction2_sqrt = (1.0 - self.beta_2.powi(time)).sqrt();
            super::Coefficients {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                step: bias_correction2_sqrt / (1.0 - self.beta_1.powi(time)),
                epsilon: self.epsilon * bias_correction2_sqrt,
                lr: lr as f32,
            }
        }
    }

    impl Optimizer for FusedAdam {
        type State<const D: usize> = AdamState<D>;

        fn step<const D: usize>(&self, lr: LearningRate, tensor: Tensor<D>, grad: Tensor<D>, state: Option<Self::State<D>>) -> (Tensor<D>, Option<Self::State<D>>) {
            let flex = matches!(tensor.device().inner().as_dispatch(), DispatchDevice::Flex(_));
            if !flex || tensor.dtype() != DType::F32 || grad.dtype() != DType::F32 {
                return self.burns.step(lr, tensor, grad, state);
            }
            let (time, moment_1, moment_2) = match state {
                Some(s) if s.momentum.max_moment_2.is_none() && s.momentum.moment_1.dtype() == DType::F32 && s.momentum.moment_2.dtype() == DType::F32 => {
                    (s.momentum.time + 1, s.momentum.moment_1, s.momentum.moment_2)
                }
                // An AMSGrad state, or moments in another dtype, are burn's to continue.
                Some(s) => return self.burns.step(lr, tensor, grad, Some(s)),
                None => (1, grad.zeros_like(), grad.zeros_like()),
            };
            use burn::backend::Dispatch;
            let c = self.coefficients(time, lr).as_array();
            let (tensor, moment_1, moment_2) = <Dispatch as FastAdam>::adam_step(tensor.into_dispatch(), grad.into_dispatch(), moment_1.into_dispatch(), moment_2.into_dispatch(), c);
            let momentum = AdaptiveMomentumState::new(time, Tensor::from_dispatch(moment_1), Tensor::from_dispatch(moment_2));
            (Tensor::from_dispatch(tensor), Some(AdamState::new(momentum)))
        }

        fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
            state.momentum = state.momentum.to_device(device);
            state
        }
    }
}

/// One Adam step's scalars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    pub beta_1: f32,
    pub beta_2: f32,
    /// The first moment's factor: `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    pub step: f32,
    /// Added to the second moment's square root: `epsilon * sqrt(1 - beta_2^t)`.
    pub epsilon: f32,
    pub lr: f32,
}

impl Coefficients {
    /// As the extension's argument (it takes arrays, not structs).
    pub fn as_array(self) -> [f32; 5] {
        [self.beta_1, self.beta_2, self.step, self.epsilon, self.lr]
    }

    pub fn from_array([beta_1, beta_2, step, epsilon, lr]: [f32; 5]) -> Self {
        Self { beta_1, beta_2, step, epsilon, lr }
    }

    /// One element's step: the new (parameter, first moment, second moment), in burn's order of
    /// operations.
    #[inline(always)]
    pub fn update(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let m = m * self.beta_1 + g * (1.0 - self.beta_1);
        let v = v * self.beta_2 + (g * g) * (1.0 - self.beta_2);
        let u = (m * self.step) / (v.sqrt() + self.epsilon);
        (p - u * self.lr, m, v)
    }
}

#[cfg(feature = "native")]
mod extension {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Flex, backend_extension};

    /// One Adam step of a parameter (f32 on flex): its new value and moments, from its value,
    /// gradient and moments and the step's [`super::Coefficients`] as an array. Only flex has it:
    /// [`super::FusedAdam`] calls burn's own Adam elsewhere.
    #[backend_extension(Flex)]
    pub trait FastAdam: Backend {
        fn adam_step(
            param: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            moment_1: FloatTensor<Self>,
            moment_2: FloatTensor<Self>,
            coefficients: [f32; 5],
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    }

    impl FastAdam for Flex {
        fn adam_step(
            param: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            moment_1: FloatTensor<Self>,
            moment_2: FloatTensor<Self>,
            coefficients: [f32; 5],
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            super::flex::step(param, grad, moment_1, moment_2, super::Coefficients::from_array(coefficients))
        }
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    use burn::tensor::{Device, Distribution, Tensor};

    /// Steps `linear` with `optim` on a fixed batch `steps` times.
    fn train(mut linear: Linear, optim: &mut ModuleOptimizer, steps: usize) -> Linear {
        let device = Device::flex().autodiff();
        for step in 0..steps {
            device.seed(step as u64);
            let x = Tensor::<2>::random([5, 7], Distribution::Normal(0.0, 1.0), &device);
            let loss = linear.forward(x).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &linear);
            linear = optim.step(1e-2, linear, grads);
        }
        linear
    }

    fn values(linear: &Linear) -> Vec<f32> {
        let mut v = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
        v.extend(linear.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap());
        v
    }

    /// The fused steps give burn's Adam's weights to the bit, and each one's saved state carries
    /// on in the other: checkpoints do not depend on which one wrote them.
    #[test]
    fn steps_and_state_are_burns_adams() {
        let device = Device::flex().autodiff();
        let start = LinearConfig::new(7, 3).init(&device);
        let (b1, b2, eps) = (0.8, 0.99, 1e-6);
        let burns = || AdamConfig::new().with_beta_1(b1).with_beta_2(b2).with_epsilon(eps).init();
        let (mut ours, mut theirs) = (super::adam(b1, b2, eps), burns());
        let a = train(start.clone(), &mut ours, 4);
        let b = train(start.clone(), &mut theirs, 4);
        assert_ne!(values(&a), values(&start), "the steps moved nothing");
        assert_eq!(values(&a), values(&b), "fused Adam against burn's after 4 steps");

        let mut ours_resumed = super::adam(b1, b2, eps).load_record(theirs.to_record());
        let mut theirs_resumed = burns().load_record(ours.to_record());
        let (c, d) = (train(b.clone(), &mut ours_resumed, 3), train(a.clone(), &mut theirs_resumed, 3));
        let e = train(a, &mut ours, 3);
        assert_eq!(values(&c), values(&e), "fused Adam resumed from burn's state");
        assert_eq!(values(&d), values(&e), "burn's Adam resumed from the fused one's state");
    }
}
