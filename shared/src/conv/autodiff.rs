//! [`FastConv`] under burn's autodiff: the forward is the inner backend's, the backward calls the
//! inner backend's [`FastConv::conv2d_grads`] (or [`FastConv::conv2d_input_grad`] or
//! [`FastConv::conv2d_weight_grad`] where only one is wanted). The
//! graph bookkeeping is burn-autodiff's own conv2d's.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};
use burn::tensor::Shape;
use burn::tensor::ops::ConvOptions;

use super::FastConv;

/// The backward steps of a conv without and with bias.
#[derive(Debug)]
struct ConvBackward;
#[derive(Debug)]
struct ConvBiasBackward;

/// Registers the gradients of x and the weight, each where its node wants one (both at once
/// where both do).
fn register<B: Backend + FastConv>(ids: [Option<NodeId>; 2], x: FloatTensor<B>, weight: FloatTensor<B>, grad: FloatTensor<B>, options: ConvOptions<2>, grads: &mut Gradients) {
    match ids {
        [Some(x_id), Some(weight_id)] => {
            let (dx, dw) = B::conv2d_grads(x, weight, grad, options);
            grads.register::<B>(x_id, dx);
            grads.register::<B>(weight_id, dw);
        }
        [Some(id), None] => grads.register::<B>(id, B::conv2d_input_grad(x, weight, grad, options)),
        [None, Some(id)] => grads.register::<B>(id, B::conv2d_weight_grad(x, weight, grad, options)),
        [None, None] => {}
    }
}

/// The bias gradient, `[c]`, of an output gradient `[n, c, h, w]`: each sample's positions are
/// summed where they lie, then the samples. burn's `conv2d_bias_backward` swaps batch and channels
/// first, which copies the whole gradient (6% of a CIFAR training step on flex).
fn bias_grad<B: Backend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    let [n, c, h, w] = grad.shape().dims();
    let per_sample = B::float_sum_dim(B::float_reshape(grad, Shape::new([n, c, h * w])), 2); // [n, c, 1]
    let sums = B::float_sum_dim(B::float_reshape(per_sample, Shape::new([n, c])), 0); // [1, c]
    B::float_reshape(sums, Shape::new([c]))
}

impl<B: Backend + FastConv> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        register::<B>(ops.parents.map(|node| node.map(|n| n.id)), x, weight, grad, options, grads);
    }
}

impl<B: Backend + FastConv> Backward<B, 3> for ConvBiasBackward {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, B::float_reshape(bias_grad::<B>(grad.clone()), bias.shape()));
        }
        register::<B>([x_node.map(|n| n.id), weight_node.map(|n| n.id)], x, weight, grad, options, grads);
    }
}

impl<B: Backend + FastConv, C: CheckpointStrategy> FastConv for Autodiff<B, C> {
    fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                prep.finish(state, B::fast_conv2d(x.into_primitive(), weight.into_primitive(), options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(x.into_primitive(), weight.into_primitive(), options)),
        }
    }

    fn fast_conv2d_bias(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match ConvBiasBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), prep.checkpoint(&bias), options.clone());
                prep.finish(state, B::fast_conv2d_bias(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d_bias(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), options)),
        }
    }
}
