//! Real-to-complex and complex-to-real transforms around a complex FFT
//! (`shaders/fft_real.wgsl`): even lengths by the half-length complex transform, odd lengths
//! through the full-length one.

use bytemuck::{Pod, Zeroable};

use super::stockham::{Stockham, is_smooth};
use super::{ComplexFft, Layout, Scratch, binding_of, twiddle_table};
use crate::error::Result;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::gpu::{Binding, Gpu, PooledBuffer};

const SOURCES: &[&str] = &[include_str!("../../../shaders/fft_real.wgsl")];
const BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
/// Invocations per workgroup of the shader's kernels.
const WORKGROUP: u32 = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    half: u32,
    total: u32,
    scale: f32,
    weight: f32,
    _pad: u32,
}

/// A planned batch of real transforms of length n over a [`Layout`] of the real signal.
pub(crate) struct RealFft {
    gpu: Gpu,
    layout: Layout,
    /// Length h = n/2 for even n, n for odd n, over the same outer and inner.
    core: ComplexFft,
    /// W_n^k for k <= n/2 (one unused value for odd n).
    table: (PooledBuffer, u64),
    /// The complex signal the core reads or writes when it cannot alias the real tensor: along
    /// a strided axis (even n) and for odd n.
    packed: Option<Scratch>,
    /// The core's spectrum, unless the core fuses the pre- and post-processing.
    spectrum: Option<Scratch>,
}

impl RealFft {
    pub(crate) fn new(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
    ) -> Result<RealFft> {
        let n = layout.n;
        let even = n.is_multiple_of(2);
        let core_layout = Layout {
            n: if even { n / 2 } else { n },
            ..layout
        };
        let table = twiddle_table(gpu, n, if even { n / 2 + 1 } else { 1 })?;
        let packed = if even && layout.inner == 1 {
            None
        } else {
            Some(Scratch::new(gpu, op, core_layout.values())?)
        };
        let core = if even && layout.inner == 1 && is_smooth(core_layout.n) {
            ComplexFft::Stockham(Stockham::with_real(gpu, op, core_layout, block)?)
        } else {
            ComplexFft::new(gpu, op, core_layout, block)?
        };
        // A fused core needs no spectrum between kernels.
        let spectrum = match &core {
            ComplexFft::Stockham(s) if s.fuses_real() => None,
            _ => Some(Scratch::new(gpu, op, core_layout.values())?),
        };
        Ok(RealFft {
            gpu: gpu.clone(),
            layout,
            core,
            table,
            packed,
            spectrum,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let how = if self.layout.n.is_multiple_of(2) {
            "half-length complex"
        } else {
            "full-length complex"
        };
        let fused = if self.fused().is_some() {
            ", fused"
        } else {
            ""
        };
        format!("real via {how} {}{fused}", self.core.describe())
    }

    /// The core, when it runs the whole transform in one pass with the pre- and
    /// post-processing fused in.
    fn fused(&self) -> Option<&Stockham> {
        match &self.core {
            ComplexFft::Stockham(s) if s.fuses_real() => Some(s),
            _ => None,
        }
    }

    fn spec(&self, entry: &'static str) -> KernelSpec {
        let l = self.layout;
        KernelSpec::new("fft_real", SOURCES, entry, BINDINGS)
            .with("NREAL", Const::U32(l.n as u32))
            .with("HALF", Const::U32((l.n / 2) as u32))
            .with("INNER", Const::U32(l.inner as u32))
    }

    /// Every kernel variant the plan's records can dispatch.
    pub(crate) fn kernels(&self) -> Vec<KernelSpec> {
        let mut out = self.core.kernels();
        if self.fused().is_none() {
            let entries: &[&'static str] = match (self.even(), self.layout.inner == 1) {
                (true, true) => &["r2c_post", "c2r_pre"],
                (true, false) => &["pack_real", "r2c_post", "c2r_pre", "unpack_real"],
                (false, _) => &["promote_real", "r2c_post_odd", "c2r_pre_odd", "real_part"],
            };
            out.extend(entries.iter().map(|&e| self.spec(e)));
        }
        out
    }

    fn even(&self) -> bool {
        self.layout.n.is_multiple_of(2)
    }

    /// Records one kernel of the shader writing `total` values.
    fn launch(
        &self,
        entry: &'static str,
        total: usize,
        scale: f32,
        weight: f32,
        src: Binding<'_>,
        dst: Binding<'_>,
    ) -> Result<()> {
        let l = self.layout;
        let params = Params {
            outer: l.outer as u32,
            n: l.n as u32,
            inner: l.inner as u32,
            half: (l.n / 2) as u32,
            total: total as u32,
            scale,
            weight,
            _pad: 0,
        };
        let spec = self.spec(entry);
        let table = binding_of(&self.table.0, self.table.1);
        let groups = self.gpu.grid((total as u32).div_ceil(WORKGROUP) as u64)?;
        self.gpu.dispatch(
            &spec,
            bytemuck::bytes_of(&params),
            &[src, table, dst],
            groups,
        )
    }

    fn spectrum(&self) -> Binding<'_> {
        self.spectrum
            .as_ref()
            .expect("planned when the core does not fuse the real transform")
            .binding()
    }

    fn packed(&self) -> Binding<'_> {
        self.packed
            .as_ref()
            .expect("planned when the core cannot alias the real tensor")
            .binding()
    }

    /// Records `y = scale * w ⊙ R x`: the n/2+1 bins of the real `x`, interior bins times
    /// `weight`.
    pub(crate) fn forward(
        &self,
        x: Binding<'_>,
        y: Binding<'_>,
        scale: f32,
        weight: f32,
    ) -> Result<()> {
        if let Some(core) = self.fused() {
            return core.record_real(x, y, false, scale, weight);
        }
        let l = self.layout;
        let rows = l.outer * l.inner;
        let bins = rows * (l.n / 2 + 1);
        let spectrum = self.spectrum();
        if self.even() {
            let z = if l.inner == 1 {
                x // n reals are n/2 interleaved complex values already
            } else {
                let packed = self.packed();
                self.launch("pack_real", rows * l.n / 2, 1.0, 1.0, x, packed)?;
                packed
            };
            self.core.record(z, spectrum, false, 1.0)?;
            self.launch("r2c_post", bins, scale, weight, spectrum, y)
        } else {
            let packed = self.packed();
            self.launch("promote_real", l.values(), 1.0, 1.0, x, packed)?;
            self.core.record(packed, spectrum, false, 1.0)?;
            self.launch("r2c_post_odd", bins, scale, weight, spectrum, y)
        }
    }

    /// Records `y = scale * C (w ⊙ x)`: the real signal of the n/2+1 bins `x` (unnormalised
    /// inverse of the Hermitian spectrum, edge bins' imaginary parts ignored), interior bins
    /// times `weight` first.
    pub(crate) fn inverse(
        &self,
        x: Binding<'_>,
        y: Binding<'_>,
        scale: f32,
        weight: f32,
    ) -> Result<()> {
        if let Some(core) = self.fused() {
            return core.record_real(x, y, true, scale, weight);
        }
        let l = self.layout;
        let spectrum = self.spectrum();
        if self.even() {
            let rows = l.outer * l.inner;
            self.launch("c2r_pre", rows * l.n / 2, scale, weight, x, spectrum)?;
            if l.inner == 1 {
                self.core.record(spectrum, y, true, 1.0)
            } else {
                let packed = self.packed();
                self.core.record(spectrum, packed, true, 1.0)?;
                self.launch("unpack_real", l.values(), 1.0, 1.0, packed, y)
            }
        } else {
            let packed = self.packed();
            self.launch("c2r_pre_odd", l.values(), scale, weight, x, spectrum)?;
            self.core.record(spectrum, packed, true, 1.0)?;
            self.launch("real_part", l.values(), 1.0, 1.0, packed, y)
        }
    }
}
