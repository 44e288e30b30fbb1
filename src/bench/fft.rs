//! `percept bench fft`: batched complex and real FFTs along the last axis, as effective
//! bandwidth (each input and output byte moved once), against the adapter's copy bandwidth and
//! rustfft on the CPU, both measured in the same run.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

use super::{Baseline, BenchConfig, BenchRecord, MAX_REL_ERR, measure};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::{self, FftKind, FftNorm, FftPlan};
use crate::reference;
use crate::tensor::{DType, Tensor};

/// Rows of each result checked against the f64 oracle (the first, the last, and random ones).
const CHECKED_ROWS: usize = 4;
/// Complex values per case: the batch fills this (16384 x 1024 in full runs).
const FULL_VALUES: usize = 1 << 24;
const QUICK_VALUES: usize = 1 << 16;
/// Timed runs of rustfft; the median is reported.
const CPU_RUNS: usize = 5;

/// One FFT benchmark case: `batch` transforms of length `n` along the last axis.
#[derive(Clone, Debug)]
pub struct FftCase {
    /// [`FftKind::Forward`] (c2c) or [`FftKind::RealForward`] (r2c).
    pub kind: FftKind,
    /// Transform length.
    pub n: usize,
    /// Transforms per run.
    pub batch: usize,
}

/// The cases of `percept bench fft`: c2c and r2c for every power of two from 2 to 16384 and
/// 2^20 (quick runs: 256 to 16384 by factors of 4), and the lengths 1000 (smooth) and 1009
/// (prime, Bluestein). Issue 3's target names every power of two up to 4096, whose short
/// lengths pack many rows into a workgroup.
pub fn fft_cases(quick: bool) -> Vec<FftCase> {
    let full: Vec<usize> = (1..=14)
        .map(|k| 1 << k)
        .chain([1 << 20, 1000, 1009])
        .collect();
    let (lengths, values): (&[usize], usize) = if quick {
        (&[256, 1024, 4096, 16384, 1000, 1009], QUICK_VALUES)
    } else {
        (&full, FULL_VALUES)
    };
    lengths
        .iter()
        .flat_map(|&n| {
            // 64 x 2^20 as in ANCHORS.md; otherwise the batch fills `values`.
            let batch = if n == 1 << 20 {
                64
            } else {
                (values / n).max(1)
            };
            [FftKind::Forward, FftKind::RealForward].map(|kind| FftCase { kind, n, batch })
        })
        .collect()
}

fn short_name(kind: FftKind) -> &'static str {
    if kind.is_real() { "r2c" } else { "c2c" }
}

/// Bytes a transform reads and writes once.
fn bytes_moved(case: &FftCase) -> f64 {
    let values = (case.batch * case.n) as f64;
    if case.kind.is_real() {
        values * 4.0 + (case.batch * (case.n / 2 + 1)) as f64 * 8.0
    } else {
        values * 16.0
    }
}

/// Median milliseconds of rustfft (f32, one thread) on the same rows, a complex transform for
/// both kinds: rustfft has no real-input transform, so r2c is compared with a c2c of the same
/// length (a real-input CPU FFT would take about half as long).
fn time_rustfft(case: &FftCase, rng: &mut StdRng) -> f64 {
    let fft = FftPlanner::<f32>::new().plan_fft_forward(case.n);
    let mut data: Vec<Complex32> = (0..case.batch * case.n)
        .map(|_| Complex32::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
    fft.process_with_scratch(&mut data, &mut scratch); // warm-up
    let mut times: Vec<f64> = (0..CPU_RUNS)
        .map(|_| {
            let start = Instant::now();
            fft.process_with_scratch(&mut data, &mut scratch);
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Largest relative deviation from the f64 oracle over a few rows of the result.
fn check_rows(case: &FftCase, host: &[f32], result: &Tensor, rng: &mut StdRng) -> Result<f64> {
    let got = result.to_complex_vec()?;
    let (n, bins) = if case.kind.is_real() {
        (case.n, case.n / 2 + 1)
    } else {
        (case.n, case.n)
    };
    let mut rows = vec![0, case.batch - 1];
    rows.extend((2..CHECKED_ROWS).map(|_| rng.random_range(0..case.batch)));
    let mut worst = 0.0f64;
    for row in rows {
        let want = if case.kind.is_real() {
            reference::fft_r2c(&host[row * n..(row + 1) * n], &[n], 0, FftNorm::Backward)
        } else {
            let x: Vec<[f32; 2]> = host[2 * row * n..2 * (row + 1) * n]
                .chunks(2)
                .map(|c| [c[0], c[1]])
                .collect();
            reference::fft_c2c(&x, &[n], 0, false, FftNorm::Backward)
        };
        let got: Vec<f32> = got[row * bins..(row + 1) * bins]
            .iter()
            .flatten()
            .copied()
            .collect();
        let want: Vec<f64> = want.iter().flatten().copied().collect();
        worst = worst.max(reference::max_rel_err(&got, &want));
    }
    Ok(worst)
}

/// Runs one case: times the planned transform, a vec4 copy moving as many bytes, and rustfft
/// on the same rows, and checks sampled rows against the oracle.
pub fn run_fft(gpu: &Gpu, case: &FftCase, config: &BenchConfig) -> Result<BenchRecord> {
    let mut rng = StdRng::seed_from_u64(0xff7 ^ (case.n * 31 + case.batch) as u64);
    let shape = [case.batch, case.n];
    let plan = FftPlan::new(gpu, case.kind, &shape, 1, FftNorm::Backward)?;
    let floats = case.batch * case.n * if case.kind.is_real() { 1 } else { 2 };
    let host: Vec<f32> = (0..floats).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = if case.kind.is_real() {
        Tensor::from_slice(gpu, &host, &shape)?
    } else {
        let pairs: Vec<[f32; 2]> = host.chunks(2).map(|c| [c[0], c[1]]).collect();
        Tensor::from_complex(gpu, &pairs, &shape)?
    };
    let out = Tensor::uninit(gpu, &plan.output_shape(), DType::C32)?;
    plan.execute_into(&x, &out)?;
    let max_rel_err = check_rows(case, &host, &out, &mut rng)?;

    let bytes = bytes_moved(case);
    let gb_per_s = |ms: f64| bytes / (ms * 1e-3) / 1e9;
    let main = measure(gpu, config, || plan.execute_into(&x, &out))?;
    // A copy of half the bytes moved reads and writes as many bytes as the transform.
    let copied = Tensor::uninit(gpu, &[(bytes / 8.0).ceil() as usize], DType::F32)?;
    let copy = measure(gpu, config, || ops::copy(&copied).map(drop))?;
    let cpu_ms = time_rustfft(case, &mut rng);

    let rate = gb_per_s(main.median_ms);
    let copy_rate = gb_per_s(copy.median_ms);
    let summary = gpu.summary();
    Ok(BenchRecord {
        name: format!("fft/{}", short_name(case.kind)),
        shape: shape.to_vec(),
        median_ms: main.median_ms,
        rate,
        unit: "GB/s".to_string(),
        max_rel_err,
        ok: max_rel_err <= MAX_REL_ERR,
        baseline: Some(Baseline {
            name: "vec4 copy".to_string(),
            rate: copy_rate,
            speedup: rate / copy_rate,
        }),
        variant: format!(
            "{}; rustfft c2c {cpu_ms:.3} ms on the CPU, GPU speedup {:.3}x",
            plan.algorithm(),
            cpu_ms / main.median_ms
        ),
        samples: main.samples,
        runs_per_sample: main.runs_per_sample,
        timing: main.timing,
        checked: gpu.checked(),
        adapter: summary.adapter.clone(),
        backend: summary.backend.clone(),
    })
}
