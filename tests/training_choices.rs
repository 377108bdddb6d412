//! The named choices where the paper is silent: Keras' initialisation and the three optimizers.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use hidden_neurons::data::{Batches, Dataset, epoch_order};
use hidden_neurons::model::{Activation, CnnConfig, Init, MlpConfig};
use hidden_neurons::stats::read_f32;
use hidden_neurons::train::{Optimizer, train_step};

#[path = "common/mod.rs"]
mod common;
use common::TOY_NORM;

/// Every parameter's shape and values, in module order.
#[derive(Default)]
struct Params(Vec<(Vec<usize>, Vec<f32>)>);

impl ModuleVisitor for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.0.push((t.dims().to_vec(), read_f32(t)));
    }
}

fn params<M: Module>(m: &M) -> Params {
    let mut p = Params::default();
    m.visit(&mut p);
    p
}

/// Checks Keras' Glorot-uniform law on every weight (rank >= 2; conv fans count the kernel's
/// positions) and zeros on every bias; `gammas` rank-1 parameters of batch-norm come in pairs
/// (gamma 1, beta 0) after each conv's weight and bias.
fn assert_keras(p: &Params, what: &str) {
    let mut weights = 0;
    for (dims, values) in &p.0 {
        if dims.len() >= 2 {
            // burn stores a dense weight as [in, out] and a conv's as [out, in, k, k].
            let (fan_in, fan_out) = if dims.len() == 2 {
                (dims[0], dims[1])
            } else {
                let k: usize = dims[2..].iter().product();
                (dims[1] * k, dims[0] * k)
            };
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            assert!(values.iter().all(|v| v.abs() <= limit), "{what}: weight {dims:?} outside +-{limit}");
            // The uniform law's spread: limit / sqrt(3), within 10% on these sizes.
            let n = values.len() as f64;
            let sd = (values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n).sqrt();
            let want = limit as f64 / 3f64.sqrt();
            assert!((sd / want - 1.0).abs() < 0.1, "{what}: weight {dims:?} spread {sd}, Glorot wants {want}");
            weights += 1;
        }
    }
    assert!(weights > 0, "{what}: no weights");
}

fn biases_are_zero(p: &Params) -> bool {
    // A bias follows its weight in module order: the first rank-1 parameter after a weight.
    p.0.windows(2).filter(|w| w[0].0.len() >= 2 && w[1].0.len() == 1).all(|w| w[1].1.iter().all(|&v| v == 0.0))
}

#[test]
fn keras_init_draws_glorot_weights_and_zero_biases() {
    let device = Device::flex();
    device.seed(5);
    let mlp = MlpConfig::mnist(Activation::Relu, vec![300, 200]).with_init(Init::Keras).init(&device);
    let p = params(&mlp);
    assert_keras(&p, "mlp");
    assert!(biases_are_zero(&p), "mlp biases not zero");
    let cnn = CnnConfig::cifar(Activation::Relu, vec![16, 32]).with_init(Init::Keras).init(&device);
    let p = params(&cnn);
    assert_keras(&p, "cnn");
    assert!(biases_are_zero(&p), "cnn biases not zero");

    // burn's default draws its biases, and its weights by another law.
    let burn_mlp = params(&MlpConfig::mnist(Activation::Relu, vec![300, 200]).init(&device));
    assert!(!biases_are_zero(&burn_mlp), "burn's default should draw biases");
}

#[test]
fn a_fresh_suffix_starts_like_its_model() {
    use hidden_neurons::model::TappedModel;
    let device = Device::flex();
    device.seed(6);
    let mlp = MlpConfig::mnist(Activation::Relu, vec![64, 64, 32]).with_init(Init::Keras).init(&device);
    let suffix = params(&mlp.fresh_suffix(0, &device));
    assert_keras(&suffix, "mlp suffix");
    assert!(biases_are_zero(&suffix));
    let cnn = CnnConfig::cifar(Activation::Relu, vec![8, 16]).with_init(Init::Keras).init(&device);
    let suffix = params(&cnn.fresh_suffix(1, &device));
    assert!(biases_are_zero(&suffix), "cnn suffix biases");
}

#[test]
fn every_optimizer_learns_the_toy_problem() {
    // Each class in its own band of pixel values: learnable in a few epochs by any optimizer.
    let labels: Vec<u8> = (0..96).map(|i| (i % 3) as u8).collect();
    let images = (0..96 * 5).map(|k| labels[k / 5] * 90 + ((k * 37) % 50) as u8).collect();
    let data = Dataset { features: 5, images, labels };
    let mut finals = Vec::new();
    for optimizer in [Optimizer::Adam, Optimizer::Sgd, Optimizer::Rmsprop] {
        let device = Device::flex().autodiff();
        device.seed(2);
        let mut model = MlpConfig { input: 5, hidden: vec![16], classes: 3, activation: Activation::Relu, dropout: 0.0, first_index: 1, init: Init::Keras }.init(&device);
        let mut optim = optimizer.init();
        let lr = optimizer.default_learning_rate();
        let mut losses = Vec::new();
        for epoch in 0..80 {
            let mut sum = 0.0;
            for b in Batches::new(epoch_order(data.len(), 1, epoch), 16) {
                let (x, y) = data.batch(&b.samples, TOY_NORM, &device);
                let (m, loss, _) = train_step(model, &mut optim, lr, x, y, None);
                model = m;
                sum += read_f32(loss)[0];
            }
            losses.push(sum);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        eprintln!("{}: loss {first} -> {last}", optimizer.name());
        assert!(last < 0.5 * first, "{}: loss {first} -> {last}", optimizer.name());
        finals.push(last);
    }
    // Three different update rules from the same start: three different trajectories.
    assert!(finals[0] != finals[1] && finals[1] != finals[2] && finals[0] != finals[2], "{finals:?}");
}
