use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Baseline, BenchConfig, BenchRecord, MAX_REL_ERR, measure};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::{Mlp, MlpConfig, Optimizer, OptimizerChoice, OptimizerConfig};
use crate::ops::{self, Activation, Loss, Reduction};
use crate::reference;
use crate::tensor::Tensor;

/// Rows of the first batch whose logits are checked against an f64 forward.
const CHECKED_ROWS: usize = 3;

/// One training-step benchmark: `hidden` ReLU layers of `width`, 10 outputs, `batch` rows.
#[derive(Clone, Debug)]
pub struct MlpStepCase {
    /// Rows per step.
    pub batch: usize,
    /// Input and hidden width.
    pub width: usize,
    /// Hidden layers.
    pub hidden: usize,
}

/// The cases of `percept bench mlp-step`: PyTorch's anchor (4 x 1024, batch 4096) and smaller.
pub fn mlp_step_cases(quick: bool) -> Vec<MlpStepCase> {
    let shapes: &[(usize, usize)] = if quick {
        &[(256, 128), (512, 256)]
    } else {
        &[(4096, 1024), (1024, 512), (256, 256)]
    };
    shapes
        .iter()
        .map(|&(batch, width)| MlpStepCase {
            batch,
            width,
            hidden: 4,
        })
        .collect()
}

/// Times one SGD step (forward, cross-entropy, backward, update) and, as the baseline, the
/// forward pass alone; checks a few rows' logits against an f64 forward.
pub fn run_mlp_step(gpu: &Gpu, case: &MlpStepCase, config: &BenchConfig) -> Result<BenchRecord> {
    let mut widths = vec![case.width; case.hidden + 1];
    widths.push(10);
    let mlp = Mlp::new(
        gpu,
        MlpConfig {
            activation: Activation::Relu,
            ..MlpConfig::new(&widths)
        },
    )?;
    let mut optimizer = Optimizer::new(
        mlp.params(),
        OptimizerConfig {
            kind: OptimizerChoice::Sgd,
            lr: 0.01,
            ..OptimizerConfig::default()
        },
    )?;
    let mut rng = StdRng::seed_from_u64(case.batch as u64 ^ case.width as u64);
    let x_host: Vec<f32> = (0..case.batch * case.width)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let labels: Vec<f32> = (0..case.batch)
        .map(|_| rng.random_range(0..10) as f32)
        .collect();
    let x = Tensor::from_slice(gpu, &x_host, &[case.batch, case.width])?;
    let target = Tensor::from_slice(gpu, &labels, &[case.batch])?;

    let (logits, _) = mlp.forward(&x)?;
    let got = logits.narrow(0..CHECKED_ROWS.min(case.batch))?.to_vec()?;
    let want = host_logits(&mlp, &x_host[..CHECKED_ROWS.min(case.batch) * case.width])?;
    let max_rel_err = reference::max_rel_err(&got, &want);

    let step = measure(gpu, config, || {
        let (logits, cache) = mlp.forward(&x)?;
        let out = ops::loss(&logits, &target, Loss::CrossEntropy, Reduction::Mean)?;
        mlp.backward(&cache, &out.grad, false)?;
        optimizer.step(mlp.params())
    })?;
    let forward = measure(gpu, config, || mlp.forward(&x).map(drop))?;
    let params: usize = mlp.params().infos().iter().map(|i| i.len()).sum();
    // As PyTorch's anchor counts: 2 flops per multiply-add, forward plus two backward products.
    let flops = 3.0 * 2.0 * case.batch as f64 * params as f64;
    let summary = gpu.summary();
    Ok(BenchRecord {
        name: "mlp-step".to_string(),
        shape: vec![case.batch, case.width, case.hidden, 10],
        median_ms: step.median_ms,
        rate: flops / (step.median_ms * 1e-3) / 1e12,
        unit: "TFLOP/s".to_string(),
        max_rel_err,
        ok: max_rel_err <= MAX_REL_ERR,
        baseline: Some(Baseline {
            name: "forward only".to_string(),
            rate: flops / 3.0 / (forward.median_ms * 1e-3) / 1e12,
            speedup: forward.median_ms / step.median_ms,
        }),
        variant: "sgd, relu fused in the matmul epilogue".to_string(),
        samples: step.samples,
        runs_per_sample: step.runs_per_sample,
        timing: step.timing,
        checked: gpu.checked(),
        adapter: summary.adapter.clone(),
        backend: summary.backend.clone(),
    })
}

/// The network's logits for `x` rows in f64 from its current parameters.
fn host_logits(mlp: &Mlp, x: &[f32]) -> Result<Vec<f64>> {
    let params = mlp.params().download()?;
    let widths = &mlp.config().widths;
    let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let rows = x.len() / widths[0];
    for layer in 0..widths.len() - 1 {
        let (w, b) = (&params[2 * layer], &params[2 * layer + 1]);
        let (fan_in, fan_out) = (widths[layer], widths[layer + 1]);
        let last = layer + 2 == widths.len();
        h = (0..rows * fan_out)
            .map(|i| {
                let (r, o) = (i / fan_out, i % fan_out);
                let z = b[o] as f64
                    + (0..fan_in)
                        .map(|k| h[r * fan_in + k] * w[o * fan_in + k] as f64)
                        .sum::<f64>();
                if last { z } else { z.max(0.0) }
            })
            .collect();
    }
    Ok(h)
}
