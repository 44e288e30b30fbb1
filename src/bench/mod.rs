//! Measurements behind `percept bench`: each case times GPU work after warm-up, reports the
//! median and a derived rate, and checks its result against the [`crate::reference`] oracle.

mod deeppcr;
mod deq;
mod fft;
mod matmul;
mod mlp;
mod pcr;

use serde::Serialize;

pub use deeppcr::{DeepPcrCase, DeepPcrRecord, deeppcr_cases, run_deeppcr};
pub use deq::{DeqCase, DeqSolveRecord, deq_cases, run_deq};
pub use fft::{FftCase, fft_cases, run_fft};
pub use matmul::{MatmulCase, matmul_cases, run_matmul};
pub use mlp::{MlpStepCase, mlp_step_cases, run_mlp_step};
pub use pcr::{TridiagonalCase, run_tridiagonal, tridiagonal_cases};

use crate::error::Result;
use crate::gpu::{Gpu, TimingSource};

/// Largest `max_rel_err` a benchmark result may show and still pass its oracle check.
pub const MAX_REL_ERR: f64 = 1e-4;

/// One measured case.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRecord {
    /// Kernel family and case, e.g. `matmul/square`.
    pub name: String,
    /// Problem dimensions, e.g. `[batch, m, n, k]`.
    pub shape: Vec<usize>,
    /// Median time of one run, in milliseconds.
    pub median_ms: f64,
    /// Derived rate in `unit`.
    pub rate: f64,
    /// Unit of `rate`, e.g. `TFLOP/s`.
    pub unit: String,
    /// Largest relative deviation from the oracle (see [`crate::reference::max_rel_err`]).
    pub max_rel_err: f64,
    /// Whether `max_rel_err` is within [`MAX_REL_ERR`].
    pub ok: bool,
    /// A baseline measured in the same run, and this case's rate divided by it.
    pub baseline: Option<Baseline>,
    /// Kernel variant that ran.
    pub variant: String,
    /// Timed samples the median is taken over.
    pub samples: usize,
    /// Runs per sample.
    pub runs_per_sample: usize,
    /// How times were taken.
    pub timing: TimingSource,
    /// Whether shader modules were bounds-checked.
    pub checked: bool,
    /// Adapter name.
    pub adapter: String,
    /// Backend name.
    pub backend: String,
}

/// A baseline measured beside a case.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    /// What the baseline is.
    pub name: String,
    /// Its rate, in the case's unit.
    pub rate: f64,
    /// The case's rate divided by the baseline's.
    pub speedup: f64,
}

/// Timing settings of a benchmark run.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Untimed runs before sampling.
    pub warmup: usize,
    /// Timed samples; the median is reported.
    pub samples: usize,
    /// Target duration of one sample; short runs are repeated within a sample to reach it.
    pub target_sample_ms: f64,
}

impl BenchConfig {
    /// Few samples, for smoke runs and slow software adapters.
    pub fn quick() -> Self {
        BenchConfig {
            warmup: 1,
            samples: 3,
            target_sample_ms: 5.0,
        }
    }

    /// Enough samples for a stable median on a real GPU.
    pub fn full() -> Self {
        BenchConfig {
            warmup: 3,
            samples: 15,
            target_sample_ms: 20.0,
        }
    }
}

/// The median of repeated timings, with the repetition structure.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// Median time of one run, in milliseconds.
    pub median_ms: f64,
    /// Samples taken.
    pub samples: usize,
    /// Runs per sample.
    pub runs_per_sample: usize,
    /// How times were taken.
    pub timing: TimingSource,
}

/// Times `run` (which records one run of GPU work): warm-up, then samples of enough runs to
/// fill `target_sample_ms`, and the median time per run.
pub fn measure(
    gpu: &Gpu,
    config: &BenchConfig,
    mut run: impl FnMut() -> Result<()>,
) -> Result<Measurement> {
    for _ in 0..config.warmup.max(1) {
        run()?;
    }
    let (_, probe) = gpu.time(&mut run)?;
    let probe_ms = probe.elapsed.as_secs_f64() * 1e3;
    let runs = ((config.target_sample_ms / probe_ms.max(1e-3)).ceil() as usize).clamp(1, 1000);
    let mut times = Vec::with_capacity(config.samples);
    let mut source = probe.source;
    for _ in 0..config.samples.max(1) {
        let (_, t) = gpu.time(|| (0..runs).try_for_each(|_| run()))?;
        times.push(t.elapsed.as_secs_f64() * 1e3 / runs as f64);
        source = t.source;
    }
    times.sort_by(f64::total_cmp);
    Ok(Measurement {
        median_ms: times[times.len() / 2],
        samples: times.len(),
        runs_per_sample: runs,
        timing: source,
    })
}
