//! Batched complex FFTs of 7-smooth lengths (`shaders/fft.wgsl`): one Stockham pass when the
//! transform fits a workgroup's memory, several passes (four-step) beyond.

use bytemuck::{Pod, Zeroable};

use super::{Layout, Scratch, binding_of, upload};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::gpu::{Binding, Gpu, PooledBuffer};

const SOURCES: &[&str] = &[include_str!("../../../shaders/fft.wgsl")];
const BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];

/// Radices the kernel has butterflies for.
const PRIMES: [usize; 4] = [2, 3, 5, 7];
/// Values a pass's workgroup aims for when rows are short (the fixed rule's block): enough
/// columns per workgroup that small transforms still move long runs of memory per workgroup.
pub(crate) const BLOCK: usize = 2048;
/// Columns a column-wise pass wants per workgroup, so that each of its strided loads reads a
/// run of at least this many neighbouring complex values.
const MIN_COALESCED_COLUMNS: usize = 8;
/// Stages one pass can have: the shader has per-stage constants for seven stages and the last.
const MAX_STAGES: usize = 8;
/// Upper bound on invocations per workgroup (and the adapter's own limit below that).
const MAX_WORKGROUP: usize = 256;

/// Whether `n` factors into 2, 3, 5 and 7 only.
pub(crate) fn is_smooth(mut n: usize) -> bool {
    if n == 0 {
        return false;
    }
    for p in PRIMES {
        while n.is_multiple_of(p) {
            n /= p;
        }
    }
    n == 1
}

/// The smallest 7-smooth number at least `n`.
pub(crate) fn next_smooth(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| is_smooth(m))
        .expect("smooth numbers are unbounded")
}

/// The stage radices of a smooth length inside one workgroup: the power of two in as few
/// stages of radix at most 16 as possible, split as evenly as possible (4096 = 16 x 16 x 16,
/// 1024 = 16 x 8 x 8, 512 = 8 x 8 x 8), larger radices first, then the odd primes.
fn radices(len: usize) -> Vec<usize> {
    let twos = len.trailing_zeros() as usize;
    let mut m = len >> twos;
    let stages = twos.div_ceil(4);
    let mut out: Vec<usize> = (0..stages)
        .map(|s| 1 << (twos / stages + usize::from(s < twos % stages)))
        .collect();
    for r in [3, 5, 7] {
        while m.is_multiple_of(r) {
            out.push(r);
            m /= r;
        }
    }
    out
}

/// Divisors of a smooth `n`.
fn divisors(n: usize) -> Vec<usize> {
    let mut out = vec![1];
    let mut m = n;
    for p in PRIMES {
        let mut power = 0;
        while m.is_multiple_of(p) {
            m /= p;
            power += 1;
        }
        let known = out.len();
        let mut factor = 1;
        for _ in 0..power {
            factor *= p;
            for i in 0..known {
                out.push(out[i] * factor);
            }
        }
    }
    out
}

/// Whether one pass can have length `len`: it fits the workgroup's memory, and its stages fit
/// the shader's stage constants.
fn fits(len: usize, capacity: usize) -> bool {
    len <= capacity && radices(len).len() <= MAX_STAGES
}

/// Lengths of the passes of a smooth `n`, each one that [`fits`], as few and as balanced as
/// possible: 2^20 with a capacity of 4096 becomes 1024 x 1024.
fn pass_lengths(n: usize, capacity: usize) -> Option<Vec<usize>> {
    fn split(m: usize, parts: u32, capacity: usize) -> Option<Vec<usize>> {
        if parts == 1 {
            return fits(m, capacity).then(|| vec![m]);
        }
        let target = (m as f64).ln() / parts as f64;
        let mut candidates: Vec<usize> = divisors(m)
            .into_iter()
            .filter(|&d| d > 1 && fits(d, capacity))
            .collect();
        candidates.sort_by(|a, b| {
            ((*a as f64).ln() - target)
                .abs()
                .total_cmp(&((*b as f64).ln() - target).abs())
        });
        candidates.into_iter().find_map(|d| {
            let mut rest = split(m / d, parts - 1, capacity)?;
            rest.insert(0, d);
            Some(rest)
        })
    }
    (1..=16).find_map(|parts| split(n, parts, capacity))
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    columns: u32,
    conj_in: u32,
    conj_out: u32,
    scale: f32,
    weight: f32,
    _pad: [u32; 3],
}

/// Names of the per-stage constants of the shader: stages 0 ..= 6, the last one apart.
const RAD: [&str; MAX_STAGES - 1] = ["RAD0", "RAD1", "RAD2", "RAD3", "RAD4", "RAD5", "RAD6"];
const NS: [&str; MAX_STAGES - 1] = ["NS0", "NS1", "NS2", "NS3", "NS4", "NS5", "NS6"];
const TW: [&str; MAX_STAGES - 1] = ["TW0", "TW1", "TW2", "TW3", "TW4", "TW5", "TW6"];

/// The shader's REAL modes.
const COMPLEX: u32 = 0;
const REAL_FORWARD: u32 = 1;
const REAL_INVERSE: u32 = 2;

/// `W_n^t = exp(-2πi t/n)`, computed in f64 and rounded once to f32.
fn root(t: usize, n: usize) -> [f32; 2] {
    let (sin, cos) = (-2.0 * std::f64::consts::PI * (t % n) as f64 / n as f64).sin_cos();
    [cos as f32, sin as f32]
}

/// One pass: a compiled kernel variant and its launch.
struct Pass {
    len: usize,
    /// Columns (rows of the pass's length) per workgroup.
    cols: usize,
    spec: KernelSpec,
    columns: u32,
    workgroups: [u32; 3],
}

/// What a pass's kernel fuses in: the shader's REAL and BLUE modes and their constants.
#[derive(Clone, Copy)]
struct Fusion {
    real: u32,
    rtw: usize,
    blue: u32,
    bn: usize,
    binner: usize,
    chirp: usize,
    spec: usize,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion {
            real: COMPLEX,
            rtw: 0,
            blue: 0,
            bn: 1,
            binner: 1,
            chirp: 0,
            spec: 0,
        }
    }
}

/// Tables and shape of the Bluestein steps a plan can fuse ([`Stockham::with_bluestein`]).
pub(crate) struct BluesteinTables<'a> {
    /// The chirp w_j, j < n.
    pub chirp: &'a [[f32; 2]],
    /// The kernel's spectrum B, one value per element of the padded length.
    pub spectrum: &'a [[f32; 2]],
    /// The signals' inner extent.
    pub inner: usize,
}

/// The shape of one pass's kernel: everything but the fusions.
struct PassShape {
    len: usize,
    cols: usize,
    workgroup: usize,
    /// (radix, stride, twiddle offset) of each stage.
    stages: Vec<(usize, usize, usize)>,
    base: KernelSpec,
}

impl PassShape {
    /// The kernel variant with `fusion`'s pre- and post-processing.
    fn spec(&self, fusion: Fusion) -> KernelSpec {
        let mode = fusion.real;
        let stages = self.stages.len();
        // Registers of the stages whose outputs wait for a barrier: the middle ones, the first
        // one when the prologue fills workgroup memory, the last one before an epilogue.
        let mut regs = 16;
        for (s, &(r, _, _)) in self.stages.iter().enumerate() {
            let middle = s > 0 && s + 1 < stages;
            let waits = (s == 0 && stages > 1 && mode == REAL_INVERSE)
                || (s + 1 == stages && stages > 1 && mode == REAL_FORWARD);
            if middle || waits {
                regs = regs.max(16 * (self.cols * self.len / r).div_ceil(self.workgroup));
            }
        }
        let mut spec = self.base.clone();
        for s in 0..MAX_STAGES - 1 {
            let (r, ns, tw) = if s + 1 < stages {
                self.stages[s]
            } else {
                (1, 1, 0)
            };
            spec = spec
                .with(RAD[s], Const::U32(r as u32))
                .with(NS[s], Const::U32(ns as u32))
                .with(TW[s], Const::U32(tw as u32));
        }
        let (r, ns, tw) = self.stages[stages - 1];
        spec.with("RADL", Const::U32(r as u32))
            .with("NSL", Const::U32(ns as u32))
            .with("TWL", Const::U32(tw as u32))
            .with("REGS", Const::U32(regs as u32))
            .with("REAL", Const::U32(mode))
            .with("RTW", Const::U32(fusion.rtw as u32))
            .with("BLUE", Const::U32(fusion.blue))
            .with("BN", Const::U32(fusion.bn as u32))
            .with("BINNER", Const::U32(fusion.binner as u32))
            .with("CHIRP", Const::U32(fusion.chirp as u32))
            .with("SPEC", Const::U32(fusion.spec as u32))
    }
}

/// A planned batched complex FFT of a smooth length over a [`Layout`].
pub(crate) struct Stockham {
    gpu: Gpu,
    passes: Vec<Pass>,
    /// The single pass's variants that fuse the real transforms' pre- and post-processing
    /// (r2c, c2r), when planned.
    real: Option<Box<[KernelSpec; 2]>>,
    /// The single pass's variants that fuse Bluestein's steps (forward with the input chirp
    /// and the pointwise product, inverse with the output chirp), when planned.
    bluestein: Option<Box<[KernelSpec; 2]>>,
    twiddles: PooledBuffer,
    twiddle_bytes: u64,
    /// Holds the intermediate results when there are two or more passes.
    scratch: Option<Scratch>,
}

impl Stockham {
    /// A plan whose workgroups aim for `block` values each (see [`BLOCK`]).
    pub(crate) fn new(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
    ) -> Result<Stockham> {
        Stockham::plan(gpu, op, layout, block, false, None)
    }

    /// A plan of the padded length of Bluestein's algorithm (rows of `layout.n`, an inner
    /// extent of one) that can also run the whole algorithm in two passes, the chirps and the
    /// pointwise product fused in ([`Stockham::record_bluestein`]), when the length is one
    /// pass.
    pub(crate) fn with_bluestein(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
        tables: BluesteinTables<'_>,
    ) -> Result<Stockham> {
        Stockham::plan(gpu, op, layout, block, false, Some(tables))
    }

    /// A plan that can also run as the core of real transforms of length 2n with the
    /// pre- and post-processing fused into its pass ([`Stockham::record_real`]), when the
    /// transform is one pass along contiguous rows.
    pub(crate) fn with_real(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
    ) -> Result<Stockham> {
        Stockham::plan(gpu, op, layout, block, true, None)
    }

    fn plan(
        gpu: &Gpu,
        op: &'static str,
        layout: Layout,
        block: usize,
        real: bool,
        bluestein: Option<BluesteinTables<'_>>,
    ) -> Result<Stockham> {
        let n = layout.n;
        debug_assert!(is_smooth(n));
        let caps = gpu.capabilities();
        // Workgroup memory holds the real and the imaginary parts: 8 bytes per value.
        let capacity = caps.max_workgroup_storage_size as usize / 8;
        let max_workgroup = MAX_WORKGROUP.min(caps.max_invocations_per_workgroup as usize);
        let lengths = pass_lengths(n, capacity).ok_or_else(|| Error::Limit {
            what: format!("{op} of length {n} (passes of at most {capacity} values)"),
            requested: n as u64,
            limit: (capacity as u64).saturating_pow(16),
            // A length, in values: the name says how it follows from the byte limit.
            limit_name: "values: (max_compute_workgroup_storage_size / 8)^16",
        })?;
        // The twiddle table: W_n^t for the four-step pre-twiddles, then each stage's own.
        let mut table: Vec<[f32; 2]> = if lengths.len() > 1 {
            (0..n).map(|t| root(t, n)).collect()
        } else {
            Vec::new()
        };
        let mut shapes = Vec::with_capacity(lengths.len());
        let mut ns_global = 1;
        for &len in &lengths {
            let q = n / len * layout.inner;
            let columns = layout.outer * q;
            let load_rows = q == 1;
            let store_rows = ns_global == 1 && layout.inner == 1;
            let room = (capacity / len).max(1);
            let mut cols = (block / len).clamp(1, room);
            if !(load_rows && store_rows) {
                cols = cols.max(MIN_COALESCED_COLUMNS.min(room));
            }
            let cols = cols.min(columns).max(1);
            let mut stage_radices = radices(len);
            if stage_radices.is_empty() {
                stage_radices.push(1);
            }
            let max_radix = *stage_radices.iter().max().expect("at least one stage");
            let elements = cols * len;
            // One invocation per butterfly of the largest radix, in whole subgroups.
            let workgroup = elements
                .div_ceil(max_radix)
                .next_multiple_of(32)
                .min(max_workgroup);
            // Workgroup memory: one padding word per 32 values of a column and an odd column
            // stride where they fit, against bank conflicts; plain columns otherwise.
            let padded = len + len / 32;
            let (pad, stride) = if cols * (padded | 1) <= capacity {
                (true, if cols > 1 { padded | 1 } else { padded })
            } else {
                (false, len)
            };
            let base = KernelSpec::new("fft", SOURCES, "fft_pass", BINDINGS)
                .with("R", Const::U32(len as u32))
                .with("COLS", Const::U32(cols as u32))
                .with("WG", Const::U32(workgroup as u32))
                .with("STAGES", Const::U32(stage_radices.len() as u32))
                .with("LOAD_ROWS", Const::Bool(load_rows))
                .with("STORE_ROWS", Const::Bool(store_rows))
                .with("PAD", Const::Bool(pad))
                .with("CSTRIDE", Const::U32(stride as u32))
                .with("SMEM", Const::U32((cols * stride).max(1) as u32))
                .with("N", Const::U32(n as u32))
                .with("INNER", Const::U32(layout.inner as u32))
                .with("Q", Const::U32(q as u32))
                .with("NSG", Const::U32(ns_global as u32))
                .with("TWG", Const::U32((n / (ns_global * len)) as u32));
            let mut ns = 1;
            let mut stages = Vec::with_capacity(stage_radices.len());
            for &r in &stage_radices {
                let offset = table.len();
                if ns > 1 {
                    for k in 0..ns {
                        table.extend((1..r).map(|m| root(m * k, ns * r)));
                    }
                }
                stages.push((r, ns, offset));
                ns *= r;
            }
            shapes.push((
                PassShape {
                    len,
                    cols,
                    workgroup,
                    stages,
                    base,
                },
                columns,
            ));
            ns_global *= len;
        }
        let real = if real && shapes.len() == 1 && layout.inner == 1 {
            let rtw = table.len();
            table.extend((0..=n).map(|k| root(k, 2 * n)));
            let shape = &shapes[0].0;
            let real = |mode| Fusion {
                real: mode,
                rtw,
                ..Fusion::default()
            };
            Some(Box::new([
                shape.spec(real(REAL_FORWARD)),
                shape.spec(real(REAL_INVERSE)),
            ]))
        } else {
            None
        };
        let bluestein = match bluestein {
            Some(tables) if shapes.len() == 1 && layout.inner == 1 => {
                let chirp = table.len();
                table.extend_from_slice(tables.chirp);
                let spec = table.len();
                table.extend_from_slice(tables.spectrum);
                let blue = |mode| Fusion {
                    blue: mode,
                    bn: tables.chirp.len(),
                    binner: tables.inner,
                    chirp,
                    spec,
                    ..Fusion::default()
                };
                let shape = &shapes[0].0;
                Some(Box::new([shape.spec(blue(1)), shape.spec(blue(2))]))
            }
            _ => None,
        };
        let mut passes = Vec::with_capacity(shapes.len());
        for (shape, columns) in shapes {
            passes.push(Pass {
                len: shape.len,
                cols: shape.cols,
                spec: shape.spec(Fusion::default()),
                columns: columns as u32,
                workgroups: gpu.grid(columns.div_ceil(shape.cols) as u64)?,
            });
        }
        if table.is_empty() {
            table.push([1.0, 0.0]);
        }
        let (twiddles, twiddle_bytes) = upload(gpu, op, &table)?;
        let scratch = if passes.len() > 1 {
            Some(Scratch::new(gpu, op, layout.values())?)
        } else {
            None
        };
        Ok(Stockham {
            gpu: gpu.clone(),
            passes,
            real,
            bluestein,
            twiddles,
            twiddle_bytes,
            scratch,
        })
    }

    /// Whether [`Stockham::record_bluestein`] can run.
    pub(crate) fn fuses_bluestein(&self) -> bool {
        self.bluestein.is_some()
    }

    /// Records Bluestein's algorithm in two passes: `mid` = B ⊙ FFT(w ⊙ x) over rows of the
    /// padded length, then `dst` = `scale` × w ⊙ IFFT(mid) (unnormalised; B carries 1/m)
    /// for the first n elements, the input and the output conjugated when `conj`.
    pub(crate) fn record_bluestein(
        &self,
        src: Binding<'_>,
        mid: Binding<'_>,
        dst: Binding<'_>,
        conj: bool,
        scale: f32,
    ) -> Result<()> {
        let specs = self
            .bluestein
            .as_ref()
            .expect("planned with the Bluestein variants");
        let pass = &self.passes[0];
        let twiddles = binding_of(&self.twiddles, self.twiddle_bytes);
        let forward = Params {
            columns: pass.columns,
            conj_in: u32::from(conj),
            conj_out: 0,
            scale: 1.0,
            weight: 1.0,
            _pad: [0; 3],
        };
        self.gpu.dispatch(
            &specs[0],
            bytemuck::bytes_of(&forward),
            &[src, twiddles, mid],
            pass.workgroups,
        )?;
        let inverse = Params {
            conj_in: 1,
            conj_out: u32::from(conj),
            scale,
            ..forward
        };
        self.gpu.dispatch(
            &specs[1],
            bytemuck::bytes_of(&inverse),
            &[mid, twiddles, dst],
            pass.workgroups,
        )
    }

    /// Every kernel variant the plan's records can dispatch.
    pub(crate) fn kernels(&self) -> Vec<KernelSpec> {
        let fused = self
            .real
            .iter()
            .chain(&self.bluestein)
            .flat_map(|v| v.iter());
        self.passes
            .iter()
            .map(|p| &p.spec)
            .chain(fused)
            .cloned()
            .collect()
    }

    /// Whether [`Stockham::record_real`] can run.
    pub(crate) fn fuses_real(&self) -> bool {
        self.real.is_some()
    }

    /// Records a real transform of length 2n in one pass (see fft_real.wgsl for the maths):
    /// forward, `dst` = the n+1 bins of the real rows `src`, interior bins times `weight`,
    /// all times `scale`; inverse, `dst` = the real rows of the n+1 bins `src` (interior bins
    /// times `weight`, edge bins' imaginary parts ignored), times `scale`.
    pub(crate) fn record_real(
        &self,
        src: Binding<'_>,
        dst: Binding<'_>,
        inverse: bool,
        scale: f32,
        weight: f32,
    ) -> Result<()> {
        let specs = self.real.as_ref().expect("planned with the real variants");
        let pass = &self.passes[0];
        let params = Params {
            columns: pass.columns,
            conj_in: u32::from(inverse),
            conj_out: u32::from(inverse),
            scale,
            weight,
            _pad: [0; 3],
        };
        self.gpu.dispatch(
            &specs[usize::from(inverse)],
            bytemuck::bytes_of(&params),
            &[src, binding_of(&self.twiddles, self.twiddle_bytes), dst],
            pass.workgroups,
        )
    }

    /// Lengths of the passes and their columns per workgroup, for reports.
    pub(crate) fn describe(&self) -> String {
        let lengths: Vec<String> = self.passes.iter().map(|p| p.len.to_string()).collect();
        let cols: Vec<String> = self.passes.iter().map(|p| p.cols.to_string()).collect();
        format!(
            "stockham {} ({} per workgroup)",
            lengths.join("x"),
            cols.join(", ")
        )
    }

    /// Records `dst = scale * DFT(src)`, conjugating the input and the output as asked (both
    /// for the inverse). `src` and `dst` must be different buffers of the layout's size.
    pub(crate) fn record(
        &self,
        src: Binding<'_>,
        dst: Binding<'_>,
        conj: bool,
        scale: f32,
    ) -> Result<()> {
        let twiddles = binding_of(&self.twiddles, self.twiddle_bytes);
        let last = self.passes.len() - 1;
        let mut from = src;
        for (p, pass) in self.passes.iter().enumerate() {
            // Passes alternate between dst and the scratch so that the last one lands in dst.
            let to = if (last - p).is_multiple_of(2) {
                dst
            } else {
                self.scratch
                    .as_ref()
                    .expect("multi-pass plans own a scratch buffer")
                    .binding()
            };
            let params = Params {
                columns: pass.columns,
                conj_in: u32::from(conj && p == 0),
                conj_out: u32::from(conj && p == last),
                scale: if p == last { scale } else { 1.0 },
                weight: 1.0,
                _pad: [0; 3],
            };
            self.gpu.dispatch(
                &pass.spec,
                bytemuck::bytes_of(&params),
                &[from, twiddles, to],
                pass.workgroups,
            )?;
            from = to;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_lengths_are_balanced_and_exact() {
        assert_eq!(pass_lengths(4096, 4096), Some(vec![4096]));
        assert_eq!(pass_lengths(1 << 20, 4096), Some(vec![1024, 1024]));
        assert_eq!(pass_lengths(1 << 16, 2048), Some(vec![256, 256]));
        // 3^9 fits 32768 values but needs nine stages: two passes.
        assert_eq!(pass_lengths(19683, 32768).map(|l| l.len()), Some(2));
        for n in [1, 7, 360, 1000, 6561, 1 << 13, 3 * (1 << 15)] {
            let lengths = pass_lengths(n, 2048).unwrap();
            assert_eq!(lengths.iter().product::<usize>(), n);
            assert!(lengths.iter().all(|&l| l <= 2048));
        }
    }

    #[test]
    fn radices_multiply_back() {
        for n in 1..=4096 {
            if is_smooth(n) {
                assert_eq!(radices(n).iter().product::<usize>(), n, "{n}");
            }
        }
        assert_eq!(radices(4096), vec![16, 16, 16]);
        assert_eq!(radices(1024), vec![16, 8, 8]);
        assert_eq!(radices(512), vec![8, 8, 8]);
        assert_eq!(radices(2 * 27 * 5), vec![2, 3, 3, 3, 5]);
        assert_eq!(radices(2), vec![2]);
        assert_eq!(radices(1), Vec::<usize>::new());
        assert_eq!(next_smooth(2 * 97 - 1), 196);
    }
}
