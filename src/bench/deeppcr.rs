use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::{BenchConfig, measure};
use crate::deeppcr::{DeepMlp, NewtonOptions};
use crate::error::Result;
use crate::gpu::{Gpu, TimingSource};
use crate::nn::init::standard_normal;
use crate::ops::{self, Activation};
use crate::reference;
use crate::tensor::Tensor;

/// One point of the DeepPCR sweep: a tanh MLP of `layers` x `width`, `batch` inputs.
#[derive(Clone, Debug)]
pub struct DeepPcrCase {
    /// Depth L.
    pub layers: usize,
    /// Width w.
    pub width: usize,
    /// Inputs per pass.
    pub batch: usize,
}

/// The sweep of `percept bench deeppcr`: L in {16, 64, 256, 1024} and w in {4, 8, 16, 32}
/// (`--quick`: w in {4, 8}), batch 64.
pub fn deeppcr_cases(quick: bool) -> Vec<DeepPcrCase> {
    let widths: &[usize] = if quick { &[4, 8] } else { &[4, 8, 16, 32] };
    let mut cases = Vec::new();
    for &width in widths {
        for layers in [16, 64, 256, 1024] {
            cases.push(DeepPcrCase {
                layers,
                width,
                batch: 64,
            });
        }
    }
    cases
}

/// What one sweep point measured.
#[derive(Clone, Debug, Serialize)]
pub struct DeepPcrRecord {
    /// `deeppcr`.
    pub name: String,
    /// `[layers, width, batch]`.
    pub shape: Vec<usize>,
    /// DeepPCR forward, median ms (with the residual readbacks its Newton loop makes).
    pub median_ms: f64,
    /// Forward speedup over the sequential chain on the same adapter.
    pub rate: f64,
    /// Unit of `rate`.
    pub unit: String,
    /// Sequential forward (L dependent dispatches), median ms.
    pub sequential_forward_ms: f64,
    /// Sequential backward, median ms.
    pub sequential_backward_ms: f64,
    /// DeepPCR backward (one transposed scan), median ms.
    pub deeppcr_backward_ms: f64,
    /// Backward speedup over the sequential chain.
    pub backward_speedup: f64,
    /// Newton steps the forward took.
    pub newton_iterations: usize,
    /// Dependent dispatch levels of the DeepPCR forward (see `NewtonStats`).
    pub sequential_steps: usize,
    /// Those of the sequential forward: L.
    pub sequential_steps_baseline: usize,
    /// Dependent dispatch levels of the DeepPCR backward's solve: the transposed scan's levels,
    /// plus 3 for doubling (which forms the Jacobians and reverses the recurrence and back).
    pub backward_steps: usize,
    /// How the forward's scans were solved (tuned per shape bucket): `doubling`, or
    /// `chunked/{chunk}` or `chunked_registers/{chunk}` with the steps per chunk.
    pub scan: String,
    /// How the backward's transposed scan was solved (a bucket of its own).
    pub backward_scan: String,
    /// The longest chain of dependent steps inside one of the scan's dispatches.
    pub scan_chain: usize,
    /// DeepPCR's states (every layer's output) against the f64 forward: the largest over layers
    /// of the error relative to the layer's largest state (layers whose states have all fallen
    /// below 1e-30, past f32's full precision, are measured on a scale of 1e-30).
    pub max_rel_err: f64,
    /// The same for the sequential pass, for scale: f32 rounding along the chain.
    pub sequential_max_rel_err: f64,
    /// Whether Newton converged without the sequential fallback.
    pub converged: bool,
    /// How times were taken.
    pub timing: TimingSource,
    /// Adapter name.
    pub adapter: String,
    /// Backend name.
    pub backend: String,
}

/// Measures one sweep point on PyTorch's anchor problem (`shared/gpu/torch_anchor.py`): tanh
/// layers with W ~ N(0, 0.81 / w), zero biases, x ~ N(0, 1); Newton's default tolerance.
pub fn run_deeppcr(gpu: &Gpu, case: &DeepPcrCase, config: &BenchConfig) -> Result<DeepPcrRecord> {
    let seed = case.layers as u64;
    let net = DeepMlp::random(
        gpu,
        case.layers,
        case.width,
        Activation::Tanh,
        0.9,
        0.0,
        seed,
    )?;
    // A stream of its own: drawn from the weights' seed, x would repeat W's first entries.
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let x_host = standard_normal(&mut rng, case.batch * case.width);
    let x = Tensor::from_slice(gpu, &x_host, &[case.batch, case.width])?;
    let g = Tensor::from_slice(
        gpu,
        &vec![1.0; case.batch * case.width],
        &[case.batch, case.width],
    )?;
    let options = NewtonOptions::default();

    let sequential = net.forward_sequential(&x)?;
    let (parallel, stats) = net.forward_deeppcr(&x, &options)?;
    // Every layer's output on its own scale: with zero biases the states shrink with depth
    // (about e^-0.14 a layer at w = 16), so an error relative to the largest state overall would
    // pass zeros for every layer past the 70th.
    let f64s = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| v as f64).collect() };
    let want = reference::deep_mlp_states(
        Activation::Tanh,
        &f64s(&net.weights().to_vec()?),
        &f64s(&net.biases().to_vec()?),
        &f64s(&x_host),
        case.width,
    );
    let per_layer = case.batch * case.width;
    let max_rel_err = reference::max_rel_err_per_part(&parallel.states.to_vec()?, &want, per_layer);
    let sequential_max_rel_err =
        reference::max_rel_err_per_part(&sequential.states.to_vec()?, &want, per_layer);

    let seq_fwd = measure(gpu, config, || net.forward_sequential(&x).map(drop))?;
    let par_fwd = measure(gpu, config, || net.forward_deeppcr(&x, &options).map(drop))?;
    let seq_bwd = measure(gpu, config, || {
        net.backward(&sequential, &g, false).map(drop)
    })?;
    let par_bwd = measure(gpu, config, || {
        net.backward(&sequential, &g, true).map(drop)
    })?;
    let scan = stats.scan.unwrap_or(ops::ScanMethod::Doubling);
    let backward_scan = net.backward_scan(&sequential)?;
    let backward_extra = if backward_scan == ops::ScanMethod::Doubling {
        3
    } else {
        0
    };
    let summary = gpu.summary();
    Ok(DeepPcrRecord {
        name: "deeppcr".to_string(),
        shape: vec![case.layers, case.width, case.batch],
        median_ms: par_fwd.median_ms,
        rate: seq_fwd.median_ms / par_fwd.median_ms,
        unit: "x sequential".to_string(),
        sequential_forward_ms: seq_fwd.median_ms,
        sequential_backward_ms: seq_bwd.median_ms,
        deeppcr_backward_ms: par_bwd.median_ms,
        backward_speedup: seq_bwd.median_ms / par_bwd.median_ms,
        newton_iterations: stats.iterations,
        sequential_steps: stats.sequential_steps,
        sequential_steps_baseline: case.layers,
        backward_steps: backward_scan.levels(case.layers) + backward_extra,
        scan: scan.name(),
        backward_scan: backward_scan.name(),
        scan_chain: scan.chain(case.layers),
        max_rel_err,
        sequential_max_rel_err,
        converged: stats.converged,
        timing: par_fwd.timing,
        adapter: summary.adapter.clone(),
        backend: summary.backend.clone(),
    })
}
