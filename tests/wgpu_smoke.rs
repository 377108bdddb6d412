//! The wgpu code path: same model, same probe gradients and kernels as on the CPU backend.
//! Without a GPU this runs on Mesa's lavapipe (software Vulkan), which `.ci/run` installs; the
//! first kernels take tens of seconds to compile there, so the tensors are tiny.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::backend::{BackendChoice, choose};
use hidden_neurons::model::{Activation, MlpConfig, ProbeTap, TappedModel};
use hidden_neurons::stats::{average_sign, percentiles, percentiles_selected, read_f32, sign_histogram};

fn probe_grads(model: &hidden_neurons::model::Mlp, device: &Device) -> Vec<Vec<f32>> {
    let x: Vec<f32> = (0..12).map(|i| (i as f32 - 6.0) / 4.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [3, 4]), device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 2], [3]), device);
    let mut tap = ProbeTap::default();
    let loss = CrossEntropyLossConfig::new().init(device).forward(model.forward_tapped(x, &mut tap), y);
    let grads = loss.backward();
    tap.probes.iter().map(|p| read_f32(p.as_ref().unwrap().grad(&grads).unwrap())).collect()
}

#[test]
fn wgpu_matches_the_cpu_backend() {
    let chosen = choose(BackendChoice::Wgpu);
    println!("{}", chosen.reason);
    let cpu = Device::flex().autodiff();
    let gpu = chosen.device.clone().autodiff();
    cpu.seed(5);
    let model = MlpConfig { input: 4, hidden: vec![8, 8], classes: 3, activation: Activation::Relu, dropout: 0.0, first_index: 1, init: Default::default() }.init(&cpu);
    let on_cpu = probe_grads(&model, &cpu);
    let on_gpu = probe_grads(&model.clone().fork(&gpu), &gpu);
    for (a, b) in on_cpu.iter().flatten().zip(on_gpu.iter().flatten()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    let inner = chosen.device.clone();
    let z: Vec<f32> = (0..64).map(|i| ((i * 29) % 64) as f32 - 20.0).collect();
    let z = Tensor::<2>::from_data(TensorData::new(z, [16, 4]), &inner);
    let p = read_f32(percentiles(z.clone(), &[0.0, 50.0, 100.0]));
    assert_eq!(p.len(), 12);
    // The streamed selection (integer scatter-add, cumulative sums, masked extremes) on wgpu.
    assert_eq!(read_f32(percentiles_selected(z, &[0.0, 50.0, 100.0])), p);
    assert!(p[..4].iter().zip(&p[8..]).all(|(lo, hi)| lo < hi));
    let pos = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 0.0, 1.0, 0.0], [2, 2]), &inner);
    let neg = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 2.0, 1.0, 0.0], [2, 2]), &inner);
    let (avg, def) = average_sign(pos, neg);
    let h = sign_histogram(avg, def, 20);
    assert_eq!((h.total(), h.counts[0], h.counts[10], h.counts[19]), (3, 1, 1, 1));
}

/// The models' conv, training batch-norm with its ReLU and max-pool (`conv::FastConv`,
/// `batch_norm::FastNorm`, `pool::FastPool`) route wgpu tensors to burn's own ops: the same
/// output and gradients as on the CPU backend, where our kernels run.
#[test]
fn conv_and_batch_norm_run_on_wgpu_like_on_the_cpu() {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    use hidden_neurons::{batch_norm, conv, pool};
    let chosen = choose(BackendChoice::Wgpu);
    let cpu = Device::flex().autodiff();
    let gpu = chosen.device.clone().autodiff();
    let layer = Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&cpu);
    let norm = BatchNormConfig::new(3).init(&cpu);
    let max_pool = MaxPool2dConfig::new([2, 2]).init();
    // Distinct values (37 is invertible mod 101): no ties for the max-pool to break differently.
    let x: Vec<f32> = (0..2 * 2 * 5 * 5).map(|i| ((i * 37) % 101) as f32 / 29.0 - 1.7).collect();
    let run = |device: &Device| {
        let (layer, norm) = (layer.clone().fork(device), norm.clone().fork(device));
        let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 2, 5, 5]), device).require_grad();
        let z = batch_norm::forward(&norm, conv::forward(&layer, x.clone()));
        let y = z.clone() + pool::forward(&max_pool, batch_norm::forward_relu(&norm, z)).repeat_dim(2, 3).repeat_dim(3, 3).slice([0..2, 0..3, 0..5, 0..5]);
        let weights = Tensor::<4>::from_data(TensorData::new((0..2 * 3 * 5 * 5).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<f32>>(), [2, 3, 5, 5]), device);
        let grads = (y.clone() * weights).sum().backward();
        let weight_grad = layer.weight.val().grad(&grads).expect("the weight takes part");
        [read_f32(y.inner()), read_f32(x.grad(&grads).expect("x takes part")), read_f32(weight_grad)]
    };
    for (what, (a, b)) in ["output", "x gradient", "weight gradient"].iter().zip(run(&cpu).iter().zip(run(&gpu).iter())) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{what}: cpu {a} vs wgpu {b}");
        }
    }
}
