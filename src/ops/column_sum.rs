//! Sums over the rows of a matrix, i.e. along the first axis (`shaders/column_sum.wgsl`):
//! bias and normalisation-parameter gradients.

use bytemuck::{Pod, Zeroable};

use super::{BLOCK_GRID_WGSL, check_input, fits_u32, rows_cols};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    BLOCK_GRID_WGSL,
    include_str!("../../shaders/column_sum.wgsl"),
];
const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];

/// Rows one workgroup sums: each launch divides the rows left by this much, so that no
/// invocation's loop passes a driver's loop limit however tall the matrix.
const CHUNK_ROWS: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    chunk_rows: u32,
    scale: f32,
}

fn launch(
    src: &Tensor,
    rows: usize,
    cols: usize,
    chunk_rows: usize,
    scale: f32,
    out: &Tensor,
) -> Result<()> {
    let gpu = src.gpu();
    let chunks = rows.div_ceil(chunk_rows).max(1);
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        chunk_rows: chunk_rows as u32,
        scale,
    };
    gpu.dispatch(
        &KernelSpec::new("column_sum", SOURCES, "column_sum", BINDINGS),
        bytemuck::bytes_of(&params),
        &[src.binding(), out.binding()],
        gpu.block_grid([cols.div_ceil(64), chunks, 1])?,
    )
}

/// `scale * Σ_rows x[row, :]` for `x` of shape `[.., cols]` (all leading axes are rows),
/// written into `out` of shape `[cols]`.
pub fn column_sums_into(x: &Tensor, scale: f32, out: &Tensor) -> Result<()> {
    const OP: &str = "column_sums";
    check_input(OP, x, x)?;
    check_input(OP, x, out)?;
    let (rows, cols) = rows_cols(OP, x)?;
    fits_u32(OP, "elements", x.len())?;
    if out.shape() != [cols] {
        return Err(Error::shape(
            OP,
            format!(
                "the output has shape {:?}, the input {cols} columns",
                out.shape()
            ),
        ));
    }
    if out.shares_buffer(x) {
        return Err(Error::invalid(
            OP,
            "the output shares a buffer with the input",
        ));
    }
    // Partial sums of chunks of rows until one chunk is left.
    let (mut src, mut rows) = (x.clone(), rows);
    while rows > CHUNK_ROWS {
        let chunks = rows.div_ceil(CHUNK_ROWS);
        let partial = Tensor::uninit(x.gpu(), &[chunks, cols], DType::F32)?;
        launch(&src, rows, cols, CHUNK_ROWS, 1.0, &partial)?;
        (src, rows) = (partial, chunks);
    }
    launch(&src, rows, cols, CHUNK_ROWS, scale, out)
}

/// `Σ_rows x[row, :]`: shape `[.., cols]` gives `[cols]`.
pub fn column_sums(x: &Tensor) -> Result<Tensor> {
    let (_, cols) = rows_cols("column_sums", x)?;
    let out = Tensor::uninit(x.gpu(), &[cols], DType::F32)?;
    column_sums_into(x, 1.0, &out)?;
    Ok(out)
}
