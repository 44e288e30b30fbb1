//! Isometry of normalised MLPs at initialisation (Joudaki et al., 2023): how the layers
//! X <- LN(act(X W)) of a random MLP pull a batch's Gram matrix towards a multiple of the
//! identity. The isometry of an n x n Gram matrix G is I(G) = det(G)^(1/n) / (tr(G)/n), in
//! (0, 1], 1 exactly for multiples of the identity; the paper predicts that with layer norm the
//! gap -log I shrinks by a factor 2 - beta0 per layer, beta0 = E[x act(x)]^2 / Var(act(x)).

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::quadrature::gaussian_expectation;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::init::standard_normal;
use crate::ops::{self, Activation, MatmulSpec};
use crate::reference::activation_scalar;
use crate::tensor::{DType, Tensor};

/// -log I(G) of a symmetric positive semi-definite `n x n` matrix (row-major), from its
/// Cholesky factor in f64: infinity when G is singular (I = 0).
pub fn neg_log_isometry(gram: &[f64], n: usize) -> f64 {
    let mut l = vec![0.0f64; n * n];
    let mut log_det = 0.0;
    for j in 0..n {
        let mut diag = gram[j * n + j];
        for k in 0..j {
            diag -= l[j * n + k] * l[j * n + k];
        }
        if diag <= 1e-300 * gram[j * n + j].abs().max(1e-300) || !diag.is_finite() || diag <= 0.0 {
            return f64::INFINITY;
        }
        let d = diag.sqrt();
        l[j * n + j] = d;
        log_det += 2.0 * d.ln();
        for i in j + 1..n {
            let mut s = gram[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = s / d;
        }
    }
    let trace: f64 = (0..n).map(|i| gram[i * n + i]).sum();
    -(log_det / n as f64) + (trace / n as f64).ln()
}

/// beta0 = E[x act(x)]^2 / Var(act(x)) for x ~ N(0, 1), by quadrature.
pub fn beta0(act: Activation) -> f64 {
    let f = |x: f64| activation_scalar(act, x);
    let cross = gaussian_expectation(|x| x * f(x));
    let mean = gaussian_expectation(f);
    let var = gaussian_expectation(|x| f(x) * f(x)) - mean * mean;
    cross * cross / var
}

/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct IsometryConfig {
    /// Batch size n (the Gram matrix is n x n).
    pub batch: usize,
    /// Width d.
    pub width: usize,
    /// Layers.
    pub depth: usize,
    /// Independent networks (and inputs) averaged over, run as one batched product.
    pub seeds: usize,
    /// Factors the inputs' top singular value is scaled by.
    pub input_scales: Vec<f64>,
    /// Activations compared.
    pub activations: Vec<Activation>,
}

impl IsometryConfig {
    /// The paper's setting: n = 10, d = 1000, 30 layers, top singular value x10 and x100.
    pub fn paper(seeds: usize) -> Self {
        IsometryConfig {
            batch: 10,
            width: 1000,
            depth: 30,
            seeds,
            input_scales: vec![10.0, 100.0],
            activations: vec![
                Activation::Identity,
                Activation::Relu,
                Activation::Tanh,
                Activation::Gelu,
            ],
        }
    }

    /// A small run for CPU drivers: d = 256, 15 layers.
    pub fn quick() -> Self {
        IsometryConfig {
            width: 256,
            depth: 15,
            seeds: 4,
            ..Self::paper(4)
        }
    }
}

/// One curve: -log I after each layer (index 0 is the input), averaged over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct IsometryCurve {
    /// The activation.
    pub activation: Activation,
    /// Whether each layer normalises.
    pub layernorm: bool,
    /// The factor on the inputs' top singular value.
    pub input_scale: f64,
    /// Mean -log I per depth, 0 (inputs) to `depth`.
    pub neg_log_isometry: Vec<f64>,
    /// Measured contraction of the gap per layer from layer 1 to layer 5 (or the last),
    /// `(gap[1] / gap[5])^(1/4)` per seed, averaged over seeds. It starts after the first
    /// layer because the inputs are not normalised: the first layer norm equalises the rows'
    /// norms, which alone shrinks the gap (2.07 to 1.36 for the identity at scale 10), and that
    /// is not the per-layer contraction the paper predicts (its plot, like ours, starts the
    /// prediction at layer 1). NaN with fewer than 2 layers, or where a seed's gap at either
    /// end is not finite and positive (a singular batch, or isometry reached to f32's rounding).
    pub measured_rate: f64,
    /// Standard error of `measured_rate` across seeds (sample standard deviation over
    /// sqrt(seeds); 0 with one seed).
    pub measured_rate_se: f64,
    /// The predicted 2 - beta0 (with layer norm; reported for both).
    pub predicted_rate: f64,
}

/// Runs every (activation, layer norm, input scale) of `config`; the seeds of one curve run
/// as one batched product per layer.
pub fn run_isometry(gpu: &Gpu, config: &IsometryConfig) -> Result<Vec<IsometryCurve>> {
    let bad = |detail: String| Err(Error::invalid("isometry", detail));
    let (n, d, s) = (config.batch, config.width, config.seeds);
    if n < 2 || d < n {
        return bad(format!(
            "need 2 <= batch <= width, got batch {n} and width {d}"
        ));
    }
    if config.depth == 0 || s == 0 {
        return bad(format!(
            "depth and seeds must be at least 1, got depth {} and seeds {s}",
            config.depth
        ));
    }
    // The seeds run as one batch: their weights and inputs must fit the adapter (checked
    // before drawing them on the host).
    for shape in [[s, d, d], [s, n, d]] {
        Tensor::check_size(gpu, &shape, DType::F32)?;
    }
    let mut curves = Vec::new();
    for &input_scale in &config.input_scales {
        for &activation in &config.activations {
            for layernorm in [true, false] {
                curves.push(curve(gpu, config, activation, layernorm, input_scale)?);
            }
        }
    }
    Ok(curves)
}

/// A Gaussian n x d batch whose top singular value is multiplied by `scale`.
fn low_isometry_input(rng: &mut StdRng, n: usize, d: usize, scale: f64) -> Vec<f32> {
    let g: Vec<f64> = standard_normal(rng, n * d)
        .iter()
        .map(|&v| v as f64)
        .collect();
    // Top right singular vector by power iteration on G^T G.
    let mut v = vec![1.0 / (d as f64).sqrt(); d];
    let mut u = vec![0.0; n];
    let mut sigma = 0.0;
    for _ in 0..200 {
        for i in 0..n {
            u[i] = (0..d).map(|j| g[i * d + j] * v[j]).sum();
        }
        sigma = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        u.iter_mut().for_each(|x| *x /= sigma);
        for j in 0..d {
            v[j] = (0..n).map(|i| g[i * d + j] * u[i]).sum();
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }
    (0..n * d)
        .map(|t| (g[t] + (scale - 1.0) * sigma * u[t / d] * v[t % d]) as f32)
        .collect()
}

fn curve(
    gpu: &Gpu,
    config: &IsometryConfig,
    activation: Activation,
    layernorm: bool,
    input_scale: f64,
) -> Result<IsometryCurve> {
    let (n, d, s) = (config.batch, config.width, config.seeds);
    let mut rng = StdRng::seed_from_u64(0x150 + (input_scale as u64));
    let inputs: Vec<f32> = (0..s)
        .flat_map(|_| low_isometry_input(&mut rng, n, d, input_scale))
        .collect();
    let mut x = Tensor::from_slice(gpu, &inputs, &[s, n, d])?;
    // Per layer, -log I of each seed's batch.
    let mut gaps = vec![gaps_per_seed(&x, n)?];
    let std = 1.0 / (d as f32).sqrt();
    let mut weight_rng = StdRng::seed_from_u64(0x1503);
    for _ in 0..config.depth {
        let w: Vec<f32> = standard_normal(&mut weight_rng, s * d * d)
            .iter()
            .map(|v| v * std)
            .collect();
        let w = Tensor::from_slice(gpu, &w, &[s, d, d])?;
        let y = ops::matmul(
            &x,
            &w,
            &MatmulSpec {
                activation,
                ..Default::default()
            },
        )?;
        x = if layernorm {
            ops::layernorm(&y.reshape(&[s * n, d])?, None, crate::nn::LAYERNORM_EPS)?
                .y
                .reshape(&[s, n, d])?
        } else {
            y
        };
        gaps.push(gaps_per_seed(&x, n)?);
    }
    let last = RATE_LAST_LAYER.min(config.depth);
    let (measured_rate, measured_rate_se) = if last < 2 {
        (f64::NAN, f64::NAN)
    } else {
        contraction_rate(&gaps[1], &gaps[last], last - 1)
    };
    Ok(IsometryCurve {
        activation,
        layernorm,
        input_scale,
        neg_log_isometry: gaps.iter().map(|g| mean_and_se(g).0).collect(),
        measured_rate,
        measured_rate_se,
        predicted_rate: 2.0 - beta0(activation),
    })
}

/// The measured rate runs from layer 1 to this layer.
pub const RATE_LAST_LAYER: usize = 5;

/// The mean per-layer contraction `(first / last)^(1 / layers)` of each seed's gap over
/// `layers` layers, with its standard error; NaN where a seed's gap is not finite and positive
/// at both ends (a singular batch, or a gap that has reached f32's rounding, whose ratio would
/// read as a rate of 0 or infinity).
fn contraction_rate(first: &[f64], last: &[f64], layers: usize) -> (f64, f64) {
    let measurable = |g: f64| g.is_finite() && g > 0.0;
    if !first.iter().chain(last).all(|&g| measurable(g)) {
        return (f64::NAN, f64::NAN);
    }
    let rates: Vec<f64> = first
        .iter()
        .zip(last)
        .map(|(a, b)| (a / b).powf(1.0 / layers as f64))
        .collect();
    mean_and_se(&rates)
}

/// Mean and standard error of the mean (sample standard deviation over sqrt(len)).
fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// -log I of each seed's batch in `x` `[seeds, n, d]`.
fn gaps_per_seed(x: &Tensor, n: usize) -> Result<Vec<f64>> {
    let gram = ops::matmul(
        x,
        x,
        &MatmulSpec {
            trans_b: true,
            ..Default::default()
        },
    )?
    .to_vec()?;
    Ok(gram
        .chunks(n * n)
        .map(|g| neg_log_isometry(&g.iter().map(|&v| v as f64).collect::<Vec<_>>(), n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::contraction_rate;

    #[test]
    fn contraction_rate_is_nan_where_a_gap_is_not_measurable() {
        // 8 -> 1 over three layers contracts by 2 per layer, in both seeds.
        let (rate, se) = contraction_rate(&[8.0, 16.0], &[1.0, 2.0], 3);
        assert!(
            (rate - 2.0).abs() < 1e-12 && se.abs() < 1e-12,
            "{rate} {se}"
        );
        // A gap rounded to 0 or below, or a singular batch's infinite gap, has no rate.
        for last in [0.0, -1e-7, f64::INFINITY] {
            assert!(contraction_rate(&[8.0, 16.0], &[1.0, last], 3).0.is_nan());
        }
        assert!(
            contraction_rate(&[f64::INFINITY, 16.0], &[1.0, 2.0], 3)
                .0
                .is_nan()
        );
    }
}
