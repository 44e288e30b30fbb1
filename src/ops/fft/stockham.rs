//! Batched complex FFTs of 7-smooth lengths (`shaders/fft.wgsl`): one Stockham pass when the
//! transform fits a workgroup's memory, several passes (four-step) beyond.

use bytemuck::{Pod, Zeroable};

use super::{Layout, Scratch, binding_of, twiddle_table};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::gpu::{Binding, Gpu, PooledBuffer};

const SOURCES: &[&str] = &[include_str!("../../../shaders/fft.wgsl")];
const BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];

/// Radices the kernel has butterflies for.
const PRIMES: [usize; 4] = [2, 3, 5, 7];
/// Workgroup elements a pass aims for when rows are short: enough columns per workgroup that
/// small transforms still move long runs of memory per workgroup.
const TARGET_ELEMENTS: usize = 2048;
/// Columns a column-wise pass wants per workgroup, so that each of its strided loads reads a
/// run of at least this many neighbouring complex values.
const MIN_COALESCED_COLUMNS: usize = 8;
/// Stages one pass can have: RADICES packs eight 4-bit radices into a u32.
const MAX_STAGES: usize = 8;
/// Upper bound on invocations per workgroup (and the adapter's own limit below that).
const MAX_WORKGROUP: usize = 256;
/// Complex values each invocation handles per stage, roughly.
const VALUES_PER_INVOCATION: usize = 8;

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

/// The stage radices of a smooth length inside one workgroup: radix 8 first, then one 4 or 2,
/// then the odd primes.
fn radices(len: usize) -> Vec<usize> {
    let mut m = len;
    let mut out = Vec::new();
    while m.is_multiple_of(8) {
        out.push(8);
        m /= 8;
    }
    for r in [4, 2, 3, 5, 7] {
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
/// the kernel's RADICES constant (eight 4-bit radices).
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
    n: u32,
    inner: u32,
    q: u32,
    columns: u32,
    ns: u32,
    conj_in: u32,
    conj_out: u32,
    scale: f32,
}

/// One pass: a compiled kernel variant and its launch.
struct Pass {
    len: usize,
    spec: KernelSpec,
    params: Params,
    workgroups: [u32; 3],
}

/// A planned batched complex FFT of a smooth length over a [`Layout`].
pub(crate) struct Stockham {
    gpu: Gpu,
    passes: Vec<Pass>,
    twiddles: PooledBuffer,
    twiddle_bytes: u64,
    /// Holds the intermediate results when there are two or more passes.
    scratch: Option<Scratch>,
}

impl Stockham {
    pub(crate) fn new(gpu: &Gpu, op: &'static str, layout: Layout) -> Result<Stockham> {
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
            limit_name: "max_compute_workgroup_storage_size",
        })?;
        let mut passes = Vec::with_capacity(lengths.len());
        let mut ns = 1;
        for &len in &lengths {
            let q = n / len * layout.inner;
            let columns = layout.outer * q;
            let load_rows = q == 1;
            let store_rows = ns == 1 && layout.inner == 1;
            let room = (capacity / len).max(1);
            let mut cols = (TARGET_ELEMENTS / len).clamp(1, room);
            if !(load_rows && store_rows) {
                cols = cols.max(MIN_COALESCED_COLUMNS.min(room));
            }
            let cols = cols.min(columns).max(1);
            let elements = cols * len;
            let workgroup = elements
                .div_ceil(VALUES_PER_INVOCATION)
                .next_multiple_of(32)
                .min(max_workgroup);
            let stage_radices = radices(len);
            let regs = stage_radices
                .iter()
                .map(|&r| (elements / r).div_ceil(workgroup) * r)
                .max()
                .unwrap_or(1);
            let packed = stage_radices
                .iter()
                .enumerate()
                .fold(0u32, |acc, (s, &r)| acc | (r as u32) << (4 * s));
            let spec = KernelSpec::new("fft", SOURCES, "fft_pass", BINDINGS)
                .with("R", Const::U32(len as u32))
                .with("COLS", Const::U32(cols as u32))
                .with("WG", Const::U32(workgroup as u32))
                .with("STAGES", Const::U32(stage_radices.len() as u32))
                .with("RADICES", Const::U32(packed))
                .with("REGS", Const::U32(regs as u32))
                .with("LOAD_ROWS", Const::Bool(load_rows))
                .with("STORE_ROWS", Const::Bool(store_rows));
            let params = Params {
                n: n as u32,
                inner: layout.inner as u32,
                q: q as u32,
                columns: columns as u32,
                ns: ns as u32,
                conj_in: 0,
                conj_out: 0,
                scale: 1.0,
            };
            passes.push(Pass {
                len,
                spec,
                params,
                workgroups: gpu.grid(columns.div_ceil(cols) as u64)?,
            });
            ns *= len;
        }
        let (twiddles, twiddle_bytes) = twiddle_table(gpu, n, n)?;
        let scratch = if passes.len() > 1 {
            Some(Scratch::new(gpu, op, layout.values())?)
        } else {
            None
        };
        Ok(Stockham {
            gpu: gpu.clone(),
            passes,
            twiddles,
            twiddle_bytes,
            scratch,
        })
    }

    /// Lengths of the passes, for reports.
    pub(crate) fn describe(&self) -> String {
        let lengths: Vec<String> = self.passes.iter().map(|p| p.len.to_string()).collect();
        format!("stockham {}", lengths.join("x"))
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
                conj_in: u32::from(conj && p == 0),
                conj_out: u32::from(conj && p == last),
                scale: if p == last { scale } else { 1.0 },
                ..pass.params
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
        assert_eq!(radices(4096), vec![8, 8, 8, 8]);
        assert_eq!(radices(1024), vec![8, 8, 8, 2]);
        assert_eq!(next_smooth(2 * 97 - 1), 196);
    }
}
