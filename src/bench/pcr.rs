use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Baseline, BenchConfig, BenchRecord, MAX_REL_ERR, measure};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::{self, TridiagonalMethod};
use crate::reference;
use crate::tensor::Tensor;

/// One tridiagonal benchmark: `systems` diagonally dominant systems of `n` equations.
#[derive(Clone, Debug)]
pub struct TridiagonalCase {
    /// Number of systems.
    pub systems: usize,
    /// Equations per system.
    pub n: usize,
}

/// The cases of `percept bench pcr`: 16384 systems of 1024 (the case) and shapes that
/// choose each method, the last a few systems too long for workgroup memory.
pub fn tridiagonal_cases(quick: bool) -> Vec<TridiagonalCase> {
    let shapes: &[(usize, usize)] = if quick {
        &[(256, 1024), (4096, 64), (64, 1000), (2, 1 << 14)]
    } else {
        &[(16384, 1024), (65536, 64), (4096, 1000), (4, 1 << 16)]
    };
    shapes
        .iter()
        .map(|&(systems, n)| TridiagonalCase { systems, n })
        .collect()
}

/// Times the solver's own choice of method (without its finiteness readback) and the other
/// methods that apply, with a copy moving as many bytes as the baseline; checks every system
/// against the oracle.
pub fn run_tridiagonal(
    gpu: &Gpu,
    case: &TridiagonalCase,
    config: &BenchConfig,
) -> Result<BenchRecord> {
    let (m, n) = (case.systems, case.n);
    let mut rng = StdRng::seed_from_u64((m * n) as u64);
    let mut draw =
        |lo: f32, hi: f32| -> Vec<f32> { (0..m * n).map(|_| rng.random_range(lo..hi)).collect() };
    let (a, c, d) = (draw(-1.0, 1.0), draw(-1.0, 1.0), draw(-1.0, 1.0));
    let b: Vec<f32> = a
        .iter()
        .zip(&c)
        .map(|(a, c)| a.abs() + c.abs() + 1.0)
        .collect();
    let t = |v: &[f32]| Tensor::from_slice(gpu, v, &[m, n]);
    let (at, bt, ct, dt) = (t(&a)?, t(&b)?, t(&c)?, t(&d)?);
    let method = ops::tridiagonal_method(&at, &bt, &ct, &dt)?;

    // Every system against the f64 Thomas oracle (O(n) each: a fraction of a second on the
    // host at the largest case), so that a wrong workgroup anywhere in the grid shows.
    let x = ops::tridiagonal_solve(&at, &bt, &ct, &dt, None)?.to_vec()?;
    let want = reference::tridiagonal_solve(&a, &b, &c, &d, n);
    let max_rel_err = reference::max_rel_err(&x, &want);

    let solve = measure(gpu, config, || {
        ops::tridiagonal_solve_unchecked(&at, &bt, &ct, &dt, None).map(drop)
    })?;
    // The other methods are context, not the record: a few samples each, since one of them can
    // be far slower than the choice (Thomas along a few long systems on a GPU).
    let brief = BenchConfig {
        warmup: 1,
        samples: 3,
        ..*config
    };
    let mut others = Vec::new();
    for other in TridiagonalMethod::ALL {
        if other == method || !other.applies(gpu, m, n) {
            continue;
        }
        let time = measure(gpu, &brief, || {
            ops::tridiagonal_solve_unchecked(&at, &bt, &ct, &dt, Some(other)).map(drop)
        })?;
        others.push(format!("{} {:.3} ms", describe(other), time.median_ms));
    }
    // Five arrays of m x n floats move once: a, b, c, d read and x written.
    let bytes = 5.0 * 4.0 * (m * n) as f64;
    let copy_src = Tensor::zeros(gpu, &[(5 * m * n).div_ceil(2)])?;
    let copy = measure(gpu, config, || ops::copy(&copy_src).map(drop))?;
    let gbs = |ms: f64| bytes / (ms * 1e-3) / 1e9;
    let summary = gpu.summary();
    Ok(BenchRecord {
        name: "pcr/tridiagonal".to_string(),
        shape: vec![m, n],
        median_ms: solve.median_ms,
        rate: gbs(solve.median_ms),
        unit: "GB/s".to_string(),
        max_rel_err,
        ok: max_rel_err <= MAX_REL_ERR,
        baseline: Some(Baseline {
            name: "vec4 copy".to_string(),
            rate: gbs(copy.median_ms),
            speedup: copy.median_ms / solve.median_ms,
        }),
        variant: format!(
            "{} ({}; {})",
            describe(method),
            if gpu.tuning() {
                "the solver's choice, tuning on"
            } else {
                "the solver's choice, tuning off"
            },
            if others.is_empty() {
                "no other method applies".to_string()
            } else {
                others.join(", ")
            }
        ),
        samples: solve.samples,
        runs_per_sample: solve.runs_per_sample,
        timing: solve.timing,
        checked: gpu.checked(),
        adapter: summary.adapter.clone(),
        backend: summary.backend.clone(),
    })
}

fn describe(method: TridiagonalMethod) -> &'static str {
    match method {
        TridiagonalMethod::Pcr => "cr+pcr in workgroup memory",
        TridiagonalMethod::Thomas => "thomas, one invocation per system",
        TridiagonalMethod::Partitioned => "global pcr levels, then thomas per interleaved system",
    }
}
