//! [`FastPool`] under burn's autodiff: the forward is the inner backend's; the backward calls the
//! inner backend's [`FastPool::max_pool2d_grad`] on the checkpointed input.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

use super::FastPool;

#[derive(Debug)]
struct PoolBackward;

impl<B: Backend + FastPool> Backward<B, 1> for PoolBackward {
    type State = (NodeId, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, kernel) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::max_pool2d_grad(x, kernel, grad));
        }
    }
}

impl<B: Backend + FastPool, C: CheckpointStrategy> FastPool for Autodiff<B, C> {
    fn fast_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
        match PoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), kernel);
                prep.finish(state, B::fast_max_pool2d(x.into_primitive(), kernel))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool2d(x.into_primitive(), kernel)),
        }
    }
}
