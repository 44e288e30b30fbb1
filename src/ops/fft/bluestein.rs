//! Lengths with a prime factor above 7, by Bluestein's chirp-z algorithm
//! (`shaders/fft_bluestein.wgsl`): a convolution computed with smooth-length FFTs.

use bytemuck::{Pod, Zeroable};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;

use super::stockham::{BluesteinTables, Stockham, next_smooth};
use super::{Layout, Scratch, binding_of, upload};
use crate::error::Result;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::gpu::{Binding, Gpu, PooledBuffer};

const SOURCES: &[&str] = &[include_str!("../../../shaders/fft_bluestein.wgsl")];
const BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
/// Invocations per workgroup of the shader's kernels.
const WORKGROUP: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    m: u32,
    inner: u32,
    total: u32,
    conj_in: u32,
    conj_out: u32,
    scale: f32,
    _pad: u32,
}

/// A planned batched complex FFT of any length over a [`Layout`], through FFTs of a 7-smooth
/// length `m >= 2n - 1` (see [`padded_length`]).
pub(crate) struct Bluestein {
    gpu: Gpu,
    layout: Layout,
    m: usize,
    /// w_j = exp(-i pi j^2 / n), j < n.
    chirp: (PooledBuffer, u64),
    /// FFT_m of the wrapped conj(w), divided by m (folding in the inverse's normalisation).
    spectrum: (PooledBuffer, u64),
    fft: Stockham,
    a: Scratch,
    /// The second intermediate buffer of the unfused plan.
    b: Option<Scratch>,
}

/// The chirp exp(-i pi j^2 / n) for j < n, in f64; j^2 is reduced mod 2n first so that the
/// angle stays small and exact.
fn chirp(n: usize) -> Vec<Complex64> {
    (0..n)
        .map(|j| {
            let t = (j as u128 * j as u128 % (2 * n as u128)) as f64;
            Complex64::from_polar(1.0, -std::f64::consts::PI * t / n as f64)
        })
        .collect()
}

/// The convolution length, at least 2n - 1: a power of two (all radix-8 and radix-4 stages,
/// the fastest) unless a 7-smooth length saves a quarter or more.
fn padded_length(n: usize) -> usize {
    let least = 2 * n - 1;
    let power = least.next_power_of_two();
    let smooth = next_smooth(least);
    if 4 * smooth <= 3 * power {
        smooth
    } else {
        power
    }
}

fn to_f32(values: &[Complex64]) -> Vec<[f32; 2]> {
    values.iter().map(|c| [c.re as f32, c.im as f32]).collect()
}

impl Bluestein {
    pub(crate) fn new(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
    ) -> Result<Bluestein> {
        let n = layout.n;
        let m = padded_length(n);
        let rows = layout.outer * layout.inner;
        let padded = Layout {
            outer: rows,
            n: m,
            inner: 1,
        };
        // The padded rows' buffer first: past the adapter's limits it fails before the tables
        // of length m (gigabytes of host work for lengths near 1e8) are computed.
        let a = Scratch::new(gpu, op, padded.values())?;
        let w = chirp(n);
        let mut kernel = vec![Complex64::new(0.0, 0.0); m];
        for (j, wj) in w.iter().enumerate() {
            kernel[j] = wj.conj();
            if j > 0 {
                kernel[m - j] = wj.conj();
            }
        }
        FftPlanner::<f64>::new()
            .plan_fft_forward(m)
            .process(&mut kernel);
        for k in kernel.iter_mut() {
            *k /= m as f64;
        }
        let (w, kernel) = (to_f32(&w), to_f32(&kernel));
        let fft = Stockham::with_bluestein(
            gpu,
            op,
            padded,
            block,
            BluesteinTables {
                chirp: &w,
                spectrum: &kernel,
                inner: layout.inner,
            },
        )?;
        // The fused plan needs one intermediate buffer; the unfused one two.
        let b = if fft.fuses_bluestein() {
            None
        } else {
            Some(Scratch::new(gpu, op, padded.values())?)
        };
        Ok(Bluestein {
            gpu: gpu.clone(),
            layout,
            m,
            chirp: upload(gpu, op, &w)?,
            spectrum: upload(gpu, op, &kernel)?,
            fft,
            a,
            b,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let fused = if self.fft.fuses_bluestein() {
            ", fused"
        } else {
            ""
        };
        format!("bluestein via {} ({}{fused})", self.m, self.fft.describe())
    }

    fn spec(&self, entry: &'static str) -> KernelSpec {
        KernelSpec::new("fft_bluestein", SOURCES, entry, BINDINGS)
            .with("N", Const::U32(self.layout.n as u32))
            .with("M", Const::U32(self.m as u32))
            .with("INNER", Const::U32(self.layout.inner as u32))
    }

    /// Every kernel variant the plan's records can dispatch.
    pub(crate) fn kernels(&self) -> Vec<KernelSpec> {
        let mut out = self.fft.kernels();
        if !self.fft.fuses_bluestein() {
            out.extend(["chirp_pre", "pointwise", "chirp_post"].map(|e| self.spec(e)));
        }
        out
    }

    fn launch(&self, entry: &'static str, params: Params, bindings: &[Binding<'_>]) -> Result<()> {
        let spec = self.spec(entry);
        let groups = self
            .gpu
            .grid(params.total.div_ceil(WORKGROUP as u32) as u64)?;
        self.gpu
            .dispatch(&spec, bytemuck::bytes_of(&params), bindings, groups)
    }

    /// Records `dst = scale * DFT(src)`, conjugating input and output when `conj` (the inverse).
    pub(crate) fn record(
        &self,
        src: Binding<'_>,
        dst: Binding<'_>,
        conj: bool,
        scale: f32,
    ) -> Result<()> {
        if self.fft.fuses_bluestein() {
            return self
                .fft
                .record_bluestein(src, self.a.binding(), dst, conj, scale);
        }
        let l = self.layout;
        let padded_values = (l.outer * l.inner * self.m) as u32;
        let base = Params {
            n: l.n as u32,
            m: self.m as u32,
            inner: l.inner as u32,
            total: padded_values,
            conj_in: u32::from(conj),
            conj_out: u32::from(conj),
            scale,
            _pad: 0,
        };
        let chirp = binding_of(&self.chirp.0, self.chirp.1);
        let spectrum = binding_of(&self.spectrum.0, self.spectrum.1);
        let a = self.a.binding();
        let b = self
            .b
            .as_ref()
            .expect("planned when the steps are not fused")
            .binding();
        self.launch("chirp_pre", base, &[src, chirp, a])?;
        self.fft.record(a, b, false, 1.0)?;
        self.launch("pointwise", base, &[spectrum, spectrum, b])?;
        // The unnormalised inverse: conj(FFT(conj(.))); B carries the 1/m.
        self.fft.record(b, a, true, 1.0)?;
        let post = Params {
            total: l.values() as u32,
            ..base
        };
        self.launch("chirp_post", post, &[a, chirp, dst])
    }
}
