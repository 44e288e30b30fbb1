//! Sums, means, maxima and sums of squares, along the last axis or over all elements
//! (`shaders/reduce.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{WORKGROUP_REDUCE_WGSL, check_input, fits_u32, rows_cols};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    include_str!("../../shaders/reduce.wgsl"),
];
const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];

/// Elements one workgroup reduces per stage of a whole-tensor reduction.
const STAGE_SEGMENT: usize = 4096;

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Σ x.
    Sum,
    /// Σ x / n.
    Mean,
    /// max x (−f32::MAX for an empty set).
    Max,
    /// Σ x².
    SumOfSquares,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    seg_len: u32,
    segments: u32,
    scale: f32,
}

/// Records one pass: `out[g] = scale * reduce(src[g * seg_len ..][..seg_len])`.
fn pass(
    src: &Tensor,
    seg_len: usize,
    segments: usize,
    square: bool,
    max: bool,
    scale: f32,
) -> Result<Tensor> {
    let gpu = src.gpu();
    let out = Tensor::uninit(gpu, &[segments], DType::F32)?;
    let spec = KernelSpec::new("reduce", SOURCES, "reduce", BINDINGS)
        .with("MAP", Const::U32(square as u32))
        .with("COMBINE", Const::U32(max as u32));
    let params = Params {
        n: fits_u32("reduce", "elements", src.len())?,
        seg_len: fits_u32("reduce", "segment length", seg_len)?,
        segments: segments as u32,
        scale,
    };
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[src.binding(), out.binding()],
        gpu.grid(segments as u64)?,
    )?;
    Ok(out)
}

fn check(op: &'static str, x: &Tensor) -> Result<()> {
    check_input(op, x, x)?;
    if x.is_empty() {
        return Err(Error::shape(
            op,
            format!("cannot reduce an empty tensor of shape {:?}", x.shape()),
        ));
    }
    Ok(())
}

/// Reduces along the last axis: shape `[..., n]` gives `[...]` (a scalar input `[n]` gives `[1]`).
pub fn reduce_rows(x: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check("reduce_rows", x)?;
    let (rows, cols) = rows_cols("reduce_rows", x)?;
    let scale = if reduction == Reduction::Mean {
        1.0 / cols as f32
    } else {
        1.0
    };
    let out = pass(
        x,
        cols,
        rows,
        reduction == Reduction::SumOfSquares,
        reduction == Reduction::Max,
        scale,
    )?;
    let shape = &x.shape()[..x.shape().len() - 1];
    out.reshape(if shape.is_empty() { &[1] } else { shape })
}

/// Reduces over all elements to a tensor of shape `[1]`, in stages of
/// 4096-element segments.
pub fn reduce_all(x: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check("reduce_all", x)?;
    let n = x.len();
    let max = reduction == Reduction::Max;
    let mut square = reduction == Reduction::SumOfSquares;
    let mut current = x.clone();
    loop {
        let len = current.len();
        let segments = len.div_ceil(STAGE_SEGMENT);
        let last = segments == 1;
        let scale = if last && reduction == Reduction::Mean {
            1.0 / n as f32
        } else {
            1.0
        };
        current = pass(
            &current,
            STAGE_SEGMENT.min(len),
            segments,
            square,
            max,
            scale,
        )?;
        // Later stages combine partial results, which are already squared.
        square = false;
        if last {
            return Ok(current);
        }
    }
}
