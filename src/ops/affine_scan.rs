//! Batched affine recurrences `x[k] = A[k] x[k-1] + v[k]` solved in ceil(log2 L) parallel
//! levels (`shaders/affine_scan.wgsl`), forward and transposed-backward: the linear solves of
//! DeepPCR (block-bidiagonal systems).

use bytemuck::{Pod, Zeroable};

use super::{check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SCAN_SOURCES: &[&str] = &[include_str!("../../shaders/affine_scan.wgsl")];
const REVERSE_SOURCES: &[&str] = &[include_str!("../../shaders/affine_scan_reverse.wgsl")];
const UNREVERSE_SOURCES: &[&str] = &[include_str!("../../shaders/reverse_rows.wgsl")];
const FOUR: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];
const TWO: &[Access] = &[Access::Read, Access::ReadWrite];

/// Largest block width the kernels take (each invocation loops over a row of w x w products).
pub const MAX_AFFINE_WIDTH: usize = 128;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    len: u32,
    batch: u32,
    w: u32,
    shift: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RowParams {
    len: u32,
    row: u32,
    _pad: [u32; 2],
}

/// Levels of the scan for a recurrence of `len` steps: ceil(log2 len).
pub fn affine_scan_levels(len: usize) -> usize {
    len.next_power_of_two().trailing_zeros() as usize
}

/// Checks `a: [L, batch, w, w]` and `v: [L, batch, w]`; returns (L, batch, w).
fn dims(op: &'static str, a: &Tensor, v: &Tensor) -> Result<(usize, usize, usize)> {
    check_input(op, v, a)?;
    check_input(op, v, v)?;
    let s = v.shape();
    if s.len() != 3 || a.shape() != [s[0], s[1], s[2], s[2]] || s.contains(&0) {
        return Err(Error::shape(
            op,
            format!(
                "need A [L, batch, w, w] and v [L, batch, w], non-empty; got {:?} and {s:?}",
                a.shape()
            ),
        ));
    }
    if s[2] > MAX_AFFINE_WIDTH {
        return Err(Error::invalid(
            op,
            format!(
                "block width {} is past the kernels' {MAX_AFFINE_WIDTH}",
                s[2]
            ),
        ));
    }
    fits_u32(op, "elements of A", a.len())?;
    Ok((s[0], s[1], s[2]))
}

/// Records the scan of `(a, v)` (logical order) and returns `x`.
fn scan(a: &Tensor, v: &Tensor, len: usize, batch: usize, w: usize) -> Result<Tensor> {
    let gpu = v.gpu();
    let levels = affine_scan_levels(len);
    if levels == 0 {
        return super::copy(v);
    }
    let threads = (len * batch * w) as u64;
    let grid = gpu.grid(threads.div_ceil(256))?;
    let (mut a_cur, mut v_cur) = (a.clone(), v.clone());
    let a_next = Tensor::uninit(gpu, a.shape(), DType::F32)?;
    let mut a_spare = Some(a_next);
    for level in 0..levels {
        let last = level + 1 == levels;
        let v_out = Tensor::uninit(gpu, v.shape(), DType::F32)?;
        // The input A is the caller's: ping-pong between two scratch buffers after level 0.
        let a_out = match a_spare.take() {
            Some(t) => t,
            None => Tensor::uninit(gpu, a.shape(), DType::F32)?,
        };
        let params = Params {
            len: len as u32,
            batch: batch as u32,
            w: w as u32,
            shift: 1 << level,
        };
        let spec = KernelSpec::new("affine_scan", SCAN_SOURCES, "affine_scan", FOUR)
            .with("LAST", Const::Bool(last));
        gpu.dispatch(
            &spec,
            bytemuck::bytes_of(&params),
            &[
                a_cur.binding(),
                v_cur.binding(),
                a_out.binding(),
                v_out.binding(),
            ],
            grid,
        )?;
        if level > 0 {
            a_spare = Some(a_cur);
        }
        a_cur = a_out;
        v_cur = v_out;
    }
    Ok(v_cur)
}

/// Solves `x[k] = A[k] x[k-1] + v[k]` for k = 0..L-1 with `x[-1] = 0` (`A[0]` is unused), for
/// `batch` independent recurrences: `a` is `[L, batch, w, w]`, `v` and the result `[L, batch, w]`.
/// Takes ceil(log2 L) dependent dispatches and O(L w^3 log L) work per batch entry.
pub fn affine_scan(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (len, batch, w) = dims("affine_scan", a, v)?;
    scan(a, v, len, batch, w)
}

/// Solves the transposed recurrence that runs backward,
/// `y[l] = A[l+1]^T y[l+1] + v[l]` for l = L-1..0 with `y[L] = 0`: the adjoint of
/// [`affine_scan`], which back-propagation through it needs. Same shapes.
pub fn affine_scan_transposed(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (len, batch, w) = dims("affine_scan_transposed", a, v)?;
    let gpu = v.gpu();
    let m = Tensor::uninit(gpu, a.shape(), DType::F32)?;
    let u = Tensor::uninit(gpu, v.shape(), DType::F32)?;
    let params = Params {
        len: len as u32,
        batch: batch as u32,
        w: w as u32,
        shift: 0,
    };
    let grid = gpu.grid(((len * batch * w) as u64).div_ceil(256))?;
    gpu.dispatch(
        &KernelSpec::new(
            "affine_scan_reverse",
            REVERSE_SOURCES,
            "affine_scan_reverse",
            FOUR,
        ),
        bytemuck::bytes_of(&params),
        &[a.binding(), v.binding(), m.binding(), u.binding()],
        grid,
    )?;
    let reversed = scan(&m, &u, len, batch, w)?;
    let y = Tensor::uninit(gpu, v.shape(), DType::F32)?;
    let params = RowParams {
        len: len as u32,
        row: (batch * w) as u32,
        _pad: [0; 2],
    };
    gpu.dispatch(
        &KernelSpec::new("reverse_rows", UNREVERSE_SOURCES, "reverse_rows", TWO),
        bytemuck::bytes_of(&params),
        &[reversed.binding(), y.binding()],
        grid,
    )?;
    Ok(y)
}
