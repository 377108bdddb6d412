//! [`super::EvalOps`]'s loops over row-major f32 values ([`F32Tensor`]), in tasks of a fixed
//! share of the values (rayon: natively on burn-flex's threads, in the page's worker on its one
//! thread). Sums are added in a fixed order, whatever the scheduling.

use rayon::prelude::*;

use crate::cpu_tensor::F32Tensor;

/// Values per task: large enough that a task's overhead does not show.
const TASK_VALUES: usize = 1 << 15;

/// Whole units of `unit` values per task.
fn per_task(unit: usize) -> usize {
    unit.max(1) * (TASK_VALUES / unit.max(1)).max(1)
}

/// `z` `[rows, n]` with each value mapped by `f(value, neuron's column of per_neuron)`.
fn per_column<T: F32Tensor, const K: usize>(z: &T, per_neuron: &T, f: impl Fn(f32, [f32; K]) -> f32 + Sync) -> T {
    let shape = z.f32_shape().expect("f32 values (checked by the caller)");
    let n = shape.last().copied().unwrap_or(1).max(1);
    let rows = per_neuron.row_major();
    let rows = rows.values();
    assert_eq!(rows.len(), K * n, "per-neuron rows");
    let columns: Vec<[f32; K]> = (0..n).map(|j| std::array::from_fn(|k| rows[k * n + j])).collect();
    let z = z.row_major();
    let z = z.values();
    let mut out = vec![0.0f32; z.len()];
    out.par_chunks_mut(per_task(n)).zip(z.par_chunks(per_task(n))).for_each(|(out, z)| {
        for (o, v) in out.chunks_mut(n).zip(z.chunks(n)) {
            for ((o, &v), &c) in o.iter_mut().zip(v).zip(&columns) {
                *o = f(v, c);
            }
        }
    });
    T::from_values(out, &shape)
}

pub fn two_values<T: F32Tensor>(z: &T, per_neuron: &T) -> T {
    per_column(z, per_neuron, |v, [threshold, low, high]| if v >= threshold { high } else { low })
}

pub fn inside<T: F32Tensor>(z: &T, per_neuron: &T) -> T {
    per_column(z, per_neuron, |v, [lo, hi]| (v >= lo && v <= hi) as u8 as f32)
}

/// `x` `[batch, channels, ...]`, `per_channel` `[4, channels]` (gamma, beta, mean, variance).
pub fn batch_norm<T: F32Tensor>(x: &T, per_channel: &T, epsilon: f64, relu: bool) -> T {
    let shape = x.f32_shape().expect("f32 values (checked by the caller)");
    let c = shape.get(1).copied().unwrap_or(1).max(1);
    let plane = shape.iter().skip(2).product::<usize>().max(1);
    let stats = per_channel.row_major();
    let stats = stats.values();
    assert_eq!(stats.len(), 4 * c, "per-channel statistics");
    let (gamma, beta, mean, variance) = (&stats[..c], &stats[c..2 * c], &stats[2 * c..3 * c], &stats[3 * c..]);
    // As burn's: the scalar epsilon added in the tensor's dtype, then the square root.
    let std: Vec<f32> = variance.iter().map(|v| (v + epsilon as f32).sqrt()).collect();
    let x = x.row_major();
    let x = x.values();
    let mut out = vec![0.0f32; x.len()];
    let task = per_task(plane);
    out.par_chunks_mut(task).zip(x.par_chunks(task)).enumerate().for_each(|(t, (out, x))| {
        for (i, (o, p)) in out.chunks_mut(plane).zip(x.chunks(plane)).enumerate() {
            let k = (t * (task / plane) + i) % c;
            let (m, s, g, b) = (mean[k], std[k], gamma[k], beta[k]);
            for (o, &v) in o.iter_mut().zip(p) {
                let y = (v - m) / s * g + b;
                *o = if relu && y <= 0.0 { 0.0 } else { y };
            }
        }
    });
    T::from_values(out, &shape)
}

/// Per column, the `indices`-th smallest values (`[indices, n]`): each found by selection in
/// the part of the column left of the next larger index already placed.
pub fn order_statistics<T: F32Tensor>(z: &T, indices: &[usize]) -> T {
    let shape = z.f32_shape().expect("f32 values (checked by the caller)");
    let n = shape[1].max(1);
    let z = z.row_major();
    let z = z.values();
    let mut order: Vec<usize> = (0..indices.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(indices[i]));
    let per_column: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut col: Vec<f32> = z.iter().skip(j).step_by(n).copied().collect();
            let mut picked = vec![0.0f32; indices.len()];
            let mut end = col.len();
            for &i in &order {
                let at = indices[i];
                // A repeated index was placed by the previous round.
                if at < end {
                    col[..end].select_nth_unstable_by(at, f32::total_cmp);
                    end = at;
                }
                picked[i] = col[at];
            }
            picked
        })
        .collect();
    let out = (0..indices.len()).flat_map(|i| per_column.iter().map(move |c| c[i])).collect();
    T::from_values(out, &[indices.len(), shape[1]])
}

/// See [`super::side_sums`]: `[2k + 1, n]`, counts, then sums at or above, then the sum of all.
pub fn side_sums<T: F32Tensor>(z: &T, values: &T, thresholds: &T) -> T {
    let shape = thresholds.f32_shape().expect("f32 values (checked by the caller)");
    let (k, n) = (shape[0], shape[1].max(1));
    let (z, values, thresholds) = (z.row_major(), values.row_major(), thresholds.row_major());
    let (z, values, t) = (z.values(), values.values(), thresholds.values());
    // Per task: counts, sums above, sums of all (f64), added up in task order below.
    let partial: Vec<(Vec<u64>, Vec<f64>, Vec<f64>)> = z
        .par_chunks(per_task(n))
        .zip(values.par_chunks(per_task(n)))
        .map(|(z, values)| {
            let (mut count, mut above, mut all) = (vec![0u64; k * n], vec![0.0f64; k * n], vec![0.0f64; n]);
            for (zr, vr) in z.chunks(n).zip(values.chunks(n)) {
                for (j, (&v, &x)) in zr.iter().zip(vr).enumerate() {
                    all[j] += x as f64;
                    for i in 0..k {
                        if v >= t[i * n + j] {
                            count[i * n + j] += 1;
                            above[i * n + j] += x as f64;
                        }
                    }
                }
            }
            (count, above, all)
        })
        .collect();
    let (mut count, mut above, mut all) = (vec![0u64; k * n], vec![0.0f64; k * n], vec![0.0f64; n]);
    for (c, a, s) in partial {
        count.iter_mut().zip(c).for_each(|(x, y)| *x += y);
        above.iter_mut().zip(a).for_each(|(x, y)| *x += y);
        all.iter_mut().zip(s).for_each(|(x, y)| *x += y);
    }
    let out: Vec<f32> = count.iter().map(|&c| c as f32).chain(above.iter().map(|&s| s as f32)).chain(all.iter().map(|&s| s as f32)).collect();
    T::from_values(out, &[2 * k + 1, shape[1]])
}
