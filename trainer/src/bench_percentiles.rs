//! `trainer bench --percentiles`: the streamed percentile selection against the sort it
//! replaced, in values per second and peak memory, at 10^6, 10^7 and 10^8 values.
//!
//! Each (method, size) runs in a child process of this binary, so that its peak resident memory
//! (the kernel's own, read from /proc) is not the largest of the ones before it. On wgpu that is
//! host memory only: the device's own memory is not visible from here.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Distribution, Tensor};
use hidden_neurons::stats::{percentiles_by_sort, percentiles_selected, read_f32};

use crate::BackendArg;

/// conv1's channels: the layer whose value count made the sort impossible.
const NEURONS: usize = 64;
pub const SIZES: [usize; 3] = [1_000_000, 10_000_000, 100_000_000];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Sort,
    Select,
}

fn ranks() -> Vec<f64> {
    (0..=10).map(|i| i as f64 * 10.0).collect()
}

/// The parent: every size and method in its own child, one table.
pub fn run(backend: BackendArg, sizes: &[usize]) -> Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let backend_name = format!("{backend:?}").to_lowercase();
    println!("per-neuron percentiles: {NEURONS} neurons, {} ranks, normal random values, backend {backend_name}", ranks().len());
    println!("{:>12} {:>8} {:>10} {:>14} {:>12}", "values", "method", "seconds", "values/s", "peak RSS MB");
    for &n in sizes {
        let mut per_method = Vec::new();
        for method in [Method::Sort, Method::Select] {
            let out = Command::new(&exe)
                .args(["bench", "--backend", &backend_name, "--percentiles-child", &format!("{method:?}").to_lowercase(), "--percentile-values", &n.to_string()])
                .output()
                .with_context(|| format!("running {}", exe.display()))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout.lines().find_map(|l| l.strip_prefix("percentile-child "));
            match (out.status.success(), line) {
                (true, Some(line)) => {
                    let f: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                    let (secs, rss) = (f[0], f[1]);
                    println!("{n:>12} {:>8} {secs:>10.3} {:>14.3e} {:>12.0}", format!("{method:?}").to_lowercase(), n as f64 / secs, rss / 1024.0);
                    per_method.push(Some(secs));
                }
                _ => {
                    let why = String::from_utf8_lossy(&out.stderr);
                    println!("{n:>12} {:>8} failed: {}", format!("{method:?}").to_lowercase(), why.lines().last().unwrap_or("killed"));
                    per_method.push(None);
                }
            }
        }
        if let [Some(sort), Some(select)] = per_method[..] {
            println!("{n:>12} select / sort throughput: {:.2}x", sort / select);
        }
    }
    Ok(())
}

/// The child: one method on `n` values; prints its seconds and its peak RSS in KiB.
pub fn child(method: Method, n: usize, device: &Device) -> Result<()> {
    if n < NEURONS || n > 1_000_000_000 {
        bail!("--percentile-values: {n} is out of range; allowed: {NEURONS} to 10^9");
    }
    let z = Tensor::<2>::random([n / NEURONS, NEURONS], Distribution::Normal(0.0, 1.0), device);
    read_f32(z.clone().narrow(0, 0, 1)); // generated before the clock starts
    let started = Instant::now();
    let p = match method {
        Method::Sort => percentiles_by_sort(z, &ranks()),
        Method::Select => percentiles_selected(z, &ranks()),
    };
    read_f32(p);
    let secs = started.elapsed().as_secs_f64();
    println!("percentile-child {secs} {}", peak_rss_kib().unwrap_or(f64::NAN));
    Ok(())
}

fn peak_rss_kib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
