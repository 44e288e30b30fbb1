//! Kernel launchers, one module per WGSL family in `shaders/`: each validates its inputs, then
//! records a dispatch on the tensors' device. Nothing runs until the device is flushed or a
//! result is read back (see [`crate::Gpu`]).

mod affine_scan;
mod column_sum;
mod copy;
mod elementwise;
mod fft;
mod layernorm;
mod loss;
mod matmul;
mod optimizer;
mod random;
mod reduce;
mod softmax;
mod transpose;
mod tridiagonal;

pub use affine_scan::{
    MAX_AFFINE_WIDTH, MAX_CHUNKED_REGISTERS_WIDTH, MAX_CHUNKED_WIDTH, ScanMaps, ScanMethod,
    affine_scan, affine_scan_method, affine_scan_transposed,
};
pub use column_sum::{column_sums, column_sums_into};
pub use copy::copy;
pub use elementwise::{
    activation, activation_backward, activation_backward_from_output, add, axpy, mul, scale, sub,
};
pub use fft::{FftKind, FftNorm, FftPlan};
pub use layernorm::{LayerNormAffineGrads, LayerNormOutput, layernorm, layernorm_backward};
pub use loss::{Loss, LossOutput, loss};
pub use matmul::{
    CoopKernel, MAX_SPLIT_K, MatmulKernel, MatmulSpec, Precision, SPLIT_F16_KERNELS, SplitB, Tile,
    matmul, matmul_candidates, matmul_into, matmul_kernel, split_f16_kernel,
};
pub use optimizer::{OptimizerKind, OptimizerStep, optimizer_step};
pub use random::{Distribution, random, random_fill, random_normal, random_uniform};
pub use reduce::{Reduction, reduce_all, reduce_rows};
pub use softmax::{log_softmax, softmax};
pub use transpose::transpose;
pub use tridiagonal::{
    PCR_SIZE, TridiagonalMethod, tridiagonal_method, tridiagonal_solve, tridiagonal_solve_unchecked,
};

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// Activation functions, as kernels and matmul epilogues apply them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// f(x) = x.
    #[default]
    Identity,
    /// max(x, 0).
    Relu,
    /// x Φ(x), the exact (erf) form, as PyTorch's default.
    Gelu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// x for x > 0, e^x - 1 otherwise (alpha = 1).
    Elu,
    /// ln(1 + e^x).
    Softplus,
}

impl Activation {
    /// All activations, in code order.
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Elu,
        Activation::Softplus,
    ];

    /// Whether act'(x) can be computed from act(x), which lets a fused matmul epilogue drop the
    /// pre-activation.
    pub fn derivative_from_output(self) -> bool {
        self != Activation::Gelu
    }

    /// The code `shaders/activation.wgsl` knows this activation by.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// `identity`, `relu`, `gelu`, `tanh`, `sigmoid`, `elu` or `softplus`.
    fn from_str(s: &str) -> Result<Self> {
        Activation::ALL
            .into_iter()
            .find(|a| format!("{a:?}").eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    "activation",
                    format!("`{s}`: use identity, relu, gelu, tanh, sigmoid, elu or softplus"),
                )
            })
    }
}

// Each carries nan.wgsl, which its functions use (so no kernel takes both).
pub(crate) const ACTIVATION_WGSL: &str = concat!(
    include_str!("../../shaders/nan.wgsl"),
    include_str!("../../shaders/log1p.wgsl"),
    include_str!("../../shaders/activation.wgsl")
);
/// log1p_acc, for the kernels that take WORKGROUP_REDUCE_WGSL (ACTIVATION_WGSL has it).
pub(crate) const LOG1P_WGSL: &str = include_str!("../../shaders/log1p.wgsl");
pub(crate) const BLOCK_GRID_WGSL: &str = include_str!("../../shaders/block_grid.wgsl");
pub(crate) const WORKGROUP_REDUCE_WGSL: &str = concat!(
    include_str!("../../shaders/nan.wgsl"),
    include_str!("../../shaders/workgroup_reduce.wgsl")
);

/// Checks that a tensor is f32 and on the same device as the first input.
pub(crate) fn check_input(op: &'static str, first: &Tensor, t: &Tensor) -> Result<()> {
    t.expect_dtype(op, DType::F32)?;
    if !first.same_device(t) {
        return Err(Error::invalid(op, "tensors live on different devices"));
    }
    Ok(())
}

/// Splits a tensor's shape into (rows, cols) with cols its last dimension.
fn rows_cols(op: &'static str, t: &Tensor) -> Result<(usize, usize)> {
    let cols = *t
        .shape()
        .last()
        .ok_or_else(|| Error::shape(op, "expects at least one dimension, got a scalar shape []"))?;
    Ok((t.len() / cols.max(1), cols))
}

/// Checks that a row kernel's loops stay within the adapter's loop budget
/// ([`crate::gpu::Capabilities::loop_budget`]): each invocation of its 256-wide workgroup goes
/// `loops` times over a 256th of a row of `cols`. Past it (rows of millions on lavapipe) the
/// driver would end the loops early and the kernel return garbage.
fn check_row_loops(op: &'static str, t: &Tensor, cols: usize, loops: usize) -> Result<()> {
    match t.gpu().capabilities().loop_budget() {
        Some(budget) if loops * cols.div_ceil(256) > budget => Err(Error::invalid(
            op,
            format!(
                "rows of {cols} are past this adapter's loop budget (Capabilities::loop_budget: \
                 each invocation loops over a 256th of a row {loops} times); use rows of at \
                 most {}",
                budget / loops * 256
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks that a count fits the u32 indexing of the kernels.
pub(crate) fn fits_u32(op: &'static str, what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::invalid(
            op,
            format!("{what} = {n} is past the 2^32 elements kernels index"),
        )
    })
}
