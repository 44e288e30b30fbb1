//! Deep equilibrium models: layers whose output is the fixed point z* = f(z*, x) of a cell,
//! found by batched GPU solvers ([`solve`]), and differentiated implicitly or by phantom
//! gradients ([`Deq`]).

mod model;
mod solver;

pub(crate) use model::layout;
pub use model::{Backward, Deq, DeqBackward, DeqConfig, DeqForward, MAX_PHANTOM_STEPS};
pub(crate) use solver::STATE_WORDS;
pub use solver::{
    FixedPointMap, MAX_MEMORY, Method, Solution, SolveStats, SolverConfig, Stop, solve,
};
