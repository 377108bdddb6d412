//! [`FastNorm`] under burn's autodiff: burn-autodiff's own `batch_norm_train`, with the inner
//! backend's [`FastNorm`] operations in place of burn's.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend};

use super::FastNorm;

#[derive(Debug)]
struct NormBackward;

impl<B: Backend + FastNorm> Backward<B, 3> for NormBackward {
    /// x and gamma are checkpointed; the batch statistics come along as the forward computed
    /// them, and so does the output where the forward applied a ReLU.
    type State = (NodeId, NodeId, FloatTensor<B>, FloatTensor<B>, f64, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, mean, variance, epsilon, relu_output) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let (x_grad, gamma_grad, beta_grad) = match relu_output {
            Some(output) => B::batch_norm_relu_grads(x, gamma, mean, variance, epsilon, output, grad),
            None => B::batch_norm_grads(x, gamma, mean, variance, epsilon, grad),
        };
        for (node, grad) in [(node_x, x_grad), (node_gamma, gamma_grad), (node_beta, beta_grad)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FastNorm, C: CheckpointStrategy> FastNorm for Autodiff<B, C> {
    fn fast_batch_norm_train(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu: bool) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let lift = <Self as AutodiffBackend>::from_inner;
        match NormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (output, mean, variance) = B::fast_batch_norm_train(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon, relu);
                let relu_output = relu.then(|| output.clone());
                let output = prep.finish((x_state, gamma_state, mean.clone(), variance.clone(), epsilon, relu_output), output);
                (output, lift(mean), lift(variance))
            }
            OpsKind::UnTracked(prep) => {
                let (output, mean, variance) = B::fast_batch_norm_train(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon, relu);
                (prep.finish(output), lift(mean), lift(variance))
            }
        }
    }
}
