use crate::ops::{OptimizerKind, OptimizerStep};

/// Twin of [`crate::ops::optimizer_step`]: updates `weights`, `state1` and `state2` in place
/// (in f64).
pub fn optimizer_step(
    step: &OptimizerStep,
    weights: &mut [f64],
    grads: &[f64],
    state1: &mut [f64],
    state2: &mut [f64],
) {
    let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
    let clip = if step.max_grad_norm > 0.0 {
        (step.max_grad_norm as f64 / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    let (lr, wd) = (step.lr as f64, step.weight_decay as f64);
    for i in 0..weights.len() {
        let mut g = grads[i] * clip;
        let mut p = weights[i];
        match step.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                let mu = momentum as f64;
                g += wd * p;
                let mut update = g;
                if mu != 0.0 {
                    state1[i] = mu * state1[i] + g;
                    update = if nesterov {
                        g + mu * state1[i]
                    } else {
                        state1[i]
                    };
                }
                weights[i] = p - lr * update;
            }
            OptimizerKind::Adam {
                beta1,
                beta2,
                eps,
                decoupled,
            } => {
                let (b1, b2) = (beta1 as f64, beta2 as f64);
                if decoupled {
                    p -= lr * wd * p;
                } else {
                    g += wd * p;
                }
                state1[i] = b1 * state1[i] + (1.0 - b1) * g;
                state2[i] = b2 * state2[i] + (1.0 - b2) * g * g;
                // As the kernel: past i32::MAX, beta^t is 0 anyway; a bare cast would wrap.
                let t = step.step.clamp(1, i32::MAX as u64) as i32;
                let m_hat = state1[i] / (1.0 - b1.powi(t));
                let v_hat = state2[i] / (1.0 - b2.powi(t));
                weights[i] = p - lr * m_hat / (v_hat.sqrt() + eps as f64);
            }
        }
    }
}
