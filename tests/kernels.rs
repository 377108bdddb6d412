//! Device kernels against the plain-Rust references, on random data (burn's flex CPU backend).

use burn::tensor::{Device, Int, Tensor, TensorData};
use hidden_neurons::stats::{
    TwoValueQuantizer, average_sign, binarize_window, class_low_fractions, percentiles, percentiles_by_sort, percentiles_selected, percentiles_streamed, read_f32, reference,
    outer_fraction_per_neuron, sign_histogram, zero_percentile_ranks,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

const S: usize = 257;
const N: usize = 7;

fn random_matrix(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..S)
        .map(|_| {
            (0..N)
                .map(|n| {
                    // Some neurons with ties and exact zeros, like ReLU pre-activations can have.
                    let v: f32 = rng.random_range(-2.0..3.0);
                    if n == 0 { (v * 2.0).round() / 2.0 } else { v }
                })
                .collect()
        })
        .collect()
}

/// Positive and negative sign counts `[S, N]`, each in `0..max`.
fn random_sign_counts(seed: u64, max: u32) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut counts = || -> Vec<Vec<f32>> { (0..S).map(|_| (0..N).map(|_| rng.random_range(0..max) as f32).collect()).collect() };
    (counts(), counts())
}

fn tensor(m: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = m.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [m.len(), m[0].len()]), device)
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn percentiles_match_reference() {
    let device = Device::flex();
    let m = random_matrix(1);
    let ranks = [0.0, 5.0, 10.0, 33.3, 50.0, 95.0, 100.0];
    let p = read_f32(percentiles(tensor(&m, &device), &ranks));
    for (i, &r) in ranks.iter().enumerate() {
        for n in 0..N {
            assert_eq!(p[i * N + n], reference::percentile(&m, n, r), "rank {r} neuron {n}");
        }
    }
}

#[test]
fn two_value_quantization_matches_reference() {
    let device = Device::flex();
    let fit = random_matrix(2);
    let apply = random_matrix(3);
    for rank in [0.0, 30.0, 50.0, 100.0] {
        let t = percentiles(tensor(&fit, &device), &[rank]);
        let thresholds = read_f32(t.clone());
        let q = TwoValueQuantizer::fit(tensor(&fit, &device), t);
        let out = read_f32(q.apply(tensor(&apply, &device)));
        for s in 0..S {
            for n in 0..N {
                let want = reference::quantize(&fit, n, thresholds[n], apply[s][n]);
                assert!(close(out[s * N + n], want), "rank {rank} s {s} n {n}: {} vs {want}", out[s * N + n]);
            }
        }
        // Two values per neuron at most.
        for n in 0..N {
            let mut vals: Vec<f32> = (0..S).map(|s| out[s * N + n]).collect();
            vals.sort_by(f32::total_cmp);
            vals.dedup();
            assert!(vals.len() <= 2, "neuron {n} has {} values", vals.len());
        }
    }
}

#[test]
fn window_binarization_matches_reference() {
    let device = Device::flex();
    let m = random_matrix(4);
    let p = percentiles(tensor(&m, &device), &[40.0, 50.0]);
    let lo_hi = read_f32(p.clone());
    let out = read_f32(binarize_window(tensor(&m, &device), p.clone().narrow(0, 0, 1), p.narrow(0, 1, 1)));
    let mut ones = 0;
    for s in 0..S {
        for n in 0..N {
            let want = reference::window(m[s][n], lo_hi[n], lo_hi[N + n]);
            assert_eq!(out[s * N + n], want);
            ones += want as usize;
        }
    }
    // About 10% of the values of each continuous neuron fall in a 10-rank window.
    assert!(ones > S * N / 20 && ones < S * N / 5, "{ones}");
}

#[test]
fn zero_rank_matches_reference() {
    let device = Device::flex();
    let m = random_matrix(5);
    let ranks = zero_percentile_ranks(tensor(&m, &device));
    for (n, r) in ranks.iter().enumerate() {
        assert!((r - reference::zero_rank(&m, n)).abs() < 1e-3, "neuron {n}");
    }
}

#[test]
fn sign_histogram_matches_reference() {
    let device = Device::flex();
    let (pos, neg) = random_sign_counts(6, 6);
    let (avg, defined) = average_sign(tensor(&pos, &device), tensor(&neg, &device));
    let h = sign_histogram(avg, defined, 20);
    assert_eq!(h.counts, reference::sign_histogram(&pos, &neg, 20));
    let defined_pairs = pos.iter().flatten().zip(neg.iter().flatten()).filter(|(p, n)| **p + **n > 0.0).count();
    assert_eq!(h.total() as usize, defined_pairs);
    assert_eq!(h.edges.len(), 21);
}

#[test]
fn sign_histogram_edges_and_undefined_pairs() {
    let device = Device::flex();
    // Pairs: always positive (+1), always negative (-1), undefined, balanced (0), 9 vs 1 (0.8).
    let pos = vec![vec![3.0, 0.0, 0.0, 1.0, 9.0]];
    let neg = vec![vec![0.0, 2.0, 0.0, 1.0, 1.0]];
    let (avg, defined) = average_sign(tensor(&pos, &device), tensor(&neg, &device));
    let h = sign_histogram(avg, defined, 20);
    assert_eq!(h.total(), 4, "the undefined pair is not counted");
    assert_eq!(h.counts[19], 1, "+1 lands in the last bin");
    assert_eq!(h.counts[0], 1, "-1 lands in the first bin");
    assert_eq!(h.counts[10], 1, "0 opens the upper half");
    assert_eq!(h.counts[18], 1, "0.8 opens bin [0.8, 0.9)");
}

#[test]
fn class_low_fractions_match_a_direct_count() {
    let device = Device::flex();
    let avg = vec![vec![0.5, -1.0], vec![1.0, 0.2], vec![-0.3, 0.0], vec![0.9, 0.9]];
    let defined = vec![vec![1.0, 1.0], vec![1.0, 1.0], vec![1.0, 0.0], vec![0.0, 1.0]];
    let labels = [0i64, 0, 1, 1];
    let def = tensor(&defined, &device).greater_elem(0.5);
    let lab = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [4]), &device);
    let f = class_low_fractions(tensor(&avg, &device), def, lab, 3);
    // class 0: samples 0 and 1; neuron 0 low in both, neuron 1 low in one of two.
    assert_eq!(f[0], vec![Some(1.0), Some(0.5)]);
    // class 1: neuron 0 defined only for sample 2 (high); neuron 1 only for sample 3 (low).
    assert_eq!(f[1], vec![Some(0.0), Some(1.0)]);
    // class 2 has no samples.
    assert_eq!(f[2], vec![None, None]);
}

#[test]
fn outer_fraction_per_neuron_matches_a_direct_count() {
    let device = Device::flex();
    let (pos, neg) = random_sign_counts(9, 4);
    let (avg, defined) = average_sign(tensor(&pos, &device), tensor(&neg, &device));
    let got = outer_fraction_per_neuron(avg, defined, 0.8);
    assert_eq!(got.len(), N);
    for n in 0..N {
        let (mut outer, mut def) = (0, 0);
        for s in 0..S {
            let total = pos[s][n] + neg[s][n];
            if total > 0.0 {
                def += 1;
                if ((pos[s][n] - neg[s][n]) / total).abs() >= 0.8 {
                    outer += 1;
                }
            }
        }
        assert!((got[n] - outer as f64 / def as f64).abs() < 1e-9, "neuron {n}: {} vs {outer}/{def}", got[n]);
    }
}

/// The streamed selection against the sort, on the three kinds of data that break selections:
/// continuous, heavily tied (a handful of values, exact zeros), constant columns; fed in batches
/// of uneven size.
#[test]
fn streamed_selection_is_the_exact_nearest_rank_percentile() {
    let device = Device::flex();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let rows = 3001;
    let m: Vec<Vec<f32>> = (0..rows)
        .map(|_| {
            vec![
                rng.random_range(-1.0f32..1.0) * 1e-3,
                rng.random_range(0..4) as f32 - 1.0,
                0.0,
                2.5,
                // Values many orders of magnitude apart: a bucket of a wide interval holds most.
                if rng.random_bool(0.5) { rng.random_range(0.0f32..1e-30) } else { rng.random_range(0.0f32..1e30) },
            ]
        })
        .collect();
    // Repeated ranks (the window bounds overlap) and the extremes, which need no selection.
    let ranks = [0.0, 0.1, 10.0, 33.3, 50.0, 77.7, 50.0, 99.9, 100.0, 0.0];
    let z = tensor(&m, &device);
    let batches = [1, 999, 1000, 1001];
    let mut replays = 0;
    let streamed = read_f32(percentiles_streamed(&ranks, 5, &device, |sink| {
        replays += 1;
        let mut start = 0;
        for &b in &batches {
            sink(z.clone().narrow(0, start, b));
            start += b;
        }
    }));
    assert!(replays >= 3, "a selection, not a single pass");
    let chunked = read_f32(percentiles_selected(z.clone(), &ranks));
    let sorted = read_f32(percentiles_by_sort(z, &ranks));
    for (i, &r) in ranks.iter().enumerate() {
        for n in 0..5 {
            let want = reference::percentile(&m, n, r);
            assert_eq!(streamed[i * 5 + n], want, "streamed, rank {r} column {n}");
            assert_eq!(chunked[i * 5 + n], want, "in memory, rank {r} column {n}");
            assert_eq!(sorted[i * 5 + n], want, "sort, rank {r} column {n}");
        }
    }
}

#[test]
fn streamed_selection_of_nothing_is_nan() {
    let device = Device::flex();
    let p = read_f32(percentiles_streamed(&[50.0], 3, &device, |_| {}));
    assert!(p.iter().all(|v| v.is_nan()));
}

/// The percentile rule, pinned by hand rather than through `percentile_index`: the r-th
/// percentile of n values is the value at sorted index round(r / 100 * (n - 1)), halves rounded
/// up (numpy's `method="nearest"` rounds halves to even instead: n = 2, r = 50 is index 1 here,
/// 0 there). Every path (sort, in-memory selection, streamed selection) on awkward sizes.
#[test]
fn percentile_rule_on_awkward_sizes_by_hand() {
    let device = Device::flex();
    // (n, rank, expected sorted index), worked out by hand.
    let cases: &[(usize, f64, usize)] = &[
        (1, 0.0, 0), (1, 50.0, 0), (1, 100.0, 0),
        (2, 0.0, 0), (2, 25.0, 0), (2, 50.0, 1), (2, 75.0, 1), (2, 100.0, 1),
        (3, 10.0, 0), (3, 25.0, 1), (3, 50.0, 1), (3, 75.0, 2),
        (4, 50.0, 2), (4, 25.0, 1), (4, 100.0, 3),
        (10, 5.0, 0), (10, 45.0, 4), (10, 50.0, 5), (10, 55.0, 5), (10, 95.0, 9),
        (101, 33.3, 33), (101, 50.0, 50), (101, 90.0, 90),
    ];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    for &(n, rank, index) in cases {
        // Values 0..n in a shuffled order, so that the value is its sorted index; two columns,
        // the second negated (its sorted index counts from the other end).
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let m: Vec<Vec<f32>> = order.iter().map(|&v| vec![v as f32, -(v as f32)]).collect();
        let want = [index as f32, -((n - 1 - index) as f32)];
        let z = tensor(&m, &device);
        let sorted = read_f32(percentiles_by_sort(z.clone(), &[rank]));
        let selected = read_f32(percentiles_selected(z.clone(), &[rank]));
        let streamed = read_f32(percentiles_streamed(&[rank], 2, &device, |sink| {
            for start in (0..n).step_by(3) {
                sink(z.clone().narrow(0, start, 3.min(n - start)));
            }
        }));
        for (path, got) in [("sort", &sorted), ("selection", &selected), ("streamed", &streamed)] {
            assert_eq!(got.as_slice(), want.as_slice(), "{path}: n {n}, rank {rank}");
        }
    }
}
