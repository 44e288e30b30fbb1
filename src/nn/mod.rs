//! Neural-network building blocks with explicit forward and backward passes, no tape: MLPs,
//! losses (in [`crate::ops::loss`]), optimizers, initialisers and checkpoints.

mod checkpoint;
pub mod init;
mod mlp;
mod optim;
mod params;

pub use checkpoint::{Checkpoint, OptimizerState, load_checkpoint, save_checkpoint};
pub use init::Init;
pub use mlp::{ForwardCache, LAYERNORM_EPS, Mlp, MlpConfig, Norm};
pub use optim::{Optimizer, OptimizerChoice, OptimizerConfig, Schedule};
pub use params::{ParamInfo, Parameters};
