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

/// Elements one workgroup reduces per stage: longer rows (and whole tensors) are reduced in
/// stages, so that no invocation loops over more than 16 of them (lavapipe ends an invocation's
/// loops after 65535 iterations, silently: one workgroup summing a row of 2 x 10^7 ones gave
/// 131070) and a few long rows still spread over many workgroups.
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
    /// max |x|, the infinity norm; +inf where any x is NaN (which a plain max may drop), so
    /// that a non-finite input never passes for a small norm.
    MaxAbs,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    row_len: u32,
    seg_len: u32,
    parts: u32,
    segments: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Reduces each of `rows` consecutive rows of `row_len` elements of `x` to one value, `[rows]`:
/// one pass when a row fits a stage's segment, else a pass over segments of every row and then
/// the partial results, row by row, until one is left per row.
fn staged(x: &Tensor, rows: usize, row_len: usize, reduction: Reduction) -> Result<Tensor> {
    let gpu = x.gpu();
    let max = matches!(reduction, Reduction::Max | Reduction::MaxAbs);
    // The first stage maps each element (0: as it is, 1: squared, 2: |x|, NaN as +inf); later
    // stages combine partial results, which are already mapped.
    let mut map = match reduction {
        Reduction::SumOfSquares => 1,
        Reduction::MaxAbs => 2,
        _ => 0,
    };
    let mut current = x.clone();
    let mut len = row_len;
    loop {
        let seg_len = len.min(STAGE_SEGMENT);
        let parts = len.div_ceil(seg_len);
        let scale = if parts == 1 && reduction == Reduction::Mean {
            1.0 / row_len as f32
        } else {
            1.0
        };
        let segments = rows * parts;
        let out = Tensor::uninit(gpu, &[segments], DType::F32)?;
        let spec = KernelSpec::new("reduce", SOURCES, "reduce", BINDINGS)
            .with("MAP", Const::U32(map))
            .with("COMBINE", Const::U32(max as u32));
        let params = Params {
            row_len: fits_u32("reduce", "row length", len)?,
            seg_len: seg_len as u32,
            parts: parts as u32,
            segments: fits_u32("reduce", "segments", segments)?,
            scale,
            _pad: [0; 3],
        };
        gpu.dispatch(
            &spec,
            bytemuck::bytes_of(&params),
            &[current.binding(), out.binding()],
            gpu.grid(segments as u64)?,
        )?;
        if parts == 1 {
            return Ok(out);
        }
        current = out;
        len = parts;
        map = 0;
    }
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
    let out = staged(x, rows, cols, reduction)?;
    let shape = &x.shape()[..x.shape().len() - 1];
    out.reshape(if shape.is_empty() { &[1] } else { shape })
}

/// Reduces over all elements to a tensor of shape `[1]`, in stages of
/// 4096-element segments.
pub fn reduce_all(x: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check("reduce_all", x)?;
    staged(x, 1, x.len(), reduction)
}
