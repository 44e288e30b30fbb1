//! Batched FFTs of any length, complex and real, along any axis (`shaders/fft*.wgsl`).
//!
//! An [`FftPlan`] is built once for a signal shape, an axis, a [`FftKind`] and a [`FftNorm`]:
//! it chooses the algorithm, uploads its twiddle tables (computed in f64) and owns its scratch
//! buffers, so executing it allocates nothing but the output tensor (and not even that with
//! [`FftPlan::execute_into`]).
//!
//! How a length is computed:
//! - 7-smooth lengths (only prime factors 2, 3, 5, 7) that fit one workgroup's memory (4096
//!   complex values with 32 KiB): one Stockham pass, one read and one write of global memory
//!   per element. The kernel is specialised per plan: every stage's radix (2, 4, 8, 16, 3, 5 or 7),
//!   stride and twiddle offset is a compile-time constant, so loops unroll and a butterfly's
//!   values stay in registers; the first stage reads global memory and the last one writes it
//!   directly, and the stages' twiddles come from a per-plan table computed in f64.
//! - longer 7-smooth lengths: several such passes whose lengths multiply to n (four-step),
//!   each a read and a write.
//! - any other length: Bluestein's algorithm, through FFTs of a 7-smooth length of at least
//!   2n - 1.
//! - real transforms of even length n: a complex transform of length n/2 plus a step that
//!   separates the even and odd halves, fused into the same kernel when the transform is one
//!   pass along contiguous rows (a separate pass otherwise); of odd length: the complex
//!   transform of length n.
//!
//! [`FftPlan`] documents the transforms' definitions and their adjoints (gradients).

mod bluestein;
mod real;
mod stockham;

use std::sync::Mutex;

use bluestein::Bluestein;
use real::RealFft;
use stockham::Stockham;

use super::fits_u32;
use crate::error::{Error, Result};
use crate::gpu::kernel::KernelSpec;
use crate::gpu::{Binding, Gpu, PooledBuffer};
use crate::tensor::{DType, Tensor, element_count};

const OP: &str = "fft";

/// Which transform a plan computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FftKind {
    /// Complex to complex, `exp(-2πi jk/n)`.
    Forward,
    /// Complex to complex, `exp(+2πi jk/n)`.
    Inverse,
    /// Real to complex: `n` real values to `n/2 + 1` bins.
    RealForward,
    /// Complex to real: `n/2 + 1` bins to `n` real values.
    RealInverse,
}

impl FftKind {
    /// All kinds.
    pub const ALL: [FftKind; 4] = [
        FftKind::Forward,
        FftKind::Inverse,
        FftKind::RealForward,
        FftKind::RealInverse,
    ];

    /// Whether the kind goes from the signal to the spectrum.
    pub fn is_forward(self) -> bool {
        matches!(self, FftKind::Forward | FftKind::RealForward)
    }

    /// Whether the kind has a real side.
    pub fn is_real(self) -> bool {
        matches!(self, FftKind::RealForward | FftKind::RealInverse)
    }
}

/// Scaling of the transforms, as numpy's `norm` argument names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FftNorm {
    /// Forward unscaled, inverse scaled by `1/n`.
    #[default]
    Backward,
    /// Both scaled by `1/√n`: the transforms are unitary.
    Ortho,
    /// Forward scaled by `1/n`, inverse unscaled.
    Forward,
}

impl FftNorm {
    /// All normalisations.
    pub const ALL: [FftNorm; 3] = [FftNorm::Backward, FftNorm::Ortho, FftNorm::Forward];

    /// The factor a transform of `kind` and length `n` is multiplied by.
    pub fn scale(self, kind: FftKind, n: usize) -> f64 {
        let n = n as f64;
        match (self, kind.is_forward()) {
            (FftNorm::Ortho, _) => 1.0 / n.sqrt(),
            (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0,
            (FftNorm::Backward, false) | (FftNorm::Forward, true) => 1.0 / n,
        }
    }
}

/// Blocks (values a Stockham pass's workgroup aims for, several short rows to a workgroup)
/// measured beside the rule's [`stockham::BLOCK`] when a plan is tuned.
const TUNED_BLOCKS: [usize; 4] = [512, 1024, 4096, 8192];
/// Plans of fewer values take the rule's block unmeasured (over in microseconds on a GPU);
/// plans of more are not measured either: tuning holds a candidate plan's scratch and two
/// signals of the plan's size beside the plan it keeps.
const TUNED_VALUES: std::ops::RangeInclusive<usize> = (1 << 18)..=(1 << 24);

/// The plan `build` makes of the block measured fastest for this transform's bucket on the
/// adapter (measured now, on random signals, if the bucket is new), or of the rule's block
/// where tuning is off ([`crate::Tuning`]) or the plan is outside [`TUNED_VALUES`].
fn tuned(
    gpu: &Gpu,
    kind: FftKind,
    layout: Layout,
    build: impl Fn(usize) -> Result<FftPlan>,
) -> Result<FftPlan> {
    if !TUNED_VALUES.contains(&layout.values()) {
        return build(stockham::BLOCK);
    }
    let mut candidates = vec![stockham::BLOCK];
    candidates.extend(TUNED_BLOCKS);
    // The kernels are specialised per length; the batch and the stride of the axis set how
    // many columns a workgroup can gather.
    let key = format!(
        "fft {kind:?} n{} outer{} inner{}",
        layout.n,
        layout.outer.next_power_of_two(),
        layout.inner.next_power_of_two()
    );
    // One candidate plan at a time: `Gpu::tune` runs each candidate's runs back to back, so a
    // plan is built (outside the timings) when its first run comes.
    let mut current: Option<(usize, FftPlan)> = None;
    let mut signals: Option<(Tensor, Tensor)> = None;
    let chosen = gpu.tune(
        key,
        &candidates,
        |block| format!("block {block}"),
        |block| {
            if current.as_ref().is_none_or(|(b, _)| *b != block) {
                current = None; // the last candidate's scratch goes before the next is built
                current = Some((block, build(block)?));
            }
            let plan = &current.as_ref().expect("built above").1;
            if signals.is_none() {
                let x = Tensor::uninit(gpu, &plan.input_shape(), plan.input_dtype())?;
                let uniform = super::Distribution::Uniform {
                    low: -1.0,
                    high: 1.0,
                };
                super::random_fill(&x.flat_f32(), uniform, 0, 0)?;
                let y = Tensor::uninit(gpu, &plan.output_shape(), plan.output_dtype())?;
                signals = Some((x, y));
            }
            let (x, y) = signals.as_ref().expect("made above");
            plan.execute_into(x, y)?;
            Ok(y.clone())
        },
    )?;
    match current {
        Some((block, plan)) if block == chosen => Ok(plan),
        // Its kernels are compiled already, when they were measured.
        _ => build(chosen),
    }
}

/// A tensor of shape `[outer, n, inner]`: the transforms run along the middle axis.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
}

impl Layout {
    /// Transforms along `axis` of `shape`, or `None` where a product overflows.
    pub(crate) fn along(shape: &[usize], axis: usize) -> Option<Layout> {
        Some(Layout {
            outer: element_count(&shape[..axis])?,
            n: shape[axis],
            inner: element_count(&shape[axis + 1..])?,
        })
    }

    pub(crate) fn values(&self) -> usize {
        self.outer * self.n * self.inner
    }
}

/// A plan-owned buffer of complex values.
pub(crate) struct Scratch {
    buffer: PooledBuffer,
    bytes: u64,
}

impl Scratch {
    pub(crate) fn new(gpu: &Gpu, op: &'static str, values: usize) -> Result<Scratch> {
        fits_u32(op, "scratch values", values)?;
        let bytes = values as u64 * DType::C32.size();
        gpu.check_buffer_size(&format!("{op} scratch of {values} complex values"), bytes)?;
        Ok(Scratch {
            buffer: gpu.storage_buffer(bytes)?,
            bytes,
        })
    }

    pub(crate) fn binding(&self) -> Binding<'_> {
        binding_of(&self.buffer, self.bytes)
    }
}

/// The first `bytes` of a pooled buffer, rounded up to whole vec4s as tensors bind.
pub(crate) fn binding_of(pooled: &PooledBuffer, bytes: u64) -> Binding<'_> {
    let buffer = pooled.buffer();
    Binding {
        buffer,
        offset: 0,
        size: bytes.next_multiple_of(16).max(16).min(buffer.size()),
        writes: pooled.writes(),
    }
}

/// Uploads complex values to a new buffer.
pub(crate) fn upload(
    gpu: &Gpu,
    op: &'static str,
    values: &[[f32; 2]],
) -> Result<(PooledBuffer, u64)> {
    let bytes = std::mem::size_of_val(values) as u64;
    gpu.check_buffer_size(&format!("{op} table of {} values", values.len()), bytes)?;
    let buffer = gpu.storage_buffer(bytes)?;
    gpu.write(buffer.buffer(), 0, bytemuck::cast_slice(values))?;
    Ok((buffer, bytes))
}

/// `W_n^t = exp(-2πi t/n)` for `t < count`, computed in f64 and rounded once to f32.
pub(crate) fn twiddle_table(gpu: &Gpu, n: usize, count: usize) -> Result<(PooledBuffer, u64)> {
    let values: Vec<[f32; 2]> = (0..count)
        .map(|t| {
            let (sin, cos) = (-2.0 * std::f64::consts::PI * (t % n) as f64 / n as f64).sin_cos();
            [cos as f32, sin as f32]
        })
        .collect();
    upload(gpu, OP, &values)
}

/// A batched complex FFT of one length, by whichever algorithm fits it.
pub(crate) enum ComplexFft {
    Stockham(Stockham),
    Bluestein(Box<Bluestein>),
}

impl ComplexFft {
    /// The plan of `layout`, its Stockham passes' workgroups aiming for `block` values each.
    pub(crate) fn new(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
    ) -> Result<ComplexFft> {
        Ok(if stockham::is_smooth(layout.n) {
            ComplexFft::Stockham(Stockham::new(gpu, op, layout, block)?)
        } else {
            ComplexFft::Bluestein(Box::new(Bluestein::new(gpu, op, layout, block)?))
        })
    }

    /// Records `dst = scale * DFT(src)`, or the unnormalised inverse DFT times `scale` when
    /// `conj` (computed as `conj(DFT(conj(src)))`).
    pub(crate) fn record(
        &self,
        src: Binding<'_>,
        dst: Binding<'_>,
        conj: bool,
        scale: f32,
    ) -> Result<()> {
        match self {
            ComplexFft::Stockham(s) => s.record(src, dst, conj, scale),
            ComplexFft::Bluestein(b) => b.record(src, dst, conj, scale),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            ComplexFft::Stockham(s) => s.describe(),
            ComplexFft::Bluestein(b) => b.describe(),
        }
    }

    /// Every kernel variant its records can dispatch.
    pub(crate) fn kernels(&self) -> Vec<KernelSpec> {
        match self {
            ComplexFft::Stockham(s) => s.kernels(),
            ComplexFft::Bluestein(b) => b.kernels(),
        }
    }
}

enum Engine {
    Complex(ComplexFft),
    Real(RealFft),
}

/// A batched FFT planned once and executed many times.
///
/// Built for the shape of the signal (the time or space domain, with the transform length
/// `n` at `axis`), it transforms tensors of [`FftPlan::input_shape`] into
/// [`FftPlan::output_shape`]. The spectrum of a real transform has `n/2 + 1` at `axis`.
/// Along the last axis every row is one transform; along another axis, a tensor
/// `[outer, n, inner]` is transformed in place of layout, with neighbouring `inner` columns
/// handled together (no transposes). A 2-D FFT is two plans.
///
/// # Definitions
///
/// With `W = exp(-2πi/n)` and `s` the plan's [`FftPlan::scale`]:
/// - [`FftKind::Forward`]: `y_k = s Σ_j x_j W^{jk}` (complex in, complex out).
/// - [`FftKind::Inverse`]: `y_j = s Σ_k x_k W^{-jk}`.
/// - [`FftKind::RealForward`]: the forward transform of a real signal, keeping the
///   `n/2 + 1` bins `k = 0 ..= n/2` (the others are their conjugates).
/// - [`FftKind::RealInverse`]: the real signal whose spectrum is the Hermitian extension of
///   the `n/2 + 1` given bins: `y_j = s Re(Σ_k c_k x_k W^{-jk})` over `k = 0 ..= n/2`, with
///   `c_k = 1` for the edge bins (`k = 0`, and `k = n/2` when n is even) and 2 for the
///   interior ones. The imaginary parts of the edge bins are ignored, as numpy does.
///
/// # Gradients
///
/// [`FftPlan::adjoint`] applies the adjoint `F*` of the plan's transform `F`, the map that
/// backpropagation needs: if `y = F x` and `g` is the gradient of a real loss with respect
/// to `y` (real and imaginary parts as separate real variables), `F* g` is its gradient with
/// respect to `x`. It satisfies `<F x, y> = <x, F* y>` for the real inner product
/// `<a, b> = Re Σ conj(a_i) b_i`:
/// - complex forward with scale `s`: `F* = s ×` the unnormalised inverse DFT (and the
///   inverse's adjoint is `s ×` the unnormalised forward DFT). For `ortho`, `F* = F⁻¹`.
/// - real forward with scale `s`: `F* g = s × C(w ⊙ g)`, where `C` is the unnormalised real
///   inverse above and `w_k = 1/2` on the interior bins, 1 on the edge bins. Because `C`
///   doubles the interior bins, this is `s Re(Σ_k g_k W^{-jk})` over `k = 0 ..= n/2`: every
///   kept bin counted once, and the imaginary parts of the edge bins' gradients (which no
///   real input can move) dropped.
/// - real inverse with scale `s`: `F* g = s × (w ⊙ R g)`, where `R` is the unnormalised real
///   forward transform and `w_k = 2` on the interior bins, 1 on the edge bins: each interior
///   bin stands for itself and its conjugate twin. The edge bins' gradients come out real,
///   as the transform ignores their imaginary parts.
///
/// # Example
///
/// ```
/// use percept::{Gpu, Tensor, ops::{FftKind, FftNorm, FftPlan}};
/// let gpu = Gpu::new()?;
/// // Two signals of length 4 along the last axis.
/// let plan = FftPlan::new(&gpu, FftKind::RealForward, &[2, 4], 1, FftNorm::Backward)?;
/// let x = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], &[2, 4])?;
/// let y = plan.execute(&x)?; // [2, 3] complex bins
/// assert_eq!(y.shape(), &[2, 3]);
/// let want = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [4.0, 0.0], [0.0, 0.0], [0.0, 0.0]];
/// for (got, want) in y.to_complex_vec()?.iter().zip(want) {
///     assert!((got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6);
/// }
/// # Ok::<(), percept::Error>(())
/// ```
pub struct FftPlan {
    gpu: Gpu,
    kind: FftKind,
    norm: FftNorm,
    shape: Vec<usize>,
    axis: usize,
    layout: Layout,
    engine: Engine,
    /// Held while one transform is recorded: its passes share the plan's scratch buffers, so
    /// two threads' passes must not interleave.
    recording: Mutex<()>,
}

impl std::fmt::Debug for FftPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftPlan")
            .field("kind", &self.kind)
            .field("norm", &self.norm)
            .field("shape", &self.shape)
            .field("axis", &self.axis)
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

impl FftPlan {
    /// Plans transforms of `kind` along `axis` of signals of `shape` (`shape[axis]` is the
    /// length `n`; for [`FftKind::RealInverse`] too, `shape` is that of the real output).
    ///
    /// Errors when the shape is empty or has a zero dimension, when the axis is out of range,
    /// and when the tensors or scratch buffers would pass the adapter's limits.
    ///
    /// With tuning on ([`crate::Tuning`]), building the first plan of 2^18 to 2^24 values in a
    /// bucket (kind, length, and the batch and stride rounded up to powers of two) also times
    /// its variants on random signals: how many values each workgroup of its passes takes
    /// (several short rows to a workgroup, 512 to 8192). Every variant does the same arithmetic
    /// per column.
    pub fn new(
        gpu: &Gpu,
        kind: FftKind,
        shape: &[usize],
        axis: usize,
        norm: FftNorm,
    ) -> Result<FftPlan> {
        if axis >= shape.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "axis {axis} is out of range for shape {shape:?} ({} dimensions)",
                    shape.len()
                ),
            ));
        }
        let n = shape[axis];
        if n == 0 {
            return Err(Error::invalid(
                OP,
                format!("the transform length (shape[{axis}] of {shape:?}) is 0"),
            ));
        }
        if let Some(d) = shape.iter().position(|&d| d == 0) {
            return Err(Error::invalid(
                OP,
                format!("the batch is empty: dimension {d} of shape {shape:?} is 0"),
            ));
        }
        let overflow = || Error::invalid(OP, format!("shape {shape:?} overflows"));
        let layout = Layout::along(shape, axis).ok_or_else(overflow)?;
        let values = element_count(shape).ok_or_else(overflow)?;
        // Every tensor must be indexable by u32 and fit the adapter (scratch buffers are
        // checked as they are planned). The complex side is the larger one.
        let complex_values = if kind.is_real() {
            values / n * (n / 2 + 1)
        } else {
            values
        };
        fits_u32(OP, "elements", complex_values.max(values))?;
        gpu.check_buffer_size(
            &format!("an fft tensor of shape {shape:?}"),
            complex_values as u64 * DType::C32.size(),
        )?;
        let plan = tuned(gpu, kind, layout, |block| {
            FftPlan::with_block(gpu, kind, shape, axis, norm, layout, block)
        })?;
        let kernels = match &plan.engine {
            Engine::Real(r) => r.kernels(),
            Engine::Complex(c) => c.kernels(),
        };
        for kernel in &kernels {
            gpu.prepare(kernel)?;
        }
        Ok(plan)
    }

    /// The plan of a validated `shape` whose Stockham passes' workgroups aim for `block`
    /// values each ([`stockham::BLOCK`] unless tuned).
    fn with_block(
        gpu: &Gpu,
        kind: FftKind,
        shape: &[usize],
        axis: usize,
        norm: FftNorm,
        layout: Layout,
        block: usize,
    ) -> Result<FftPlan> {
        let engine = if kind.is_real() {
            Engine::Real(RealFft::new(gpu, OP, layout, block)?)
        } else {
            Engine::Complex(ComplexFft::new(gpu, OP, layout, block)?)
        };
        Ok(FftPlan {
            gpu: gpu.clone(),
            kind,
            norm,
            shape: shape.to_vec(),
            axis,
            layout,
            engine,
            recording: Mutex::new(()),
        })
    }

    /// The transform length.
    pub fn n(&self) -> usize {
        self.layout.n
    }

    /// What the plan computes.
    pub fn kind(&self) -> FftKind {
        self.kind
    }

    /// How it is scaled.
    pub fn norm(&self) -> FftNorm {
        self.norm
    }

    /// The axis transformed.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The factor the transform is multiplied by (see [`FftNorm`]).
    pub fn scale(&self) -> f64 {
        self.norm.scale(self.kind, self.layout.n)
    }

    /// The algorithm chosen, in words (e.g. `stockham 1024x1024 (4, 4 per workgroup)`: the
    /// lengths of the passes and the columns each workgroup of a pass transforms).
    pub fn algorithm(&self) -> String {
        match &self.engine {
            Engine::Complex(c) => c.describe(),
            Engine::Real(r) => r.describe(),
        }
    }

    fn signal_dtype(&self) -> DType {
        if self.kind.is_real() {
            DType::F32
        } else {
            DType::C32
        }
    }

    fn spectrum_shape(&self) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if self.kind.is_real() {
            shape[self.axis] = self.layout.n / 2 + 1;
        }
        shape
    }

    /// Shape of the tensors [`FftPlan::execute`] accepts.
    pub fn input_shape(&self) -> Vec<usize> {
        if self.kind.is_forward() {
            self.shape.clone()
        } else {
            self.spectrum_shape()
        }
    }

    /// Shape of the tensors [`FftPlan::execute`] returns.
    pub fn output_shape(&self) -> Vec<usize> {
        if self.kind.is_forward() {
            self.spectrum_shape()
        } else {
            self.shape.clone()
        }
    }

    /// Element type of the input: F32 for [`FftKind::RealForward`], C32 otherwise.
    pub fn input_dtype(&self) -> DType {
        if self.kind.is_forward() {
            self.signal_dtype()
        } else {
            DType::C32
        }
    }

    /// Element type of the output: F32 for [`FftKind::RealInverse`], C32 otherwise.
    pub fn output_dtype(&self) -> DType {
        if self.kind.is_forward() {
            DType::C32
        } else {
            self.signal_dtype()
        }
    }

    /// Records the transform of `x` into a new tensor.
    pub fn execute(&self, x: &Tensor) -> Result<Tensor> {
        let out = Tensor::uninit(&self.gpu, &self.output_shape(), self.output_dtype())?;
        self.execute_into(x, &out)?;
        Ok(out)
    }

    /// Records the transform of `x` into `out`, which must have the output's shape and dtype
    /// and not share `x`'s buffer.
    pub fn execute_into(&self, x: &Tensor, out: &Tensor) -> Result<()> {
        self.check("input", x, &self.input_shape(), self.input_dtype())?;
        self.check("output", out, &self.output_shape(), self.output_dtype())?;
        self.check_distinct(x, out)?;
        self.record(false, x.binding(), out.binding())
    }

    /// Records the adjoint transform of `dy` (a tensor like the output) into a new tensor like
    /// the input: the gradient with respect to the input, given the gradient `dy` with respect
    /// to the output (see [`FftPlan`]'s section on gradients for its definition and scaling).
    ///
    /// ```
    /// use percept::{Gpu, Tensor, ops::{FftKind, FftNorm, FftPlan}};
    /// let gpu = Gpu::new()?;
    /// let plan = FftPlan::new(&gpu, FftKind::Forward, &[3], 0, FftNorm::Ortho)?;
    /// let x = Tensor::from_complex(&gpu, &[[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]], &[3])?;
    /// // The orthonormal transform is unitary: its adjoint is its inverse.
    /// let back = plan.adjoint(&plan.execute(&x)?)?.to_complex_vec()?;
    /// assert!(back.iter().zip([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]])
    ///     .all(|(a, b)| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6));
    /// # Ok::<(), percept::Error>(())
    /// ```
    pub fn adjoint(&self, dy: &Tensor) -> Result<Tensor> {
        let dx = Tensor::uninit(&self.gpu, &self.input_shape(), self.input_dtype())?;
        self.adjoint_into(dy, &dx)?;
        Ok(dx)
    }

    /// [`FftPlan::adjoint`] into `dx`, which must have the input's shape and dtype.
    pub fn adjoint_into(&self, dy: &Tensor, dx: &Tensor) -> Result<()> {
        self.check("gradient", dy, &self.output_shape(), self.output_dtype())?;
        self.check(
            "input gradient",
            dx,
            &self.input_shape(),
            self.input_dtype(),
        )?;
        self.check_distinct(dy, dx)?;
        self.record(true, dy.binding(), dx.binding())
    }

    fn check(&self, what: &str, t: &Tensor, shape: &[usize], dtype: DType) -> Result<()> {
        if !t.gpu().same(&self.gpu) {
            return Err(Error::invalid(
                OP,
                format!("the {what} tensor lives on another device than the plan"),
            ));
        }
        if t.dtype() != dtype {
            return Err(Error::invalid(
                OP,
                format!(
                    "the {what} must be {dtype:?} for a {:?} plan, got {:?}",
                    self.kind,
                    t.dtype()
                ),
            ));
        }
        if t.shape() != shape {
            return Err(Error::shape(
                OP,
                format!(
                    "the {what} must have shape {shape:?} for this {:?} plan of length {} \
                     along axis {}, got {:?}",
                    self.kind,
                    self.layout.n,
                    self.axis,
                    t.shape()
                ),
            ));
        }
        Ok(())
    }

    fn check_distinct(&self, src: &Tensor, dst: &Tensor) -> Result<()> {
        if src.shares_buffer(dst) {
            return Err(Error::invalid(
                OP,
                "the output must not share the input's buffer (the transform is out of place)",
            ));
        }
        Ok(())
    }

    /// Records the transform, or its adjoint, from `src` to `dst`.
    fn record(&self, adjoint: bool, src: Binding<'_>, dst: Binding<'_>) -> Result<()> {
        // A poisoned lock guards nothing broken: a panic mid-record leaves only GPU work queued.
        let _recording = self.recording.lock().unwrap_or_else(|e| e.into_inner());
        let scale = self.scale() as f32;
        match &self.engine {
            // The adjoint of a complex DFT is the opposite direction, with the same scale.
            Engine::Complex(c) => {
                let inverse = (self.kind == FftKind::Inverse) != adjoint;
                c.record(src, dst, inverse, scale)
            }
            Engine::Real(r) => match (self.kind, adjoint) {
                (FftKind::RealForward, false) => r.forward(src, dst, scale, 1.0),
                (FftKind::RealForward, true) => r.inverse(src, dst, scale, 0.5),
                (FftKind::RealInverse, false) => r.inverse(src, dst, scale, 1.0),
                _ => r.forward(src, dst, scale, 2.0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GpuOptions, Tuning, reference};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Every block tuning may choose plans the same transform: c2c along the last axis and a
    /// strided one, the fused real kernels, Bluestein and a multi-pass length.
    #[test]
    fn every_tuned_block_plans_a_correct_transform() {
        let gpu = crate::gpu::test_gpu(GpuOptions {
            tuning: Some(Tuning::Off),
            profile: Some(false),
            ..Default::default()
        });
        let cases: [(FftKind, &[usize], usize); 5] = [
            (FftKind::Forward, &[5, 1000], 1),
            (FftKind::Forward, &[3, 256, 7], 1),
            (FftKind::RealForward, &[9, 512], 1),
            (FftKind::Inverse, &[2, 1009], 1),
            (FftKind::Forward, &[2, 1 << 14], 1),
        ];
        for (kind, shape, axis) in cases {
            let values: usize = shape.iter().product();
            // Seeded uniform values: no period, so every row differs and a row-offset bug shows.
            let mut rng = StdRng::seed_from_u64(values as u64);
            let host: Vec<f32> = (0..2 * values)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            for block in std::iter::once(stockham::BLOCK).chain(TUNED_BLOCKS) {
                let layout = Layout::along(shape, axis).unwrap();
                let plan =
                    FftPlan::with_block(&gpu, kind, shape, axis, FftNorm::Backward, layout, block)
                        .unwrap();
                let case = format!("{kind:?} {shape:?} block {block}: {}", plan.algorithm());
                let (got, want): (Vec<f32>, Vec<f64>) = if kind.is_real() {
                    let x = Tensor::from_slice(&gpu, &host[..values], shape).unwrap();
                    let y = plan.execute(&x).unwrap().to_complex_vec().unwrap();
                    let want = reference::fft_r2c(&host[..values], shape, axis, FftNorm::Backward);
                    (y.concat(), want.concat())
                } else {
                    let pairs: Vec<[f32; 2]> = host.chunks(2).map(|p| [p[0], p[1]]).collect();
                    let x = Tensor::from_complex(&gpu, &pairs, shape).unwrap();
                    let y = plan.execute(&x).unwrap().to_complex_vec().unwrap();
                    let inverse = kind == FftKind::Inverse;
                    let want = reference::fft_c2c(&pairs, shape, axis, inverse, FftNorm::Backward);
                    (y.concat(), want.concat())
                };
                let err = reference::max_rel_err(&got, &want);
                assert!(err < 1e-5, "{case}: max_rel_err {err:.2e}");
            }
        }
    }
}
