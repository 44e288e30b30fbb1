//! Optimizers over the flat parameter buffer: one reduction (when clipping) and one update
//! dispatch per step, with learning-rate schedules computed on the host.

use serde::{Deserialize, Serialize};

use super::params::Parameters;
use crate::error::{Error, Result};
use crate::ops::{self, OptimizerKind, OptimizerStep, Reduction};
use crate::tensor::Tensor;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerChoice {
    /// Stochastic gradient descent (momentum and Nesterov optional).
    Sgd,
    /// Adam with L2 weight decay.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl std::str::FromStr for OptimizerChoice {
    type Err = Error;

    /// `sgd`, `adam` or `adamw`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(OptimizerChoice::Sgd),
            "adam" => Ok(OptimizerChoice::Adam),
            "adamw" => Ok(OptimizerChoice::AdamW),
            _ => Err(Error::invalid(
                "optimizer",
                format!("`{s}`: use sgd, adam or adamw"),
            )),
        }
    }
}

/// Learning rate as a function of the optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between decays.
        every: u64,
        /// Decay factor.
        gamma: f32,
    },
    /// Linear warm-up from 0 over `warmup` steps, then a cosine from the base rate down to 0 at
    /// step `total`.
    Cosine {
        /// Warm-up steps.
        warmup: u64,
        /// Step at which the rate reaches 0.
        total: u64,
    },
}

impl Schedule {
    /// The rate at 1-based `step` for base rate `lr`.
    pub fn lr(&self, lr: f32, step: u64) -> f32 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { every, gamma } => {
                // Clamped, not wrapped: a step past 2^31 decays would otherwise turn negative.
                let decays = (step.saturating_sub(1) / every.max(1)).min(i32::MAX as u64);
                lr * gamma.powi(decays as i32)
            }
            Schedule::Cosine { warmup, total } => {
                if step <= warmup {
                    return lr * step as f32 / warmup.max(1) as f32;
                }
                let span = total.saturating_sub(warmup).max(1) as f32;
                let t = ((step - warmup) as f32 / span).min(1.0);
                lr * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            }
        }
    }
}

/// Optimizer settings (defaults as PyTorch's, with lr 1e-3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The rule.
    pub kind: OptimizerChoice,
    /// Base learning rate.
    pub lr: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Adam's first-moment decay.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// Adam's denominator epsilon.
    pub eps: f32,
    /// Weight decay (L2 for SGD and Adam, decoupled for AdamW).
    pub weight_decay: f32,
    /// Clip gradients to this global L2 norm; 0 disables.
    pub max_grad_norm: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerChoice::Adam,
            lr: 1e-3,
            momentum: 0.0,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 0.0,
            schedule: Schedule::Constant,
        }
    }
}

impl OptimizerConfig {
    /// Checks every setting, naming the first one out of range.
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::invalid("Optimizer::new", detail));
        let numbers = [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("max_grad_norm", self.max_grad_norm),
        ];
        if let Some((name, v)) = numbers.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return bad(format!("{name} must be finite and >= 0, got {v}"));
        }
        for (name, v) in &numbers[1..4] {
            if *v >= 1.0 {
                return bad(format!(
                    "{name} must be below 1 (a decay of 1 or more never forgets), got {v}"
                ));
            }
        }
        if self.nesterov && (self.kind != OptimizerChoice::Sgd || self.momentum == 0.0) {
            return bad(format!(
                "Nesterov momentum is SGD's and needs momentum > 0; got {:?} with momentum {}",
                self.kind, self.momentum
            ));
        }
        match self.schedule {
            Schedule::Step { every: 0, .. } => {
                bad("the step schedule needs at least 1 step between decays, got 0".into())
            }
            Schedule::Step { gamma, .. } if !(gamma.is_finite() && gamma > 0.0) => bad(format!(
                "the step schedule's decay factor gamma must be finite and > 0, got {gamma}"
            )),
            _ => Ok(()),
        }
    }
}

/// Optimizer state as a checkpoint holds it.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// Settings.
    pub config: OptimizerConfig,
    /// Steps taken.
    pub step: u64,
    /// State per kind (see [`Optimizer::state_names`]), then per parameter tensor.
    pub state: Vec<Vec<Vec<f32>>>,
}

/// An optimizer with its state, for one [`Parameters`].
pub struct Optimizer {
    config: OptimizerConfig,
    /// Momentum buffer (SGD) or first moment (Adam), laid out like the parameters.
    state1: Tensor,
    /// Second moment (Adam); unused by SGD.
    state2: Tensor,
    /// Bound in place of the squared gradient norm when not clipping (the kernel ignores it).
    unused_norm: Tensor,
    step: u64,
}

impl Optimizer {
    /// A fresh optimizer (zero state, step 0) for `params`.
    pub fn new(params: &Parameters, config: OptimizerConfig) -> Result<Self> {
        config.check()?;
        let gpu = params.weights().gpu();
        let shape = params.weights().shape();
        Ok(Optimizer {
            state1: Tensor::zeros(gpu, shape)?,
            state2: Tensor::zeros(gpu, shape)?,
            unused_norm: Tensor::zeros(gpu, &[1])?,
            config,
            step: 0,
        })
    }

    /// Settings.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The learning rate the next step will use.
    pub fn next_lr(&self) -> f32 {
        self.config
            .schedule
            .lr(self.config.lr, self.step.saturating_add(1))
    }

    /// Records one update of `params` from their gradients.
    pub fn step(&mut self, params: &Parameters) -> Result<()> {
        let lr = self.next_lr();
        // A checkpoint's step count is read from the file and may be any u64.
        self.step = self.step.checked_add(1).ok_or_else(|| {
            Error::invalid(
                "Optimizer::step",
                "the step count is at its largest (2^64 - 1); resume from a checkpoint with a \
                 real step count",
            )
        })?;
        let norm_sq = if self.config.max_grad_norm > 0.0 {
            ops::reduce_all(params.grads(), Reduction::SumOfSquares)?
        } else {
            self.unused_norm.clone()
        };
        let kind = match self.config.kind {
            OptimizerChoice::Sgd => OptimizerKind::Sgd {
                momentum: self.config.momentum,
                nesterov: self.config.nesterov,
            },
            OptimizerChoice::Adam | OptimizerChoice::AdamW => OptimizerKind::Adam {
                beta1: self.config.beta1,
                beta2: self.config.beta2,
                eps: self.config.eps,
                decoupled: self.config.kind == OptimizerChoice::AdamW,
            },
        };
        let step = OptimizerStep {
            kind,
            lr,
            weight_decay: self.config.weight_decay,
            max_grad_norm: self.config.max_grad_norm,
            step: self.step,
        };
        ops::optimizer_step(
            &step,
            params.weights(),
            params.grads(),
            &self.state1,
            &self.state2,
            &norm_sq,
        )
    }

    /// The state tensors with PyTorch's names for them (`momentum_buffer`, or `exp_avg` and
    /// `exp_avg_sq`), as flat buffers laid out like the parameters.
    pub fn state(&self) -> Vec<(&'static str, &Tensor)> {
        Self::state_names(self.config.kind)
            .iter()
            .zip([&self.state1, &self.state2])
            .map(|(name, t)| (*name, t))
            .collect()
    }

    /// PyTorch's names of the state an optimizer of `kind` keeps.
    pub fn state_names(kind: OptimizerChoice) -> &'static [&'static str] {
        match kind {
            OptimizerChoice::Sgd => &["momentum_buffer"],
            OptimizerChoice::Adam | OptimizerChoice::AdamW => &["exp_avg", "exp_avg_sq"],
        }
    }

    /// An optimizer for `params` with the settings, step count and state of a checkpoint.
    pub fn from_checkpoint(params: &Parameters, saved: &OptimizerState) -> Result<Self> {
        let optimizer = Optimizer::new(params, saved.config.clone())?;
        let tensors = optimizer.state();
        if saved.state.len() != tensors.len() {
            return Err(Error::invalid(
                "Optimizer::from_checkpoint",
                format!(
                    "{} state tensors, expected {}",
                    saved.state.len(),
                    tensors.len()
                ),
            ));
        }
        for ((_, t), per_param) in tensors.iter().zip(&saved.state) {
            t.write(&params.flatten(per_param)?)?;
        }
        drop(tensors);
        Ok(Optimizer {
            step: saved.step,
            ..optimizer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn step_decay_holds_past_two_billion_decays() {
        let schedule = Schedule::Step {
            every: 1,
            gamma: 0.5,
        };
        assert_eq!(schedule.lr(1.0, 1), 1.0);
        assert_eq!(schedule.lr(1.0, 3), 0.25);
        // 3e9 decays wrapped to a negative power: a rate of infinity.
        assert_eq!(schedule.lr(1.0, 3_000_000_001), 0.0);
        assert_eq!(schedule.lr(1.0, u64::MAX), 0.0);
    }
}
