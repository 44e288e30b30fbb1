use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Baseline, BenchConfig, BenchRecord, MAX_REL_ERR, measure};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{self, Activation, MatmulSpec, Precision};
use crate::reference::{self, MatmulInputs, MatmulShape};
use crate::tensor::{DType, Tensor};

/// Entries of each result checked against the oracle (plus the four corners).
const CHECKED_ENTRIES: usize = 64;

/// One matmul benchmark case.
#[derive(Clone, Debug)]
pub struct MatmulCase {
    /// `square` or `mlp` (an MLP layer's forward: `relu(x wᵀ + b)`).
    pub kind: &'static str,
    /// `m, n, k`.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// Contracted dimension.
    pub k: usize,
    /// f32, or the split-precision product on tensor cores.
    pub precision: Precision,
}

impl MatmulCase {
    fn is_mlp(&self) -> bool {
        self.kind == "mlp"
    }

    /// Refuses a case with an empty dimension, which has nothing to time or check.
    pub fn check(&self) -> Result<()> {
        if [self.m, self.n, self.k].contains(&0) {
            return Err(Error::invalid(
                "bench matmul",
                format!(
                    "{} x {} x {} is not a matrix product to time; give sizes of at least 1",
                    self.m, self.n, self.k
                ),
            ));
        }
        Ok(())
    }
}

/// The cases of `percept bench matmul`: squares of `sizes`, then MLP-shaped layers
/// (batch x width x width with bias and ReLU); `with_split_f16` (for adapters with tensor
/// cores, see [`Precision::available`]) adds each again at [`Precision::SplitF16`].
pub fn matmul_cases(sizes: &[usize], quick: bool, with_split_f16: bool) -> Vec<MatmulCase> {
    let mut cases: Vec<MatmulCase> = sizes
        .iter()
        .map(|&s| MatmulCase {
            kind: "square",
            m: s,
            n: s,
            k: s,
            precision: Precision::F32,
        })
        .collect();
    let mlp: &[(usize, usize)] = if quick {
        &[(512, 256)]
    } else {
        &[(4096, 1024), (4096, 4096)]
    };
    cases.extend(mlp.iter().map(|&(batch, width)| MatmulCase {
        kind: "mlp",
        m: batch,
        n: width,
        k: width,
        precision: Precision::F32,
    }));
    if with_split_f16 {
        let split: Vec<MatmulCase> = cases
            .iter()
            .map(|c| MatmulCase {
                precision: Precision::SplitF16,
                ..c.clone()
            })
            .collect();
        cases.extend(split);
    }
    cases
}

fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Runs one case: the kernel [`ops::matmul`] chooses (tuned on this adapter unless tuning is
/// off), and every other kernel tuning considers, the fastest of which is the baseline; for a
/// split-precision case, the tuned split-precision product against the tuned f32 one.
pub fn run_matmul(gpu: &Gpu, case: &MatmulCase, config: &BenchConfig) -> Result<BenchRecord> {
    case.check()?;
    // The operands and the product must fit the adapter: check before drawing gigabytes of
    // host data for them.
    let b_shape = if case.is_mlp() {
        [case.n, case.k]
    } else {
        [case.k, case.n]
    };
    for shape in [[case.m, case.k], b_shape, [case.m, case.n]] {
        Tensor::check_size(gpu, &shape, DType::F32)?;
    }
    let seed = (case.m.wrapping_mul(31))
        .wrapping_add(case.n.wrapping_mul(7))
        .wrapping_add(case.k);
    let mut rng = StdRng::seed_from_u64(0x5eed ^ seed as u64);
    let a_host = random(&mut rng, case.m * case.k);
    let b_host = random(&mut rng, case.k * case.n);
    let bias_host = random(&mut rng, case.n);
    let a = Tensor::from_slice(gpu, &a_host, &[case.m, case.k])?;
    // MLP layers store the weight as [out, in] and multiply by its transpose.
    let b = Tensor::from_slice(gpu, &b_host, &b_shape)?;
    let bias = Tensor::from_slice(gpu, &bias_host, &[case.n])?;
    let spec = |kernel| MatmulSpec {
        trans_b: case.is_mlp(),
        bias: case.is_mlp().then_some(&bias),
        activation: if case.is_mlp() {
            Activation::Relu
        } else {
            Activation::Identity
        },
        kernel,
        ..Default::default()
    };
    let chosen = ops::matmul_kernel(&a, &b, &spec(None))?;
    let measured = match case.precision {
        Precision::F32 => spec(Some(chosen)),
        Precision::SplitF16 => MatmulSpec {
            precision: Precision::SplitF16,
            ..spec(None)
        },
    };

    let result = ops::matmul(&a, &b, &measured)?;
    let got = result.to_vec()?;
    let shape = MatmulShape {
        batch: 1,
        m: case.m,
        n: case.n,
        k: case.k,
        trans_a: false,
        trans_b: case.is_mlp(),
        broadcast_a: false,
        broadcast_b: false,
    };
    let inputs = MatmulInputs {
        a: &a_host,
        b: &b_host,
        bias: case.is_mlp().then_some(&bias_host[..]),
        add: None,
        activation: spec(None).activation,
    };
    let mut entries = vec![
        (0, 0),
        (0, case.n - 1),
        (case.m - 1, 0),
        (case.m - 1, case.n - 1),
    ];
    entries.extend(
        (0..CHECKED_ENTRIES).map(|_| (rng.random_range(0..case.m), rng.random_range(0..case.n))),
    );
    let want: Vec<f64> = entries
        .iter()
        .map(|&(i, j)| reference::matmul_entry(&shape, &inputs, 0, i, j))
        .collect();
    let got: Vec<f32> = entries.iter().map(|&(i, j)| got[i * case.n + j]).collect();
    let max_rel_err = reference::max_rel_err(&got, &want);

    let flops = 2.0 * case.m as f64 * case.n as f64 * case.k as f64;
    let tflops = |ms: f64| flops / (ms * 1e-3) / 1e12;
    let main = measure(gpu, config, || ops::matmul(&a, &b, &measured).map(drop))?;
    let summary = gpu.summary();
    let tuning = if gpu.tuning() {
        "matmul's choice, tuning on"
    } else {
        "matmul's choice, tuning off"
    };
    let epilogue = if case.is_mlp() {
        ", Bᵀ + bias + relu"
    } else {
        ""
    };
    let record = |name: String, baseline: Baseline, variant: String| BenchRecord {
        name,
        shape: vec![case.m, case.n, case.k],
        median_ms: main.median_ms,
        rate: tflops(main.median_ms),
        unit: "TFLOP/s".to_string(),
        max_rel_err,
        ok: max_rel_err <= MAX_REL_ERR,
        baseline: Some(baseline),
        variant,
        samples: main.samples,
        runs_per_sample: main.runs_per_sample,
        timing: main.timing,
        checked: gpu.checked(),
        adapter: summary.adapter.clone(),
        backend: summary.backend.clone(),
    };
    if case.precision == Precision::SplitF16 {
        let kernel = ops::split_f16_kernel(&a, &b, &measured)?;
        let f32_time = measure(gpu, config, || {
            ops::matmul(&a, &b, &spec(Some(chosen))).map(drop)
        })?;
        return Ok(record(
            format!("matmul/{}-split-f16", case.kind),
            Baseline {
                name: format!("f32 kernel {chosen}"),
                rate: tflops(f32_time.median_ms),
                speedup: f32_time.median_ms / main.median_ms,
            },
            format!(
                "split-f16 kernel {} ({tuning}){epilogue}, timed with the split of both \
                 operands (two passes over each) on every call",
                kernel.name()
            ),
        ));
    }
    let mut others = Vec::new();
    for kernel in ops::matmul_candidates(&a, &b, &spec(None))? {
        if kernel == chosen {
            continue;
        }
        let m = measure(gpu, config, || {
            ops::matmul(&a, &b, &spec(Some(kernel))).map(drop)
        })?;
        others.push((kernel, m.median_ms));
    }
    let (other, other_ms) = others
        .iter()
        .copied()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .expect("several tiles");
    let times: Vec<String> = others
        .iter()
        .map(|(kernel, ms)| format!("{kernel} {ms:.3} ms"))
        .collect();
    Ok(record(
        format!("matmul/{}", case.kind),
        Baseline {
            name: format!("kernel {other}, the fastest other"),
            rate: tflops(other_ms),
            speedup: other_ms / main.median_ms,
        },
        format!(
            "kernel {chosen} ({tuning}){epilogue} (others: {})",
            times.join(", ")
        ),
    ))
}
