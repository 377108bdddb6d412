//! `trainer bench --profile`: where a CNN training step spends its time, op by op.
//!
//! Each conv layer's three products (forward, gradient of the input, gradient of the weights) are
//! timed alone, first with the backend calls burn's own autodiff makes, then with ours
//! ([`hidden_neurons::conv::FastConv`], what the models train with), beside one matrix product of
//! the same size: the speed the conv would have if it ran at the backend's matmul speed.

use std::time::Instant;

use burn::tensor::module::{conv_transpose2d, conv2d, conv2d_weight_backward};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};
use burn::backend::{Dispatch, DispatchTensor};
use hidden_neurons::batch_norm;
use hidden_neurons::conv::{self, FastConv};
use hidden_neurons::model::{CnnConfig, ConvLayer};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Int;
use hidden_neurons::model::{NoTap, TappedModel};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{ModuleOptimizer, adam};

/// Repeats per timed op; the median is reported.
const REPEATS: usize = 5;

fn median_ms(mut f: impl FnMut() -> Tensor<4>) -> f64 {
    read_f32(f().sum()); // warm-up: allocations, autotune
    let mut times: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let started = Instant::now();
            read_f32(f().sum());
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[REPEATS / 2]
}

fn median_ms2(mut f: impl FnMut() -> Tensor<2>) -> f64 {
    median_ms(|| f().unsqueeze::<4>())
}

/// Milliseconds (median) of `op` forward and backward through autodiff on `x`'s shape, the
/// incoming gradient a fixed random tensor.
fn fwd_bwd_ms(shape: [usize; 4], op: impl Fn(Tensor<4>) -> Tensor<4>, device: &Device) -> f64 {
    let ad = device.clone().autodiff();
    let x0 = Tensor::<4>::random(shape, Distribution::Default, &ad);
    let g = op(x0.clone()).detach().random_like(Distribution::Default);
    median_ms(|| {
        let x = x0.clone().detach().require_grad();
        let grads = (op(x.clone()) * g.clone()).sum().backward();
        x.grad(&grads).expect("x takes part").inner()
    })
}

/// Times the other ops of each conv layer (batch-norm, activation, pooling) forward and backward
/// and prints a table with totals.
pub fn profile_others(cfg: &CnnConfig, batch: usize, device: &Device) {
    use burn::nn::BatchNormConfig;
    use burn::nn::pool::MaxPool2dConfig;
    let ad = device.clone().autodiff();
    let pool = MaxPool2dConfig::new([2, 2]).init();
    println!("layer (channels @ side)   batch-norm: burn's  ours (trained with)  activation  max-pool before the layer: burn's  ours (trained with)   [ms, forward + backward]");
    let (mut bn, mut our_bn, mut act, mut mp, mut our_mp) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, s) in cfg.conv_layers().iter().enumerate() {
        let shape = [batch, s.c_out, s.side, s.side];
        let norm = BatchNormConfig::new(s.c_out).init(&ad);
        let t_bn = fwd_bwd_ms(shape, |x| norm.forward(x), device);
        let t_our_bn = fwd_bwd_ms(shape, |x| batch_norm::forward(&norm, x), device);
        let t_act = fwd_bwd_ms(shape, |x| cfg.activation.apply(x), device);
        let pooled = [batch, s.c_in, 2 * s.side, 2 * s.side];
        let (t_pool, t_our_pool) = if s.pool_before {
            (fwd_bwd_ms(pooled, |x| pool.forward(x), device), fwd_bwd_ms(pooled, |x| hidden_neurons::pool::forward(&pool, x), device))
        } else {
            (0.0, 0.0)
        };
        println!("{i:>2}: {:>4} @ {:>2}x{:<2}           {t_bn:>14.1} {t_our_bn:>20.1} {t_act:>11.1} {t_pool:>34.1} {t_our_pool:>20.1}", s.c_out, s.side, s.side);
        bn += t_bn;
        our_bn += t_our_bn;
        act += t_act;
        mp += t_pool;
        our_mp += t_our_pool;
    }
    println!(
        "all layers: batch-norm {bn:.0} ms (burn's) / {our_bn:.0} ms (ours, trained with), activation {act:.0} ms, max-pool {mp:.0} ms (burn's) / {our_mp:.0} ms (ours, trained with) = {:.0} ms per step with ours",
        our_bn + act + our_mp
    );
}

/// Times each conv layer's products on `device` (no autodiff) and prints a table with totals.
pub fn profile_convs(cfg: &CnnConfig, batch: usize, device: &Device) {
    let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let gflop = |s: &ConvLayer| 2.0 * (batch * s.side * s.side * s.c_out * s.c_in * 9) as f64 / 1e9;
    println!("conv layer (c_in -> c_out @ side)   burn's: forward  grad-input  grad-weight   ours: forward  grad-input  grad-weight   matmul of the same size   [ms]");
    let (mut burns, mut ours, mut mm, mut flops) = ([0.0; 3], [0.0; 3], 0.0, 0.0);
    for (i, s) in cfg.conv_layers().iter().enumerate() {
        let x = Tensor::<4>::random([batch, s.c_in, s.side, s.side], Distribution::Default, device);
        let w = Tensor::<4>::random([s.c_out, s.c_in, 3, 3], Distribution::Default, device);
        let g = Tensor::<4>::random([batch, s.c_out, s.side, s.side], Distribution::Default, device);
        let burn_ms = [
            median_ms(|| conv2d(x.clone(), w.clone(), None, options())),
            median_ms(|| conv_transpose2d(g.clone(), w.clone(), None, ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1))),
            median_ms(|| conv2d_weight_backward(x.clone(), w.clone(), g.clone(), options())),
        ];
        let grad = |f: fn(DispatchTensor, DispatchTensor, DispatchTensor, ConvOptions<2>) -> DispatchTensor| {
            median_ms(|| Tensor::from_dispatch(f(x.clone().into_dispatch(), w.clone().into_dispatch(), g.clone().into_dispatch(), options())))
        };
        let our_ms = [
            median_ms(|| conv::apply(x.clone(), w.clone(), None, options())),
            grad(<Dispatch as FastConv>::conv2d_input_grad),
            grad(<Dispatch as FastConv>::conv2d_weight_grad),
        ];
        let a = Tensor::<2>::random([batch * s.side * s.side, 9 * s.c_in], Distribution::Default, device);
        let b = Tensor::<2>::random([9 * s.c_in, s.c_out], Distribution::Default, device);
        let t_mm = median_ms2(|| a.clone().matmul(b.clone()));
        let [bf, bx, bw] = burn_ms;
        let [of, ox, ow] = our_ms;
        println!(
            "{i:>2}: {:>4} -> {:>4} @ {:>2}x{:<2}            {bf:>8.1} {bx:>11.1} {bw:>12.1}   {of:>12.1} {ox:>11.1} {ow:>12.1}   {t_mm:>18.1}",
            s.c_in, s.c_out, s.side, s.side,
        );
        (0..3).for_each(|k| (burns[k], ours[k]) = (burns[k] + burn_ms[k], ours[k] + our_ms[k]));
        mm += t_mm;
        flops += gflop(s);
    }
    let line = |who: &str, [f, x, w]: [f64; 3]| println!("{who}: forward {f:.0} ms, grad-input {x:.0} ms, grad-weight {w:.0} ms = {:.0} ms per step of {batch}", f + x + w);
    line("burn's conv", burns);
    line("ours (trained with)", ours);
    println!("the same products as matmuls: about {:.0} ms ({:.1} GFLOP per step)", 3.0 * mm, 3.0 * flops);
}

/// Times the phases of whole training steps on one batch (median of [`REPEATS`]): the forward
/// pass with the loss, the backward pass, and the optimizer's step, with our Adam
/// ([`hidden_neurons::adam`], what the models train with) and then with burn's own. Beside the op
/// tables above it shows what they leave out (autodiff's own work, the head, allocation).
pub fn profile_step<M: TappedModel>(model: M, x: Tensor<2>, y: Tensor<1, Int>) {
    let [f, b, o] = step_phases(model.clone(), &x, &y, adam());
    println!("training step phases: forward with the loss {f:.0} ms, backward {b:.0} ms, Adam {o:.0} ms = {:.0} ms", f + b + o);
    let [_, _, burns] = step_phases(model, &x, &y, AdamConfig::new().init());
    println!("Adam: ours {o:.0} ms, burn's {burns:.0} ms");
}

fn step_phases<M: TappedModel>(mut model: M, x: &Tensor<2>, y: &Tensor<1, Int>, mut optim: ModuleOptimizer) -> [f64; 3] {
    let ce = CrossEntropyLossConfig::new().init(&x.device());
    let mut phases: Vec<[f64; 3]> = Vec::with_capacity(REPEATS + 1);
    for _ in 0..=REPEATS {
        let started = Instant::now();
        let loss = ce.forward(model.clone().forward_tapped(x.clone(), &mut NoTap), y.clone());
        read_f32(loss.clone().inner());
        let forward = started.elapsed().as_secs_f64() * 1e3;
        let grads = loss.backward();
        let backward = started.elapsed().as_secs_f64() * 1e3 - forward;
        let grads = GradientsParams::from_grads(grads, &model);
        // The model moves into the step (as in training), so the optimizer may update the
        // parameters in place.
        model = optim.step(1e-3, model, grads);
        let total = started.elapsed().as_secs_f64() * 1e3;
        phases.push([forward, backward, total - forward - backward]);
    }
    phases.remove(0); // warm-up
    let mut median = |i: usize| {
        phases.sort_by(|a, b| a[i].total_cmp(&b[i]));
        phases[REPEATS / 2][i]
    };
    [median(0), median(1), median(2)]
}
