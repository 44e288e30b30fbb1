use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Baseline, BenchConfig, BenchRecord, MAX_REL_ERR, Measurement, measure};
use crate::deq::{FixedPointMap, Method, SolverConfig, Stop, solve};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::init::standard_normal;
use crate::ops::{self, Activation, MatmulSpec, Precision, SplitB};
use crate::reference;
use crate::tensor::Tensor;

/// Iterations of the fixed-count case (PyTorch's anchor runs 30).
const ITERATIONS: usize = 30;
/// Rows checked against the f64 oracle.
const CHECKED_ROWS: usize = 4;
/// The relative residual the convergence cases solve to.
const TOL: f32 = 1e-4;

/// One DEQ benchmark: z = tanh(z W + x U) with `batch` samples of `width`, W ~ N(0, 0.36 /
/// width), U ~ N(0, 1 / width), x ~ N(0, 1), as in `shared/gpu/torch_anchor.py`.
#[derive(Clone, Debug)]
pub struct DeqCase {
    /// Samples.
    pub batch: usize,
    /// Width of z (and of x).
    pub width: usize,
    /// Of the products: f32, or split precision on tensor cores.
    pub precision: Precision,
}

/// The cases of `percept bench deq`: the anchor's 1024 x 1024, or 256 x 256 with `quick`;
/// `with_split_f16` (adapters with tensor cores, see [`Precision::available`]) adds it with
/// split-precision products.
pub fn deq_cases(quick: bool, with_split_f16: bool) -> Vec<DeqCase> {
    let n = if quick { 256 } else { 1024 };
    let case = |precision| DeqCase {
        batch: n,
        width: n,
        precision,
    };
    let mut cases = vec![case(Precision::F32)];
    if with_split_f16 {
        cases.push(case(Precision::SplitF16));
    }
    cases
}

/// Iterations and time for one solver to reach the relative residual 1e-4.
#[derive(Clone, Debug, Serialize)]
pub struct DeqSolveRecord {
    /// The solver.
    pub method: String,
    /// `[batch, width]`.
    pub shape: Vec<usize>,
    /// Evaluations of the cell until every sample reached the tolerance.
    pub iterations: usize,
    /// Whether every sample did (within 100 evaluations).
    pub converged: bool,
    /// The largest relative residual returned.
    pub max_residual: f32,
    /// Singular updates replaced by plain steps.
    pub fallbacks: usize,
    /// Median time of x U and the whole solve (the host checks for convergence after every
    /// iteration), in milliseconds.
    pub median_ms: f64,
    /// Plain fixed-point iteration's time divided by this solver's.
    pub speedup_vs_fixed_point: f64,
    /// Adapter name.
    pub adapter: String,
}

/// The anchor's parameters and input, with W and U split once into f16 halves for
/// split-precision products (they are fixed parameters), or `None` to multiply in f32.
struct Problem {
    w: Tensor,
    u: Tensor,
    x: Tensor,
    split: Option<(SplitB, SplitB)>,
}

impl Problem {
    /// The map for the problem's input, its injection x U computed now: every timed run
    /// includes it, as PyTorch's does.
    fn map(&self) -> Result<Anchor<'_>> {
        let (w_split, u_split) = match &self.split {
            Some((w, u)) => (Some(w), Some(u)),
            None => (None, None),
        };
        Ok(Anchor {
            w: &self.w,
            injection: ops::matmul(&self.x, &self.u, &product(u_split))?,
            w_split,
        })
    }
}

/// A product by a right-hand operand split once, or in f32 (`None`).
fn product(split: Option<&SplitB>) -> MatmulSpec<'_> {
    MatmulSpec {
        precision: match split {
            Some(_) => Precision::SplitF16,
            None => Precision::F32,
        },
        split_b: split,
        ..Default::default()
    }
}

/// z -> tanh(z W + x U), PyTorch's form of the anchor (W not transposed).
struct Anchor<'a> {
    w: &'a Tensor,
    injection: Tensor,
    w_split: Option<&'a SplitB>,
}

impl FixedPointMap for Anchor<'_> {
    fn gpu(&self) -> &Gpu {
        self.w.gpu()
    }

    fn shape(&self) -> [usize; 2] {
        [self.injection.shape()[0], self.injection.shape()[1]]
    }

    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
        let spec = MatmulSpec {
            add: Some(&self.injection),
            activation: Activation::Tanh,
            ..product(self.w_split)
        };
        ops::matmul_into(z, self.w, &spec, out)
    }
}

/// Times x U and 30 iterations through [`solve`] (tolerance 0, one readback at the end), as
/// PyTorch's anchor times them, against x U and the bare loop of fused matmuls; checks sampled
/// rows against an f64 twin, then solves to a relative residual of 1e-4 with each solver. A
/// split-precision case times the same with [`Precision::SplitF16`] products (W and U split
/// once) against the f32 solve instead.
pub fn run_deq(
    gpu: &Gpu,
    case: &DeqCase,
    config: &BenchConfig,
) -> Result<(BenchRecord, Vec<DeqSolveRecord>)> {
    let (b, n) = (case.batch, case.width);
    let mut rng = StdRng::seed_from_u64((b * n) as u64);
    let scaled = |v: Vec<f32>, s: f32| -> Vec<f32> { v.into_iter().map(|x| x * s).collect() };
    let w_host = scaled(standard_normal(&mut rng, n * n), 0.6 / (n as f32).sqrt());
    let u_host = scaled(standard_normal(&mut rng, n * n), 1.0 / (n as f32).sqrt());
    let x_host = standard_normal(&mut rng, b * n);
    let problem = Problem {
        w: Tensor::from_slice(gpu, &w_host, &[n, n])?,
        u: Tensor::from_slice(gpu, &u_host, &[n, n])?,
        x: Tensor::from_slice(gpu, &x_host, &[b, n])?,
        split: None,
    };
    let fixed = |method, tol, max_iter, check_every| SolverConfig {
        method,
        tol,
        stop: Stop::Relative,
        max_iter,
        check_every,
        accept_unconverged: true,
    };
    let thirty = fixed(Method::FIXED_POINT, 0.0, ITERATIONS, ITERATIONS);

    // The first and last rows (the first and last blocks of the products) and random ones.
    let mut rows = vec![0, b - 1];
    rows.extend((2..CHECKED_ROWS).map(|_| rng.random_range(0..b)));
    let pick = |all: &[f32]| -> Vec<f32> {
        rows.iter()
            .flat_map(|&r| all[r * n..(r + 1) * n].iter().copied())
            .collect()
    };
    let want = oracle(&w_host, &u_host, &pick(&x_host), n);
    let thirty_err = |problem: &Problem| -> Result<f64> {
        let z = solve(&problem.map()?, None, &thirty)?.z.to_vec()?;
        Ok(reference::max_rel_err(&pick(&z), &want))
    };
    let solver = measure(gpu, config, || {
        solve(&problem.map()?, None, &thirty).map(drop)
    })?;
    // x U and one product per iteration.
    let flops = (ITERATIONS + 1) as f64 * 2.0 * (b * n * n) as f64;
    let tflops = |ms: f64| flops / (ms * 1e-3) / 1e12;
    let summary = gpu.summary();
    let record =
        |name: &str, time: &Measurement, max_rel_err: f64, baseline, variant: &str| BenchRecord {
            name: name.to_string(),
            shape: vec![b, n, ITERATIONS],
            median_ms: time.median_ms,
            rate: tflops(time.median_ms),
            unit: "TFLOP/s".to_string(),
            max_rel_err,
            ok: max_rel_err <= MAX_REL_ERR,
            baseline: Some(baseline),
            variant: variant.to_string(),
            samples: time.samples,
            runs_per_sample: time.runs_per_sample,
            timing: time.timing,
            checked: gpu.checked(),
            adapter: summary.adapter.clone(),
            backend: summary.backend.clone(),
        };
    if case.precision == Precision::SplitF16 {
        let split = Problem {
            split: Some((
                SplitB::new(&problem.w, false)?,
                SplitB::new(&problem.u, false)?,
            )),
            ..problem
        };
        let max_rel_err = thirty_err(&split)?;
        let time = measure(gpu, config, || {
            solve(&split.map()?, None, &thirty).map(drop)
        })?;
        let baseline = Baseline {
            name: "the same solve with f32 products".to_string(),
            rate: tflops(solver.median_ms),
            speedup: solver.median_ms / time.median_ms,
        };
        let variant = "x U and deq::solve, fixed point, tol 0, split-f16 products on tensor \
                       cores (W and U split once)";
        let name = "deq/fixed-point-30-split-f16";
        return Ok((
            record(name, &time, max_rel_err, baseline, variant),
            Vec::new(),
        ));
    }
    let max_rel_err = thirty_err(&problem)?;
    let (ping, pong) = (Tensor::zeros(gpu, &[b, n])?, Tensor::zeros(gpu, &[b, n])?);
    let bare = measure(gpu, config, || {
        let anchor = problem.map()?;
        for i in 0..ITERATIONS {
            let (from, to) = if i % 2 == 0 {
                (&ping, &pong)
            } else {
                (&pong, &ping)
            };
            anchor.apply(from, to)?;
        }
        Ok(())
    })?;
    let baseline = Baseline {
        name: "x U and the bare fused-matmul loop".to_string(),
        rate: tflops(bare.median_ms),
        speedup: bare.median_ms / solver.median_ms,
    };
    let variant = "x U and deq::solve, fixed point, tol 0";
    let thirty_record = record(
        "deq/fixed-point-30",
        &solver,
        max_rel_err,
        baseline,
        variant,
    );

    let mut solves: Vec<DeqSolveRecord> = Vec::new();
    for method in [Method::FIXED_POINT, Method::ANDERSON, Method::BROYDEN] {
        // The host checks after every iteration, so the time is that of the iterations needed.
        let c = fixed(method, TOL, 100, 1);
        let stats = solve(&problem.map()?, None, &c)?.stats;
        let time = measure(gpu, config, || solve(&problem.map()?, None, &c).map(drop))?;
        let baseline_ms = solves.first().map_or(time.median_ms, |r| r.median_ms);
        solves.push(DeqSolveRecord {
            method: method.name().to_string(),
            shape: vec![b, n],
            iterations: stats.iterations,
            converged: stats.converged,
            max_residual: stats.max_residual,
            fallbacks: stats.fallbacks,
            median_ms: time.median_ms,
            speedup_vs_fixed_point: baseline_ms / time.median_ms,
            adapter: summary.adapter.clone(),
        });
    }
    Ok((thirty_record, solves))
}

/// Thirty iterations of z = tanh(z W + x U) from zero in f64, for the given rows of x.
fn oracle(w: &[f32], u: &[f32], x: &[f32], n: usize) -> Vec<f64> {
    let times = |v: &[f64], m: &[f32]| -> Vec<f64> {
        let mut out = vec![0.0; n];
        for (k, &vk) in v.iter().enumerate() {
            for (o, &mkj) in out.iter_mut().zip(&m[k * n..(k + 1) * n]) {
                *o += vk * mkj as f64;
            }
        }
        out
    };
    let mut all = Vec::with_capacity(x.len());
    for row in x.chunks(n) {
        let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let injection = times(&row, u);
        let mut z = vec![0.0; n];
        for _ in 0..ITERATIONS {
            z = times(&z, w)
                .iter()
                .zip(&injection)
                .map(|(a, b)| (a + b).tanh())
                .collect();
        }
        all.extend(z);
    }
    all
}
