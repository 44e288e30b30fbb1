//! Layer normalisation along the last axis (`shaders/layernorm.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{WORKGROUP_REDUCE_WGSL, check_input, check_row_loops, fits_u32, rows_cols};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    include_str!("../../shaders/layernorm.wgsl"),
];
const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad: u32,
}

/// The normalised tensor and the per-row statistics a backward pass needs.
#[derive(Clone, Debug)]
pub struct LayerNormOutput {
    /// `(x - mean) * rstd * gamma + beta`, the shape of the input.
    pub y: Tensor,
    /// Row means, shape `[rows]`.
    pub mean: Tensor,
    /// Row reciprocal standard deviations `1 / sqrt(var + eps)`, shape `[rows]`.
    pub rstd: Tensor,
}

/// Normalises each row (last axis) of `x` to zero mean and unit variance (biased, as PyTorch's
/// `LayerNorm`), then applies the optional affine `gamma`, `beta` (both of the row length).
pub fn layernorm(
    x: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    eps: f32,
) -> Result<LayerNormOutput> {
    const OP: &str = "layernorm";
    check_input(OP, x, x)?;
    let (rows, cols) = rows_cols(OP, x)?;
    check_row_loops(OP, x, cols, 3)?;
    if cols == 0 {
        return Err(Error::shape(
            OP,
            format!(
                "rows of length 0 have no mean or variance, got shape {:?}",
                x.shape()
            ),
        ));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::invalid(
            OP,
            format!("eps must be finite and positive, got {eps}"),
        ));
    }
    if let Some((gamma, beta)) = affine {
        for (name, t) in [("gamma", gamma), ("beta", beta)] {
            check_input(OP, x, t)?;
            if t.shape() != [cols] {
                return Err(Error::shape(
                    OP,
                    format!(
                        "{name} has shape {:?}, the rows have length {cols}",
                        t.shape()
                    ),
                ));
            }
        }
    }
    let gpu = x.gpu();
    let out = LayerNormOutput {
        y: Tensor::uninit(gpu, x.shape(), DType::F32)?,
        mean: Tensor::uninit(gpu, &[rows], DType::F32)?,
        rstd: Tensor::uninit(gpu, &[rows], DType::F32)?,
    };
    let (gamma, beta) = affine.unwrap_or((x, x));
    let spec =
        KernelSpec::new(OP, SOURCES, OP, BINDINGS).with("AFFINE", Const::Bool(affine.is_some()));
    let params = Params {
        rows: fits_u32(OP, "elements", x.len()).map(|_| rows as u32)?,
        cols: cols as u32,
        eps,
        _pad: 0,
    };
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[
            x.binding(),
            gamma.binding(),
            beta.binding(),
            out.y.binding(),
            out.mean.binding(),
            out.rstd.binding(),
        ],
        gpu.grid(rows as u64)?,
    )?;
    Ok(out)
}

const BACKWARD_SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    include_str!("../../shaders/layernorm_backward.wgsl"),
];
const BACKWARD_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// The affine parameters of a [`layernorm`] and where their gradients go.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormAffineGrads<'a> {
    /// The gamma the forward used.
    pub gamma: &'a Tensor,
    /// Receives d loss / d gamma.
    pub dgamma: &'a Tensor,
    /// Receives d loss / d beta.
    pub dbeta: &'a Tensor,
}

/// The backward of [`layernorm`]: returns d loss / d x given the forward's input `x`, its
/// `mean` and `rstd` outputs, and the upstream gradient `dy`; for an affine layer norm also
/// writes the gamma and beta gradients.
pub fn layernorm_backward(
    x: &Tensor,
    forward: &LayerNormOutput,
    dy: &Tensor,
    affine: Option<LayerNormAffineGrads<'_>>,
) -> Result<Tensor> {
    const OP: &str = "layernorm_backward";
    check_input(OP, x, x)?;
    let (rows, cols) = rows_cols(OP, x)?;
    check_row_loops(OP, x, cols, 2)?;
    for (name, t, shape) in [
        ("dy", dy, x.shape()),
        ("mean", &forward.mean, &[rows][..]),
        ("rstd", &forward.rstd, &[rows][..]),
    ] {
        check_input(OP, x, t)?;
        if t.shape() != shape {
            return Err(Error::shape(
                OP,
                format!("{name} has shape {:?}, expected {shape:?}", t.shape()),
            ));
        }
    }
    if let Some(a) = affine {
        for (name, t) in [("gamma", a.gamma), ("dgamma", a.dgamma), ("dbeta", a.dbeta)] {
            check_input(OP, x, t)?;
            if t.shape() != [cols] {
                return Err(Error::shape(
                    OP,
                    format!("{name} has shape {:?}, expected [{cols}]", t.shape()),
                ));
            }
        }
        // dbeta is summed from dy after dgamma is written: a shared buffer would be read and
        // written at once, or overwritten.
        if a.dgamma.overlaps(a.dbeta) || [a.dgamma, a.dbeta].iter().any(|t| t.shares_buffer(dy)) {
            return Err(Error::invalid(
                OP,
                "dgamma and dbeta must not overlap each other nor share a buffer with dy",
            ));
        }
    }
    let gamma = affine.map(|a| a.gamma);
    let gpu = x.gpu();
    let dx = Tensor::uninit(gpu, x.shape(), DType::F32)?;
    let dy_xhat = Tensor::uninit(gpu, x.shape(), DType::F32)?;
    let params = Params {
        rows: fits_u32(OP, "elements", x.len()).map(|_| rows as u32)?,
        cols: cols as u32,
        eps: 0.0,
        _pad: 0,
    };
    let spec = KernelSpec::new(OP, BACKWARD_SOURCES, OP, BACKWARD_BINDINGS)
        .with("AFFINE", Const::Bool(gamma.is_some()));
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[
            x.binding(),
            dy.binding(),
            gamma.unwrap_or(x).binding(),
            forward.mean.binding(),
            forward.rstd.binding(),
            dx.binding(),
            dy_xhat.binding(),
        ],
        gpu.grid(rows as u64)?,
    )?;
    if let Some(a) = affine {
        super::column_sums_into(&dy_xhat, 1.0, a.dgamma)?;
        super::column_sums_into(dy, 1.0, a.dbeta)?;
    }
    Ok(dx)
}
