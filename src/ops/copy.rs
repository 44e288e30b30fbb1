//! A plain device copy (`shaders/copy.wgsl`): the memory-bandwidth baseline of the benchmarks.

use bytemuck::{Pod, Zeroable};

use super::fits_u32;
use crate::error::Result;
use crate::gpu::kernel::{Access, KernelSpec};
use crate::tensor::Tensor;

const SOURCES: &[&str] = &[include_str!("../../shaders/copy.wgsl")];
const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite];
/// Invocations per workgroup, as in the shader.
const WORKGROUP: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    _pad: [u32; 3],
}

/// A copy of `x` (any dtype) in a new tensor, moved four floats per GPU invocation.
///
/// ```
/// use percept::{Gpu, Tensor, ops};
/// let gpu = Gpu::new()?;
/// let x = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0, 5.0], &[5])?;
/// assert_eq!(ops::copy(&x)?.to_vec()?, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
/// # Ok::<(), percept::Error>(())
/// ```
pub fn copy(x: &Tensor) -> Result<Tensor> {
    let gpu = x.gpu();
    let out = Tensor::uninit(gpu, x.shape(), x.dtype())?;
    // Both bindings are whole vec4s (see Tensor::binding); a tail past the last element copies
    // padding into padding.
    let count = x.byte_len().div_ceil(16);
    let params = Params {
        count: fits_u32("copy", "vec4s", count as usize)?,
        _pad: [0; 3],
    };
    let spec = KernelSpec::new("copy", SOURCES, "copy", BINDINGS);
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[x.binding(), out.binding()],
        gpu.grid(count.div_ceil(WORKGROUP))?,
    )?;
    Ok(out)
}
