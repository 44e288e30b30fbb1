//! Neural-network building blocks with explicit forward and backward passes, no tape: MLPs,
//! losses (in [`crate::ops::loss`]), optimizers and initialisers.

pub mod init;
mod mlp;
mod optim;
mod params;

pub use init::Init;
pub(crate) use mlp::layout as mlp_layout;
pub use mlp::{ForwardCache, LAYERNORM_EPS, Mlp, MlpConfig, Norm};
pub use optim::{Optimizer, OptimizerChoice, OptimizerConfig, OptimizerState, Schedule};
pub(crate) use params::split;
pub use params::{ParamInfo, Parameters};
