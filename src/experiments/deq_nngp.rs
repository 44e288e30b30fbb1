//! Deep equilibrium models as Gaussian processes (Gao et al., NeurIPS 2023, "Wide Neural
//! Networks as Gaussian Processes: Lessons from Deep Equilibrium Models").
//!
//! A DEQ layer of width n maps inputs x (d_in wide) to the fixed point h* = phi(W h* + U x) with
//! W ~ N(0, sigma_w^2 / n), U ~ N(0, sigma_u^2 / d_in) entrywise and no bias, found by
//! iteration from h = 0; a readout v ~ N(0, sigma_w^2 / n) gives the output v . h*. As n grows,
//! the outputs over a set of inputs become Gaussian with the NNGP kernel
//!
//! ```text
//! Sigma1 = sigma_u^2 x x^T / d_in,   Sigma* = sigma_w^2 V_phi(Sigma*) + Sigma1,   K = sigma_w^2 V_phi(Sigma*),
//! ```
//!
//! where V_phi(S)_ij = E[phi(a) phi(b)] for (a, b) ~ N(0, [[S_ii, S_ij], [S_ij, S_jj]]). This
//! module computes V_phi in closed form (ReLU: the arc-cosine kernel; erf: the arcsine kernel)
//! or by two-dimensional Gauss-Hermite quadrature (any [`Activation`]), the kernel fixed point,
//! and a Monte-Carlo estimate of the output covariance from many random DEQs solved at once on
//! the GPU, and compares the two as the paper does: the relative squared error
//! ||C - K||_F^2 / ||K||_F^2 and the smallest eigenvalue of C over sigma_w^2.
//!
//! The empirical covariance is averaged over the readout exactly: for the fixed points H (points
//! x n) of N networks, C = sigma_w^2 / (n N) sum_nets H H^T, which is E_v[(v . h)(v . h')] given
//! each network's H. Sampling one readout per network would add a noise of relative size
//! about 1/sqrt(N) that has nothing to do with the width; the paper's notebook (deqg/deq)
//! histograms the outputs W h* over its 10,000 networks, and its covariance estimator is not
//! in the parts of it we could read, so this choice is ours.

use std::time::Instant;

use nalgebra::{DMatrix, SymmetricEigen};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::deq::{self, FixedPointMap, Method, SolverConfig, Stop};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::init::standard_normal;
use crate::ops::{self, Activation, Distribution, MatmulSpec};
use crate::reference::activation_scalar;
use crate::tensor::{DType, Tensor};

/// The paper's smallest eigenvalues of the empirical covariance over sigma_w^2 at widths
/// 32, 64, ..., 4096 (their x; tanh, then ReLU).
pub const PAPER_WIDTHS: [usize; 8] = [32, 64, 128, 256, 512, 1024, 2048, 4096];
/// tanh row of the paper's table.
pub const PAPER_LAMBDA_MIN_TANH: [f64; 8] = [
    0.0127, 0.0244, 0.0342, 0.0389, 0.0480, 0.0429, 0.0470, 0.0476,
];
/// ReLU row of the paper's table.
pub const PAPER_LAMBDA_MIN_RELU: [f64; 8] = [
    0.0247, 0.0403, 0.0626, 0.0722, 0.0672, 0.0790, 0.0795, 0.0835,
];
/// The paper's relative squared errors at width 1000 over 10,000 networks.
pub const PAPER_REL_SQ_ERROR_1000: [(Activation, f64); 2] =
    [(Activation::Tanh, 5.5e-5), (Activation::Relu, 3.2e-6)];

/// The paper's smallest eigenvalue over sigma_w^2 at `width` for `activation`, if it has one.
pub fn paper_lambda_min(activation: Activation, width: usize) -> Option<f64> {
    let row = match activation {
        Activation::Tanh => &PAPER_LAMBDA_MIN_TANH,
        Activation::Relu => &PAPER_LAMBDA_MIN_RELU,
        _ => return None,
    };
    PAPER_WIDTHS
        .iter()
        .position(|&w| w == width)
        .map(|i| row[i])
}

/// The paper's relative squared error at width 1000, if it has one for `activation`.
pub fn paper_rel_sq_error(activation: Activation) -> Option<f64> {
    PAPER_REL_SQ_ERROR_1000
        .iter()
        .find(|(a, _)| *a == activation)
        .map(|(_, e)| *e)
}

// ---------------------------------------------------------------------------------------------
// Quadrature and dual activations.

/// A Gauss-Hermite rule for expectations under the standard normal: E[f(z)] ~ sum_k w_k
/// f(z_k), exact for polynomials of degree < 2 len. Nodes and weights are the eigenvalues and
/// squared first eigenvector components of the Jacobi matrix of the probabilists' Hermite
/// polynomials (Golub and Welsch, 1969), in f64.
#[derive(Clone, Debug)]
pub struct GaussHermite {
    nodes: Vec<f64>,
    weights: Vec<f64>,
}

impl GaussHermite {
    /// The rule with `points` nodes (at least 1).
    pub fn new(points: usize) -> Self {
        let n = points.max(1);
        let jacobi = DMatrix::from_fn(n, n, |i, j| {
            if i + 1 == j || j + 1 == i {
                (i.max(j) as f64).sqrt()
            } else {
                0.0
            }
        });
        let eigen = SymmetricEigen::new(jacobi);
        let mut pairs: Vec<(f64, f64)> = (0..n)
            .map(|k| (eigen.eigenvalues[k], eigen.eigenvectors[(0, k)].powi(2)))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Symmetrise: the rule is exactly symmetric about 0, the eigensolver only nearly.
        for k in 0..n / 2 {
            let (a, b) = (pairs[k], pairs[n - 1 - k]);
            let node = 0.5 * (b.0 - a.0);
            let weight = 0.5 * (a.1 + b.1);
            pairs[k] = (-node, weight);
            pairs[n - 1 - k] = (node, weight);
        }
        if n % 2 == 1 {
            pairs[n / 2].0 = 0.0;
        }
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        GaussHermite {
            nodes: pairs.iter().map(|p| p.0).collect(),
            weights: pairs.iter().map(|p| p.1 / total).collect(),
        }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a rule has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// E[f(z)], z ~ N(0, 1).
    pub fn expectation(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&z, &w)| w * f(z))
            .sum()
    }

    /// E[f(a, b)] for (a, b) ~ N(0, [[s11, s12], [s12, s22]]): the tensor-product rule after
    /// a Cholesky factorisation, a = l11 z1, b = l21 z1 + l22 z2. A singular covariance
    /// (|correlation| = 1) is fine: l22 is then 0.
    pub fn expectation_2d(&self, s11: f64, s12: f64, s22: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
        let l11 = s11.max(0.0).sqrt();
        let l21 = if l11 > 0.0 { s12 / l11 } else { 0.0 };
        let l22 = (s22 - l21 * l21).max(0.0).sqrt();
        let mut total = 0.0;
        for (&z1, &w1) in self.nodes.iter().zip(&self.weights) {
            let a = l11 * z1;
            let mut inner = 0.0;
            for (&z2, &w2) in self.nodes.iter().zip(&self.weights) {
                inner += w2 * f(a, l21 * z1 + l22 * z2);
            }
            total += w1 * inner;
        }
        total
    }
}

/// The nonlinearity of a kernel map: one of the engine's activations, or erf (which has a
/// closed-form dual but is not a kernel epilogue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phi {
    /// An engine activation; ReLU uses the arc-cosine closed form, the others quadrature.
    Act(Activation),
    /// erf(x), by the arcsine closed form.
    Erf,
}

impl Phi {
    /// phi(x) in f64.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Phi::Act(a) => activation_scalar(a, x),
            Phi::Erf => libm::erf(x),
        }
    }
}

/// E[relu(a) relu(b)] for (a, b) ~ N(0, [[s11, s12], [s12, s22]]): the arc-cosine kernel of
/// degree 1 (Cho and Saul, 2009), sqrt(s11 s22) (sin t + (pi - t) cos t) / (2 pi) with
/// cos t the correlation.
pub fn v_relu(s11: f64, s12: f64, s22: f64) -> f64 {
    let norm = (s11 * s22).max(0.0).sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    let c = (s12 / norm).clamp(-1.0, 1.0);
    let t = c.acos();
    norm * ((1.0 - c * c).max(0.0).sqrt() + (std::f64::consts::PI - t) * c)
        / (2.0 * std::f64::consts::PI)
}

/// E[erf(a) erf(b)] for (a, b) ~ N(0, [[s11, s12], [s12, s22]]): (2 / pi) arcsin(2 s12 /
/// sqrt((1 + 2 s11)(1 + 2 s22))) (Williams, 1998).
pub fn v_erf(s11: f64, s12: f64, s22: f64) -> f64 {
    let arg = 2.0 * s12 / ((1.0 + 2.0 * s11) * (1.0 + 2.0 * s22)).sqrt();
    2.0 / std::f64::consts::PI * arg.clamp(-1.0, 1.0).asin()
}

/// E[phi(a) phi(b)] for one pair: closed form for ReLU and erf, else `rule`.
pub fn v_phi_pair(phi: Phi, rule: &GaussHermite, s11: f64, s12: f64, s22: f64) -> f64 {
    match phi {
        Phi::Act(Activation::Relu) => v_relu(s11, s12, s22),
        Phi::Erf => v_erf(s11, s12, s22),
        Phi::Act(_) => rule.expectation_2d(s11, s12, s22, |a, b| phi.eval(a) * phi.eval(b)),
    }
}

/// V_phi(S) of a symmetric `p x p` covariance (row-major): entry (i, j) is E[phi(a) phi(b)]
/// under the 2 x 2 marginal of entries i and j; the diagonal by the one-dimensional rule
/// (or the closed form).
pub fn v_phi(phi: Phi, rule: &GaussHermite, s: &[f64], p: usize) -> Vec<f64> {
    assert_eq!(s.len(), p * p, "v_phi: covariance is not {p} x {p}");
    let mut out = vec![0.0; p * p];
    for i in 0..p {
        let sii = s[i * p + i];
        out[i * p + i] = match phi {
            Phi::Act(Activation::Relu) | Phi::Erf => v_phi_pair(phi, rule, sii, sii, sii),
            Phi::Act(_) => {
                let sd = sii.max(0.0).sqrt();
                rule.expectation(|z| phi.eval(sd * z).powi(2))
            }
        };
        for j in 0..i {
            let v = v_phi_pair(phi, rule, sii, s[i * p + j], s[j * p + j]);
            out[i * p + j] = v;
            out[j * p + i] = v;
        }
    }
    out
}

/// The NNGP kernel of a DEQ on a set of inputs.
#[derive(Clone, Debug, Serialize)]
pub struct NngpKernel {
    /// Number of inputs p (the matrices are p x p, row-major).
    pub points: usize,
    /// Sigma1 = sigma_u^2 x x^T / d_in.
    pub sigma1: Vec<f64>,
    /// The fixed point Sigma* of Sigma = sigma_w^2 V_phi(Sigma) + Sigma1: the covariance of the
    /// pre-activations W h* + U x.
    pub sigma_star: Vec<f64>,
    /// The output kernel K = sigma_w^2 V_phi(Sigma*).
    pub k: Vec<f64>,
    /// Iterations of the kernel map from Sigma1 until successive iterates agreed to 1e-13.
    pub iterations: usize,
    /// The last change, max |Sigma_{t+1} - Sigma_t|.
    pub last_change: f64,
}

/// Iterates Sigma <- sigma_w^2 V_phi(Sigma) + Sigma1 from Sigma1 to its fixed point (to 1e-13
/// relative to the largest entry, at most 10,000 iterations) for inputs `x` (`p x d_in`,
/// row-major); fails if the map does not settle (sigma_w^2 times phi's Lipschitz constant
/// squared above 1, say).
pub fn nngp_kernel(
    phi: Phi,
    rule: &GaussHermite,
    x: &[f64],
    p: usize,
    d_in: usize,
    sigma_w: f64,
    sigma_u: f64,
) -> Result<NngpKernel> {
    if x.len() != p * d_in || p == 0 || d_in == 0 {
        return Err(Error::shape(
            "nngp_kernel",
            format!("x has {} values, expected {p} x {d_in} > 0", x.len()),
        ));
    }
    let su2 = sigma_u * sigma_u;
    let sw2 = sigma_w * sigma_w;
    let sigma1: Vec<f64> = (0..p * p)
        .map(|t| {
            let (i, j) = (t / p, t % p);
            su2 * (0..d_in)
                .map(|k| x[i * d_in + k] * x[j * d_in + k])
                .sum::<f64>()
                / d_in as f64
        })
        .collect();
    let mut sigma = sigma1.clone();
    let mut change = f64::INFINITY;
    for iteration in 1..=10_000 {
        let v = v_phi(phi, rule, &sigma, p);
        let next: Vec<f64> = v.iter().zip(&sigma1).map(|(v, s)| sw2 * v + s).collect();
        let scale = next.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        change = next
            .iter()
            .zip(&sigma)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        if !change.is_finite() {
            break;
        }
        sigma = next;
        if change <= 1e-13 * scale {
            let k = v_phi(phi, rule, &sigma, p)
                .iter()
                .map(|v| sw2 * v)
                .collect();
            return Ok(NngpKernel {
                points: p,
                sigma1,
                sigma_star: sigma,
                k,
                iterations: iteration,
                last_change: change,
            });
        }
    }
    Err(Error::invalid(
        "nngp_kernel",
        format!(
            "the kernel map of {phi:?} with sigma_w = {sigma_w} did not settle (last change {change:e})"
        ),
    ))
}

/// Eigenvalues of a symmetric `p x p` matrix (row-major), ascending.
pub fn symmetric_eigenvalues(m: &[f64], p: usize) -> Vec<f64> {
    let matrix = DMatrix::from_fn(p, p, |i, j| 0.5 * (m[i * p + j] + m[j * p + i]));
    let mut values: Vec<f64> = SymmetricEigen::new(matrix)
        .eigenvalues
        .iter()
        .copied()
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

/// ||a - b||_F^2 / ||b||_F^2.
pub fn rel_sq_error(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    num / den
}

/// The least-squares slope of ln y against ln x over the points with positive finite values;
/// `None` with fewer than two.
pub fn log_log_slope(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if logs.len() < 2 {
        return None;
    }
    let n = logs.len() as f64;
    let (mx, my) = logs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxy: f64 = logs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = logs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

// ---------------------------------------------------------------------------------------------
// Monte Carlo on the GPU.

/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct DeqNngpConfig {
    /// Activations (each must be an engine activation; the paper's are tanh and ReLU).
    pub activations: Vec<Activation>,
    /// Widths n.
    pub widths: Vec<usize>,
    /// Networks per width, before the work cap.
    pub networks: usize,
    /// Cap on networks x n^2 (the weights drawn, and the work, per width): wide layers get
    /// fewer networks, never fewer than `groups`. `None`: no cap.
    pub max_weights_per_width: Option<u64>,
    /// Inputs p (rows of x).
    pub points: usize,
    /// Input dimension d_in.
    pub d_in: usize,
    /// Standard deviation factor of W (the entries have variance sigma_w^2 / n).
    pub sigma_w: f64,
    /// Standard deviation factor of U (variance sigma_u^2 / d_in).
    pub sigma_u: f64,
    /// Absolute residual tolerance ||f(h) - h|| per row (one input of one network).
    pub tol: f32,
    /// Iteration cap of the fixed-point solve.
    pub max_iter: usize,
    /// Iterations between residual checks (each a readback).
    pub check_every: usize,
    /// Groups the networks are split into for the jackknife standard errors.
    pub groups: usize,
    /// Gauss-Hermite nodes per dimension for the kernel of activations without closed form.
    pub quadrature_points: usize,
    /// Seed of x and of every network's weights.
    pub seed: u64,
}

impl DeqNngpConfig {
    /// The paper's run: tanh and ReLU, widths 32 .. 4096, 10,000 networks (capped at
    /// 10,000 x 1000^2 weights per width, so 2384 at width 2048 and 596 at 4096), x of 10 inputs
    /// in 10 dimensions, sigma_w = 0.6, sigma_u = 1, tolerance 1e-4, at most 100 iterations.
    pub fn paper() -> Self {
        DeqNngpConfig {
            activations: vec![Activation::Tanh, Activation::Relu],
            widths: PAPER_WIDTHS.to_vec(),
            networks: 10_000,
            max_weights_per_width: Some(10_000 * 1000 * 1000),
            points: 10,
            d_in: 10,
            sigma_w: 0.6,
            sigma_u: 1.0,
            tol: 1e-4,
            max_iter: 100,
            check_every: 5,
            groups: 10,
            quadrature_points: 96,
            seed: 0,
        }
    }

    /// A run for CPU drivers: widths 32 .. 256, 400 networks each.
    pub fn quick() -> Self {
        DeqNngpConfig {
            widths: vec![32, 64, 128, 256],
            networks: 400,
            ..Self::paper()
        }
    }

    /// Networks drawn at `width`.
    pub fn networks_at(&self, width: usize) -> usize {
        let capped = match self.max_weights_per_width {
            Some(cap) => (cap / (width as u64).saturating_mul(width as u64).max(1)) as usize,
            None => usize::MAX,
        };
        self.networks.min(capped).max(self.groups.max(1))
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::invalid("deq_nngp", what));
        if self.points == 0 || self.d_in == 0 || self.widths.contains(&0) {
            return bad(format!(
                "points, d_in and every width must be at least 1, got {} points, d_in {} and \
                 widths {:?}",
                self.points, self.d_in, self.widths
            ));
        }
        if self.groups < 2 || self.networks < self.groups {
            return bad(format!(
                "the jackknife needs at least 2 groups and a network per group: groups {}, \
                 networks {} (give --networks {} or more)",
                self.groups,
                self.networks,
                self.groups.max(2)
            ));
        }
        if self.tol.is_nan() || self.tol <= 0.0 || self.max_iter == 0 || self.check_every == 0 {
            return bad(format!(
                "tol, max_iter and check_every must be positive, got {}, {} and {}",
                self.tol, self.max_iter, self.check_every
            ));
        }
        if !(self.sigma_w > 0.0 && self.sigma_u > 0.0) {
            return bad(format!(
                "sigma_w and sigma_u must be positive, got {} and {}",
                self.sigma_w, self.sigma_u
            ));
        }
        Ok(())
    }
}

/// The inputs x (`points x d_in`, row-major): standard normal draws from `seed`, as f32 (the
/// kernel uses the same values in f64).
pub fn inputs(config: &DeqNngpConfig) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x0dec_0de5);
    standard_normal(&mut rng, config.points * config.d_in)
}

/// One width's Monte-Carlo estimate.
#[derive(Clone, Debug, Serialize)]
pub struct WidthResult {
    /// Width n.
    pub width: usize,
    /// Networks averaged over.
    pub networks: usize,
    /// ||C - K||_F^2 / ||K||_F^2.
    pub rel_sq_error: f64,
    /// Its standard error from sampling: the delete-one-group jackknife over `groups` groups.
    pub rel_sq_error_se: f64,
    /// The part of `rel_sq_error` that sampling alone contributes at this many networks,
    /// E||C - E C||_F^2 / ||K||_F^2, estimated from the spread of the group means: what is left
    /// above it is the finite-width bias.
    pub sampling_floor: f64,
    /// lambda_min(C) / sigma_w^2.
    pub lambda_min: f64,
    /// Its jackknife standard error.
    pub lambda_min_se: f64,
    /// The smallest eigenvalue of each network's own kernel sigma_w^2 / n H H^T, over
    /// sigma_w^2, averaged over networks. One network's n units are n samples of its
    /// pre-readout features, so at finite width this sits below lambda_min(K) as the smallest
    /// eigenvalue of a sample covariance does; it is the quantity whose fall at small widths
    /// resembles the paper's table.
    pub per_network_lambda_min: f64,
    /// The standard deviation of that per-network value across networks (its standard error
    /// is this over sqrt(networks)).
    pub per_network_lambda_min_sd: f64,
    /// The paper's lambda_min / sigma_w^2 at this width (their x), if in their table.
    pub paper_lambda_min: Option<f64>,
    /// Solver iterations, averaged over networks (each chunk of networks counts the iterations
    /// until all of its rows met the tolerance, checked every `check_every`).
    pub mean_iterations: f64,
    /// Rows (one input of one network) that reached the tolerance.
    pub converged_rows: usize,
    /// All rows: networks x points.
    pub rows: usize,
    /// The empirical covariance C (p x p, row-major).
    pub covariance: Vec<f64>,
    /// Networks per GPU batch (bounded by the storage-binding limit).
    pub chunk: usize,
    /// Wall time of this width.
    pub seconds: f64,
}

/// One activation's report.
#[derive(Clone, Debug, Serialize)]
pub struct ActivationReport {
    /// The activation.
    pub activation: Activation,
    /// The NNGP kernel on this run's x.
    pub kernel: NngpKernel,
    /// lambda_min(K) / sigma_w^2: the infinite-width, infinite-sample limit of `lambda_min`.
    pub analytic_lambda_min: f64,
    /// Per width.
    pub widths: Vec<WidthResult>,
    /// Least-squares slope of ln(rel_sq_error) against ln(width) (the paper: about -1).
    pub error_slope: Option<f64>,
    /// The same for rel_sq_error - sampling_floor (the finite-width part), fitted only to the
    /// widths where that difference exceeds [`RESOLVED_SE`] jackknife errors of the error;
    /// `None` ("not resolved") with fewer than two such widths: a slope through differences
    /// inside their errors (or through the positive ones only) would be a slope of noise.
    pub bias_slope: Option<f64>,
    /// The widths whose finite-width part was resolved (the points of `bias_slope`).
    pub bias_resolved_widths: Vec<usize>,
    /// The paper's relative squared error at width 1000 over 10,000 networks.
    pub paper_rel_sq_error_1000: Option<f64>,
}

/// A finite-width part (error - sampling floor) counts as resolved above this many jackknife
/// errors of the error.
pub const RESOLVED_SE: f64 = 2.0;

/// The log-log slope of `(width, value, standard error)` over the widths whose value exceeds
/// [`RESOLVED_SE`] standard errors, and those widths; `None` with fewer than two.
pub fn resolved_slope(points: &[(usize, f64, f64)]) -> (Option<f64>, Vec<usize>) {
    let resolved: Vec<&(usize, f64, f64)> = points
        .iter()
        .filter(|(_, v, se)| *v > RESOLVED_SE * se)
        .collect();
    let logs: Vec<(f64, f64)> = resolved.iter().map(|(w, v, _)| (*w as f64, *v)).collect();
    (
        log_log_slope(&logs),
        resolved.iter().map(|(w, _, _)| *w).collect(),
    )
}

/// The whole experiment.
#[derive(Clone, Debug, Serialize)]
pub struct DeqNngpReport {
    /// Settings.
    pub config: DeqNngpConfig,
    /// The inputs (points x d_in, row-major).
    pub x: Vec<f32>,
    /// The adapter.
    pub adapter: String,
    /// Per activation.
    pub activations: Vec<ActivationReport>,
}

/// Runs the experiment: for each activation the kernel, then for each width the Monte-Carlo
/// estimate; `progress` hears about each width as it finishes.
pub fn run_deq_nngp(
    gpu: &Gpu,
    config: &DeqNngpConfig,
    mut progress: impl FnMut(Activation, &WidthResult),
) -> Result<DeqNngpReport> {
    config.validate()?;
    let x = inputs(config);
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let rule = GaussHermite::new(config.quadrature_points);
    let mut activations = Vec::new();
    for (a, &activation) in config.activations.iter().enumerate() {
        let kernel = nngp_kernel(
            Phi::Act(activation),
            &rule,
            &x64,
            config.points,
            config.d_in,
            config.sigma_w,
            config.sigma_u,
        )?;
        let sw2 = config.sigma_w * config.sigma_w;
        let analytic_lambda_min = symmetric_eigenvalues(&kernel.k, config.points)[0] / sw2;
        let mut widths = Vec::new();
        for &width in &config.widths {
            let seed = mix(config.seed, a as u64, width as u64);
            let r = monte_carlo(gpu, config, activation, width, &x, &kernel.k, seed)?;
            progress(activation, &r);
            widths.push(r);
        }
        let points: Vec<(f64, f64)> = widths
            .iter()
            .map(|w| (w.width as f64, w.rel_sq_error))
            .collect();
        let excess: Vec<(usize, f64, f64)> = widths
            .iter()
            .map(|w| {
                (
                    w.width,
                    w.rel_sq_error - w.sampling_floor,
                    w.rel_sq_error_se,
                )
            })
            .collect();
        let (bias_slope, bias_resolved_widths) = resolved_slope(&excess);
        activations.push(ActivationReport {
            activation,
            analytic_lambda_min,
            error_slope: log_log_slope(&points),
            bias_slope,
            bias_resolved_widths,
            paper_rel_sq_error_1000: paper_rel_sq_error(activation),
            kernel,
            widths,
        });
    }
    Ok(DeqNngpReport {
        config: config.clone(),
        x,
        adapter: gpu.summary().adapter.clone(),
        activations,
    })
}

/// SplitMix64 of the seed, the activation's index and the width: independent streams per
/// (activation, width); W and U then take streams `s` and `s + 1`.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(b.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & !1
}

/// One batch of DEQs: state `[nets * points, n]` viewed as `[nets, points, n]`, one weight
/// matrix per network, the input injection x U^T precomputed.
pub struct DeqBatch {
    w: Tensor,
    injection: Tensor,
    activation: Activation,
    nets: usize,
    points: usize,
    width: usize,
}

impl DeqBatch {
    /// Networks `first .. first + nets` of the streams `seed` (W, variance sigma_w^2 / n) and
    /// `seed + 1` (U, variance sigma_u^2 / d_in) on inputs `x` (`[points, d_in]` on the GPU).
    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        x: &Tensor,
        activation: Activation,
        width: usize,
        first: usize,
        nets: usize,
        sigma_w: f64,
        sigma_u: f64,
        seed: u64,
    ) -> Result<DeqBatch> {
        let gpu = x.gpu();
        let (points, d_in) = (x.shape()[0], x.shape()[1]);
        let w = Tensor::uninit(gpu, &[nets, width, width], DType::F32)?;
        let w_std = (sigma_w / (width as f64).sqrt()) as f32;
        ops::random_fill(
            &w,
            Distribution::Normal {
                mean: 0.0,
                std: w_std,
            },
            seed,
            (first * width * width) as u64,
        )?;
        let u = Tensor::uninit(gpu, &[nets, width, d_in], DType::F32)?;
        let u_std = (sigma_u / (d_in as f64).sqrt()) as f32;
        ops::random_fill(
            &u,
            Distribution::Normal {
                mean: 0.0,
                std: u_std,
            },
            seed + 1,
            (first * width * d_in) as u64,
        )?;
        let injection = ops::matmul(
            x,
            &u,
            &MatmulSpec {
                trans_b: true,
                ..Default::default()
            },
        )?;
        Ok(DeqBatch {
            w,
            injection,
            activation,
            nets,
            points,
            width,
        })
    }
}

impl FixedPointMap for DeqBatch {
    fn gpu(&self) -> &Gpu {
        self.w.gpu()
    }

    /// `[nets * points, width]`: each row is one input of one network.
    fn shape(&self) -> [usize; 2] {
        [self.nets * self.points, self.width]
    }

    /// out = act(z W^T + x U^T), per network: one batched matmul with the injection added in
    /// its epilogue.
    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
        let shape = [self.nets, self.points, self.width];
        ops::matmul_into(
            &z.reshape(&shape)?,
            &self.w,
            &MatmulSpec {
                trans_b: true,
                add: Some(&self.injection),
                activation: self.activation,
                ..Default::default()
            },
            &out.reshape(&shape)?,
        )
    }
}

/// Networks per batch at `width`, on `points` inputs of `d_in` dimensions: each of a batch's
/// buffers (the weights W and U, the injection and the fixed-point states, the Gram matrices)
/// must fit one storage binding (and stay under 1 GiB, to leave memory for the rest).
pub fn chunk_networks(
    gpu: &Gpu,
    width: usize,
    points: usize,
    d_in: usize,
    networks: usize,
) -> Result<usize> {
    let limits = gpu.limits();
    let budget = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(1 << 30);
    let per_net = [
        width.checked_mul(width),
        width.checked_mul(d_in),
        width.checked_mul(points),
        points.checked_mul(points),
        points.checked_mul(crate::deq::STATE_WORDS),
    ]
    .into_iter()
    .try_fold(0u64, |max, floats| Some(max.max(floats? as u64)))
    .and_then(|floats| floats.checked_mul(4))
    .ok_or_else(|| {
        Error::invalid(
            "deq_nngp",
            format!("width {width} on {points} inputs overflows one network's buffer sizes"),
        )
    })?;
    // The batched products launch one workgroup layer per network.
    let chunk = ((budget / per_net.max(1)) as usize)
        .min(limits.max_compute_workgroups_per_dimension as usize);
    if chunk == 0 {
        return Err(Error::Limit {
            what: format!(
                "one network of width {width} (a {width} x {width} weight matrix, its states on \
                 {points} inputs)"
            ),
            requested: per_net,
            limit: budget,
            limit_name: "max_storage_buffer_binding_size",
        });
    }
    Ok(chunk.min(networks).max(1))
}

fn monte_carlo(
    gpu: &Gpu,
    config: &DeqNngpConfig,
    activation: Activation,
    width: usize,
    x: &[f32],
    k: &[f64],
    seed: u64,
) -> Result<WidthResult> {
    let start = Instant::now();
    let p = config.points;
    let networks = config.networks_at(width);
    let groups = config.groups;
    let chunk = chunk_networks(gpu, width, p, config.d_in, networks)?;
    let x_gpu = Tensor::from_slice(gpu, x, &[p, config.d_in])?;
    // Per group: the sum of H H^T over its networks, and its network count.
    let mut group_sums = vec![vec![0.0f64; p * p]; groups];
    let mut group_counts = vec![0usize; groups];
    let mut iterations = 0.0;
    let mut converged_rows = 0;
    let (mut own_sum, mut own_sq) = (0.0f64, 0.0f64);
    let solver = SolverConfig {
        method: Method::FixedPoint { damping: 1.0 },
        tol: config.tol,
        stop: Stop::Absolute,
        max_iter: config.max_iter,
        check_every: config.check_every,
        accept_unconverged: true,
    };
    let mut first = 0;
    while first < networks {
        let nets = chunk.min(networks - first);
        let batch = DeqBatch::draw(
            &x_gpu,
            activation,
            width,
            first,
            nets,
            config.sigma_w,
            config.sigma_u,
            seed,
        )?;
        let solution = deq::solve(&batch, None, &solver)?;
        iterations += (solution.stats.iterations * nets) as f64;
        converged_rows += solution.stats.converged_rows;
        let h = solution.z.reshape(&[nets, p, width])?;
        let gram = ops::matmul(
            &h,
            &h,
            &MatmulSpec {
                trans_b: true,
                ..Default::default()
            },
        )?
        .to_vec()?;
        for (j, g) in gram.chunks(p * p).enumerate() {
            let group = (first + j) * groups / networks;
            group_counts[group] += 1;
            for (acc, &v) in group_sums[group].iter_mut().zip(g) {
                *acc += v as f64;
            }
            let g64: Vec<f64> = g.iter().map(|&v| v as f64 / width as f64).collect();
            let own = symmetric_eigenvalues(&g64, p)[0];
            own_sum += own;
            own_sq += own * own;
        }
        first += nets;
    }
    let scale = config.sigma_w * config.sigma_w / width as f64;
    let covariance_of = |sum: &[f64], count: usize| -> Vec<f64> {
        sum.iter().map(|v| v * scale / count as f64).collect()
    };
    let total_sum: Vec<f64> = (0..p * p)
        .map(|t| group_sums.iter().map(|g| g[t]).sum())
        .collect();
    let covariance = covariance_of(&total_sum, networks);
    let sw2 = config.sigma_w * config.sigma_w;
    let lambda = |c: &[f64]| symmetric_eigenvalues(c, p)[0] / sw2;
    // Delete-one-group jackknife.
    let leave_out: Vec<Vec<f64>> = (0..groups)
        .map(|g| {
            let sum: Vec<f64> = total_sum
                .iter()
                .zip(&group_sums[g])
                .map(|(t, s)| t - s)
                .collect();
            covariance_of(&sum, networks - group_counts[g])
        })
        .collect();
    let jackknife = |stat: &dyn Fn(&[f64]) -> f64| -> f64 {
        let values: Vec<f64> = leave_out.iter().map(|c| stat(c)).collect();
        let mean = values.iter().sum::<f64>() / groups as f64;
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        ((groups as f64 - 1.0) / groups as f64 * ss).sqrt()
    };
    let k_norm2: f64 = k.iter().map(|v| v * v).sum();
    // Sampling floor: the variance of the full mean from the spread of the group means,
    // sum_g n_g ||C_g - C||^2 / ((R - 1) N), over ||K||^2.
    let floor: f64 = (0..groups)
        .map(|g| {
            let cg = covariance_of(&group_sums[g], group_counts[g]);
            group_counts[g] as f64
                * cg.iter()
                    .zip(&covariance)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
        })
        .sum::<f64>()
        / ((groups as f64 - 1.0) * networks as f64)
        / k_norm2;
    Ok(WidthResult {
        width,
        networks,
        rel_sq_error: rel_sq_error(&covariance, k),
        rel_sq_error_se: jackknife(&|c| rel_sq_error(c, k)),
        sampling_floor: floor,
        lambda_min: lambda(&covariance),
        lambda_min_se: jackknife(&lambda),
        per_network_lambda_min: own_sum / networks as f64,
        per_network_lambda_min_sd: ((own_sq - own_sum * own_sum / networks as f64).max(0.0)
            / (networks as f64 - 1.0).max(1.0))
        .sqrt(),
        paper_lambda_min: paper_lambda_min(activation, width),
        mean_iterations: iterations / networks as f64,
        converged_rows,
        rows: networks * p,
        covariance,
        chunk,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_hermite_integrates_normal_moments() {
        let rule = GaussHermite::new(20);
        assert!((rule.expectation(|_| 1.0) - 1.0).abs() < 1e-14);
        assert!((rule.expectation(|z| z * z) - 1.0).abs() < 1e-13);
        assert!((rule.expectation(|z| z.powi(4)) - 3.0).abs() < 1e-12);
        assert!((rule.expectation(|z| z.powi(10)) - 945.0).abs() < 1e-9);
        assert!(rule.expectation(|z| z.powi(3)).abs() < 1e-13);
        // E[ab] and E[a^2 b^2] = s11 s22 + 2 s12^2 under a correlated pair.
        let (s11, s12, s22) = (2.0, -0.7, 0.5);
        assert!((rule.expectation_2d(s11, s12, s22, |a, b| a * b) - s12).abs() < 1e-13);
        let want = s11 * s22 + 2.0 * s12 * s12;
        assert!((rule.expectation_2d(s11, s12, s22, |a, b| a * a * b * b) - want).abs() < 1e-12);
    }

    #[test]
    fn log_log_slope_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [32.0, 64.0, 128.0, 256.0]
            .iter()
            .map(|&n: &f64| (n, 3.0 * n.powf(-1.3)))
            .collect();
        assert!((log_log_slope(&pts).unwrap() + 1.3).abs() < 1e-12);
        assert_eq!(log_log_slope(&pts[..1]), None);
    }

    #[test]
    fn slopes_only_through_resolved_points() {
        // The quick run's tanh differences (error - floor, jackknife error): none resolved.
        let noise = [
            (32, -1.0e-4, 3.3e-4),
            (64, 4.5e-5, 1.5e-4),
            (128, 3.0e-6, 1.0e-4),
            (256, 2.0e-6, 4.0e-5),
        ];
        assert_eq!(resolved_slope(&noise), (None, vec![]));
        // One resolved point is not a slope.
        let one = [(32, 1.0e-3, 1.0e-4), (64, 1.0e-4, 1.0e-4)];
        assert_eq!(resolved_slope(&one), (None, vec![32]));
        // A power law well above its errors, with an unresolved width left out.
        let law: Vec<(usize, f64, f64)> = [32usize, 64, 128, 256]
            .iter()
            .map(|&n| (n, (n as f64).powf(-2.0), 0.1 * (n as f64).powf(-2.0)))
            .chain([(512, 1e-7, 1e-6)])
            .collect();
        let (slope, widths) = resolved_slope(&law);
        assert!((slope.unwrap() + 2.0).abs() < 1e-12);
        assert_eq!(widths, vec![32, 64, 128, 256]);
    }

    #[test]
    fn networks_are_capped_by_the_work_budget() {
        let c = DeqNngpConfig::paper();
        assert_eq!(c.networks_at(1000), 10_000);
        assert_eq!(c.networks_at(1024), 9536);
        assert_eq!(c.networks_at(4096), 596);
        assert_eq!(DeqNngpConfig::quick().networks_at(256), 400);
    }
}
