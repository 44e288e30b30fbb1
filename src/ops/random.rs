//! Counter-based random numbers on the GPU (`shaders/random.wgsl`): Philox4x32-10 keyed by a
//! 64-bit seed, so element `g` of a stream depends only on `(seed, g)`. A tensor can be filled
//! with any slice of a stream (`offset`), which makes results independent of how a large draw
//! is split into chunks; [`crate::reference::random`] reproduces every element.

use bytemuck::{Pod, Zeroable};

use super::check_input;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SOURCES: &[&str] = &[include_str!("../../shaders/random.wgsl")];
const BINDINGS: &[Access] = &[Access::ReadWrite];

/// The distribution of [`random_fill`]'s elements.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Normal with this mean and standard deviation, by Box-Muller on pairs of 24-bit uniforms
    /// (so |x - mean| <= 5.77 std: the tail beyond, of probability 8e-9, is not drawn).
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation (>= 0).
        std: f32,
    },
    /// Uniform on the open interval (low, high), at 24-bit resolution (rounding to f32 may give
    /// an end itself where the interval is a few ulps wide).
    Uniform {
        /// Lower end.
        low: f32,
        /// Upper end.
        high: f32,
    },
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    a: f32,
    b: f32,
    _pad: u32,
}

/// Writes elements `offset .. offset + out.len()` of the stream `seed` of `dist` into `out`
/// (in row-major order). Streams of different seeds are independent.
///
/// ```
/// use percept::{Gpu, ops::{self, Distribution}};
/// let gpu = Gpu::new()?;
/// let whole = ops::random_normal(&gpu, &[2, 3], 0.0, 1.0, 7)?.to_vec()?;
/// let tail = ops::random_normal(&gpu, &[4], 0.0, 1.0, 7)?;      // elements 0..4
/// ops::random_fill(&tail, Distribution::Normal { mean: 0.0, std: 1.0 }, 7, 2)?; // now 2..6
/// assert_eq!(tail.to_vec()?, whole[2..].to_vec());
/// # Ok::<(), percept::Error>(())
/// ```
pub fn random_fill(out: &Tensor, dist: Distribution, seed: u64, offset: u64) -> Result<()> {
    const OP: &str = "random";
    check_input(OP, out, out)?;
    let (a, b) = match dist {
        Distribution::Normal { mean, std } => {
            // Draws reach 5.77 std from the mean: all must be finite.
            let reach = mean.abs() as f64 + 5.8 * std as f64;
            if !(mean.is_finite() && std.is_finite() && std >= 0.0 && reach < f32::MAX as f64) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "a normal needs a finite mean and std >= 0 whose draws (up to 5.8 std \
                         from the mean) are finite in f32, got {dist:?}"
                    ),
                ));
            }
            (mean, std)
        }
        Distribution::Uniform { low, high } => {
            // The kernel scales by high - low, which must be finite too.
            if !(low.is_finite() && high.is_finite() && low <= high && (high - low).is_finite()) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "a uniform needs finite low <= high and a finite width high - low, got {dist:?}"
                    ),
                ));
            }
            (low, high)
        }
    };
    let n = u32::try_from(out.len()).map_err(|_| {
        Error::invalid(
            OP,
            format!("{} elements is past the 2^32 one launch fills", out.len()),
        )
    })?;
    if offset.checked_add(n as u64).is_none() {
        return Err(Error::invalid(
            OP,
            format!("offset {offset} + {n} elements overflows the 64-bit stream index"),
        ));
    }
    let gpu = out.gpu();
    let spec = KernelSpec::new(OP, SOURCES, OP, BINDINGS).with(
        "NORMAL",
        Const::Bool(matches!(dist, Distribution::Normal { .. })),
    );
    let params = Params {
        n,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        offset_lo: offset as u32,
        offset_hi: (offset >> 32) as u32,
        a,
        b,
        _pad: 0,
    };
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[out.binding()],
        gpu.grid((n as u64).div_ceil(256))?,
    )
}

/// A tensor of `shape` filled with the first elements of the stream `seed` of `dist`.
pub fn random(gpu: &Gpu, shape: &[usize], dist: Distribution, seed: u64) -> Result<Tensor> {
    let out = Tensor::uninit(gpu, shape, DType::F32)?;
    random_fill(&out, dist, seed, 0)?;
    Ok(out)
}

/// Normal samples of `shape` with this mean and standard deviation (see [`random_fill`]).
pub fn random_normal(gpu: &Gpu, shape: &[usize], mean: f32, std: f32, seed: u64) -> Result<Tensor> {
    random(gpu, shape, Distribution::Normal { mean, std }, seed)
}

/// Uniform samples of `shape` on (low, high) (see [`random_fill`]).
pub fn random_uniform(
    gpu: &Gpu,
    shape: &[usize],
    low: f32,
    high: f32,
    seed: u64,
) -> Result<Tensor> {
    random(gpu, shape, Distribution::Uniform { low, high }, seed)
}
