//! Row-wise softmax and log-softmax (`shaders/softmax.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{LOG1P_WGSL, WORKGROUP_REDUCE_WGSL, check_input, check_row_loops, fits_u32, rows_cols};
use crate::error::Result;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    LOG1P_WGSL,
    include_str!("../../shaders/softmax.wgsl"),
];
const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

fn launch(op: &'static str, x: &Tensor, log: bool) -> Result<Tensor> {
    check_input(op, x, x)?;
    let (rows, cols) = rows_cols(op, x)?;
    check_row_loops(op, x, cols, 3)?;
    let gpu = x.gpu();
    let out = Tensor::uninit(gpu, x.shape(), DType::F32)?;
    let spec =
        KernelSpec::new("softmax", SOURCES, "softmax", BINDINGS).with("LOG", Const::Bool(log));
    let params = Params {
        rows: fits_u32(op, "elements", x.len()).map(|_| rows as u32)?,
        cols: fits_u32(op, "columns", cols)?,
        _pad: [0; 2],
    };
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[x.binding(), out.binding()],
        gpu.grid(rows as u64)?,
    )?;
    Ok(out)
}

/// `exp(x - max) / Σ exp(x - max)` along the last axis.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    launch("softmax", x, false)
}

/// `x - max - ln Σ exp(x - max)` along the last axis.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    launch("log_softmax", x, true)
}
