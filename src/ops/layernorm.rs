//! Layer normalisation along the last axis (`shaders/layernorm.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{WORKGROUP_REDUCE_WGSL, check_input, fits_u32, rows_cols};
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
