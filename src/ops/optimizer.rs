//! One optimizer step over flat parameter and gradient buffers (`shaders/optimizer.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::Tensor;

const SOURCES: &[&str] = &[include_str!("../../shaders/optimizer.wgsl")];
const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// The update rule, as PyTorch's optimizers define it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// `torch.optim.SGD` with dampening 0.
    Sgd {
        /// Momentum factor (0 for plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.Adam` (L2 weight decay) or, with `decoupled`, `torch.optim.AdamW`.
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the denominator.
        eps: f32,
        /// Decoupled weight decay (AdamW).
        decoupled: bool,
    },
}

/// The per-step settings of [`optimizer_step`].
#[derive(Clone, Copy, Debug)]
pub struct OptimizerStep {
    /// The rule.
    pub kind: OptimizerKind,
    /// Learning rate for this step.
    pub lr: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// Clip gradients to this global L2 norm; 0 disables clipping.
    pub max_grad_norm: f32,
    /// 1-based step count (Adam's bias correction).
    pub step: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    lr: f32,
    weight_decay: f32,
    max_norm: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bias_correction1: f32,
    bias_correction2: f32,
    _pad: [u32; 2],
}

/// Updates `weights` in place from `grads`, with optimizer state `state1` (momentum or Adam's
/// m) and `state2` (Adam's v; unused by SGD). `grad_norm_sq` (shape `[1]`) holds Σ g², read
/// on the GPU when clipping. All of `weights`, `grads`, `state1`, `state2` have one shape.
pub fn optimizer_step(
    step: &OptimizerStep,
    weights: &Tensor,
    grads: &Tensor,
    state1: &Tensor,
    state2: &Tensor,
    grad_norm_sq: &Tensor,
) -> Result<()> {
    const OP: &str = "optimizer_step";
    for t in [grads, state1, state2, grad_norm_sq] {
        check_input(OP, weights, t)?;
    }
    check_input(OP, weights, weights)?;
    for (name, t) in [("grads", grads), ("state1", state1), ("state2", state2)] {
        if t.shape() != weights.shape() {
            return Err(Error::shape(
                OP,
                format!(
                    "{name} has shape {:?}, the weights {:?}",
                    t.shape(),
                    weights.shape()
                ),
            ));
        }
    }
    if grad_norm_sq.len() != 1 {
        return Err(Error::shape(
            OP,
            format!(
                "grad_norm_sq must hold one value, has shape {:?}",
                grad_norm_sq.shape()
            ),
        ));
    }
    let hyper = [step.lr, step.weight_decay, step.max_grad_norm];
    if hyper.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(Error::invalid(
            OP,
            format!("lr, weight decay and max grad norm must be finite and >= 0, got {hyper:?}"),
        ));
    }
    let decay_ok = |v: f32| (0.0..1.0).contains(&v);
    let bad = match step.kind {
        OptimizerKind::Sgd { momentum, .. } if !decay_ok(momentum) => {
            Some(format!("momentum must be in [0, 1), got {momentum}"))
        }
        OptimizerKind::Adam {
            beta1, beta2, eps, ..
        } if !(decay_ok(beta1) && decay_ok(beta2) && eps.is_finite() && eps >= 0.0) => {
            Some(format!(
                "beta1 and beta2 must be in [0, 1) (a decay of 1 leaves the bias correction 0) \
                 and eps finite and >= 0, got {beta1}, {beta2} and {eps}"
            ))
        }
        _ => None,
    };
    if let Some(detail) = bad {
        return Err(Error::invalid(OP, detail));
    }
    // The kernel updates weights and the state the rule keeps in place, and reads the rest: two
    // updated operands must not overlap, and a read one may not share a buffer with any state
    // operand, used or not, since all are bound for writing (wgpu refuses a buffer bound both
    // ways in one dispatch, and the refusal would fail the whole pending submission).
    let (state1_used, state2_used) = match step.kind {
        OptimizerKind::Sgd { momentum, .. } => (momentum > 0.0, false),
        OptimizerKind::Adam { .. } => (true, true),
    };
    let operands = [
        ("weights", weights, true, true),
        ("grads", grads, false, true),
        ("state1", state1, true, state1_used),
        ("state2", state2, true, state2_used),
        ("grad_norm_sq", grad_norm_sq, false, true),
    ];
    for (i, &(a, ta, writes_a, used_a)) in operands.iter().enumerate() {
        for &(b, tb, writes_b, used_b) in &operands[i + 1..] {
            let clash = match (writes_a, writes_b) {
                (true, true) => used_a && used_b && ta.overlaps(tb),
                (false, false) => false,
                _ => ta.shares_buffer(tb),
            };
            if clash {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "{a} and {b} share memory; weights and the optimizer's state are \
                         updated in place, so each needs memory of its own, and a buffer the \
                         step reads (grads, grad_norm_sq) cannot also be one it updates"
                    ),
                ));
            }
        }
    }
    // Past i32::MAX, beta^t is 0 in f32 anyway; a bare cast would wrap to t <= 0.
    let t = step.step.clamp(1, i32::MAX as u64) as i32;
    let (kind, momentum, nesterov, beta1, beta2, eps, decoupled) = match step.kind {
        OptimizerKind::Sgd { momentum, nesterov } => (0, momentum, nesterov, 0.0, 0.0, 0.0, false),
        OptimizerKind::Adam {
            beta1,
            beta2,
            eps,
            decoupled,
        } => (1, 0.0, false, beta1, beta2, eps, decoupled),
    };
    let params = Params {
        n: fits_u32(OP, "parameters", weights.len())?,
        lr: step.lr,
        weight_decay: step.weight_decay,
        max_norm: step.max_grad_norm,
        momentum,
        beta1,
        beta2,
        eps,
        bias_correction1: 1.0 - beta1.powi(t),
        bias_correction2: 1.0 - beta2.powi(t),
        _pad: [0; 2],
    };
    let spec = KernelSpec::new("optimizer", SOURCES, "optimizer", BINDINGS)
        .with("KIND", Const::U32(kind))
        .with("NESTEROV", Const::Bool(nesterov))
        .with("DECOUPLED", Const::Bool(decoupled));
    let gpu = weights.gpu();
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[
            grads.binding(),
            grad_norm_sq.binding(),
            weights.binding(),
            state1.binding(),
            state2.binding(),
        ],
        gpu.grid((weights.len() as u64).div_ceil(256))?,
    )
}
