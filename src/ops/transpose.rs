//! Batched transpose of the last two axes (`shaders/transpose.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{BLOCK_GRID_WGSL, check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    BLOCK_GRID_WGSL,
    include_str!("../../shaders/transpose.wgsl"),
];
const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    batch: u32,
    _pad: u32,
}

/// Swaps the last two axes: `[..., r, c]` becomes `[..., c, r]`.
pub fn transpose(x: &Tensor) -> Result<Tensor> {
    check_input("transpose", x, x)?;
    let shape = x.shape();
    if shape.len() < 2 {
        return Err(Error::shape(
            "transpose",
            format!("needs at least two dimensions, got shape {shape:?}"),
        ));
    }
    let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let batch: usize = shape[..shape.len() - 2].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape.swap(shape.len() - 2, shape.len() - 1);
    let gpu = x.gpu();
    let out = Tensor::uninit(gpu, &out_shape, DType::F32)?;
    // An empty tensor has nothing to move, however long its other axes.
    if x.is_empty() {
        return Ok(out);
    }
    fits_u32("transpose", "elements", x.len())?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        batch: batch as u32,
        _pad: 0,
    };
    let spec = KernelSpec::new("transpose", SOURCES, "transpose", BINDINGS);
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[x.binding(), out.binding()],
        gpu.block_grid([cols.div_ceil(16), rows.div_ceil(16), batch])?,
    )?;
    Ok(out)
}
