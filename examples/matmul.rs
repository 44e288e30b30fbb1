//! Multiplies two matrices on the GPU through percept, as a downstream crate would, and checks
//! one entry on the CPU.
//!
//! Run with `cargo run --release --example matmul -- 300 200 100` (M N K).

use percept::ops::{self, MatmulSpec};
use percept::{Gpu, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected three sizes M N K: {e}"))?;
    let [m, n, k] = dims[..] else {
        return Err("usage: matmul M N K".into());
    };
    if dims.contains(&0) {
        return Err("sizes must be at least 1".into());
    }

    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({})",
        gpu.summary().adapter,
        gpu.summary().backend
    );

    let a_host: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let b_host: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
    let a = Tensor::from_slice(&gpu, &a_host, &[m, k])?;
    let b = Tensor::from_slice(&gpu, &b_host, &[k, n])?;

    let (c, timing) = gpu.time(|| ops::matmul(&a, &b, &MatmulSpec::default()))?;
    let c_host = c.to_vec()?;

    let (i, j) = (m - 1, n / 2);
    let cpu: f64 = (0..k)
        .map(|p| a_host[i * k + p] as f64 * b_host[p * n + j] as f64)
        .sum();
    let got = c_host[i * n + j];
    println!(
        "C = A B, {m}x{k} times {k}x{n}: C[{i}][{j}] = {got} (CPU: {cpu:.6}), GPU time {:?}",
        timing.elapsed
    );
    // f32 sums of k products of values at most 1: within k ulps of their size.
    if (got as f64 - cpu).abs() > 1e-6 * k as f64 * cpu.abs().max(1.0) {
        return Err(format!("C[{i}][{j}] = {got} is off the CPU's {cpu}").into());
    }
    Ok(())
}
