//! Elementwise arithmetic and activations (`shaders/elementwise.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{ACTIVATION_WGSL, Activation, check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[
    ACTIVATION_WGSL,
    include_str!("../../shaders/elementwise.wgsl"),
];
const BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];

const OP_SCALE: u32 = 100;
const OP_ADD: u32 = 101;
const OP_SUB: u32 = 102;
const OP_MUL: u32 = 103;
const OP_AXPY: u32 = 104;
const OP_ACT_BACKWARD: u32 = 105;
const OP_ACT_BACKWARD_FROM_OUTPUT: u32 = 106;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    alpha: f32,
    _pad: [u32; 2],
}

/// Records `out = op(x, y)`; `y` is `x` for unary ops.
fn launch(
    name: &'static str,
    op: u32,
    act: Activation,
    alpha: f32,
    x: &Tensor,
    y: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let n = fits_u32(name, "elements", x.len())?;
    let gpu = x.gpu();
    let spec = KernelSpec::new("elementwise", SOURCES, "elementwise", BINDINGS)
        .with("OP", Const::U32(op))
        .with("ACT", Const::U32(act.code()));
    let params = Params {
        n,
        alpha,
        _pad: [0; 2],
    };
    let grid = gpu.grid((n as u64).div_ceil(256))?;
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[x.binding(), y.binding(), out.binding()],
        grid,
    )
}

fn same_shape(op: &'static str, x: &Tensor, y: &Tensor) -> Result<()> {
    check_input(op, x, y)?;
    if x.shape() != y.shape() {
        return Err(Error::shape(
            op,
            format!("operands have shapes {:?} and {:?}", x.shape(), y.shape()),
        ));
    }
    Ok(())
}

fn binary(name: &'static str, op: u32, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    check_input(name, x, x)?;
    same_shape(name, x, y)?;
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    launch(name, op, Activation::Identity, 0.0, x, y, &out)?;
    Ok(out)
}

/// `x + y`, elementwise; shapes must match.
pub fn add(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    binary("add", OP_ADD, x, y)
}

/// `x - y`, elementwise; shapes must match.
pub fn sub(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    binary("sub", OP_SUB, x, y)
}

/// `x * y`, elementwise; shapes must match.
pub fn mul(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    binary("mul", OP_MUL, x, y)
}

/// `alpha * x`.
pub fn scale(x: &Tensor, alpha: f32) -> Result<Tensor> {
    check_input("scale", x, x)?;
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    launch("scale", OP_SCALE, Activation::Identity, alpha, x, x, &out)?;
    Ok(out)
}

/// `y += alpha * x`, in place on `y`; shapes must match and `x` must not share `y`'s buffer.
pub fn axpy(alpha: f32, x: &Tensor, y: &Tensor) -> Result<()> {
    check_input("axpy", x, x)?;
    same_shape("axpy", x, y)?;
    if x.shares_buffer(y) {
        return Err(Error::invalid(
            "axpy",
            "x and y share a buffer; use scale and add for y += alpha * y",
        ));
    }
    launch("axpy", OP_AXPY, Activation::Identity, alpha, x, x, y)
}

/// `act(x)`, elementwise.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    check_input("activation", x, x)?;
    let out = Tensor::uninit(x.gpu(), x.shape(), DType::F32)?;
    launch("activation", act.code(), act, 0.0, x, x, &out)?;
    Ok(out)
}

/// The gradient through an activation: `grad_out * act'(pre)`, with `pre` the activation's
/// input.
pub fn activation_backward(pre: &Tensor, grad_out: &Tensor, act: Activation) -> Result<Tensor> {
    check_input("activation_backward", pre, pre)?;
    same_shape("activation_backward", pre, grad_out)?;
    let out = Tensor::uninit(pre.gpu(), pre.shape(), DType::F32)?;
    launch(
        "activation_backward",
        OP_ACT_BACKWARD,
        act,
        0.0,
        pre,
        grad_out,
        &out,
    )?;
    Ok(out)
}

/// The gradient through an activation from its output `out = act(pre)`:
/// `grad_out * act'(pre)` for every activation whose derivative is a function of its output
/// (all but GELU, which returns an error: use [`activation_backward`]).
pub fn activation_backward_from_output(
    out: &Tensor,
    grad_out: &Tensor,
    act: Activation,
) -> Result<Tensor> {
    const OP: &str = "activation_backward_from_output";
    check_input(OP, out, out)?;
    same_shape(OP, out, grad_out)?;
    if !act.derivative_from_output() {
        return Err(Error::invalid(
            OP,
            format!(
                "{act:?}'s derivative is not a function of its output; keep the pre-activation"
            ),
        ));
    }
    let dx = Tensor::uninit(out.gpu(), out.shape(), DType::F32)?;
    launch(
        OP,
        OP_ACT_BACKWARD_FROM_OUTPUT,
        act,
        0.0,
        out,
        grad_out,
        &dx,
    )?;
    Ok(dx)
}
