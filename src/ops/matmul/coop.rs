//! The split-precision product on cooperative matrices ([`Precision::SplitF16`]):
//! `shaders/split_f16.wgsl` splits each operand into f16 halves, `shaders/matmul_coop.wgsl`
//! multiplies them on tensor cores with f32 accumulators and applies the epilogue.
//!
//! Why: an f32 product runs on the GPU's general-purpose cores, where register-tiled WGSL
//! kernels reached 29.5 TFLOP/s at 4096^3 and 29.6 at 8192^3 on an H200 (`shared/ANCHORS.md`),
//! and tensor cores offer over ten times that for f16. Three f16 products of the halves recover
//! about 22 bits of each operand, close to f32's 24, at (we expect) a third of the tensor
//! cores' rate.

use bytemuck::{Pod, Zeroable};

use super::{ACTIVATION_WGSL, Activation, MatmulSpec, Problem, fits_u32, matrix_dims};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::ops::{BLOCK_GRID_WGSL, WORKGROUP_REDUCE_WGSL};
use crate::tensor::{DType, Tensor};

const OP: &str = "matmul";

const SPLIT_SOURCES: &[&str] = &[
    WORKGROUP_REDUCE_WGSL,
    include_str!("../../../shaders/split_f16.wgsl"),
];
const SPLIT_BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite, Access::ReadWrite];

const COOP_SOURCES: &[&str] = &[
    ACTIVATION_WGSL,
    BLOCK_GRID_WGSL,
    include_str!("../../../shaders/matmul_coop.wgsl"),
];
const COOP_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
];
const COOP_ENABLES: &[&str] = &["f16", "wgpu_cooperative_matrix"];

/// Workgroups of the max-|x| pass, and the partial maxima each split pass reduces (one per
/// invocation of its workgroup, `WG_REDUCE` in `shaders/workgroup_reduce.wgsl`).
const GROUPS: usize = 256;

/// Workgroups of a split pass at most; beyond, its invocations loop over the elements.
const MAX_SPLIT_GROUPS: usize = 4096;

/// The operands' halves are padded along K to a multiple of this, the deepest K-slice.
const K_PAD: usize = 64;

/// Rows and columns of C are padded to a multiple of this, the largest block side.
const BLOCK_PAD: usize = 128;

/// Invocations per subgroup the product kernel is written for: each subgroup computes 32 x 32
/// outputs, and a workgroup has one subgroup per such part of its block.
const SUBGROUP: u32 = 32;

/// How a product is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 throughout, on the register-tiled kernels of [`super::Tile`].
    #[default]
    F32,
    /// On tensor cores: each operand scaled by a power of two and split into two f16 halves
    /// (`s x = hi + lo`), three f16 products (`hi hi + hi lo + lo hi`) accumulated in f32, then
    /// scaled back. Each element keeps about 22 bits (f32 has 24), so products come out near
    /// f32's accuracy; elements below 2^-17 of their operand's largest keep fewer bits (down to
    /// an absolute error of 2^-40 of the largest), as in any format with one scale per
    /// operand. A non-finite element makes the outputs it touches non-finite. Needs
    /// cooperative matrices of 16 x 16 x 16 with f16 inputs and f32 accumulators, and subgroups
    /// of 32 invocations ([`Precision::available`] says whether an adapter has them); other
    /// adapters get an error. The tuner chooses among the [`SPLIT_F16_KERNELS`] that fit the
    /// adapter's workgroup memory ([`super::split_f16_kernel`] says which).
    SplitF16,
}

/// A block shape of the split-precision product kernel, the depth of its K-slices, and whether
/// its fragments load from a K-slice staged in workgroup memory or straight from the halves in
/// global memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopKernel {
    /// Rows of C per workgroup (a multiple of 32).
    pub bm: u32,
    /// Columns of C per workgroup (a multiple of 32).
    pub bn: u32,
    /// K per slice (16, 32 or 64): deeper slices mean fewer barriers and more workgroup memory.
    pub bk: u32,
    /// Stage each K-slice in workgroup memory.
    pub staged: bool,
}

impl CoopKernel {
    /// The kernel's name in tuning files and reports, e.g. `coop-64x64x32-staged`.
    pub fn name(self) -> String {
        format!(
            "coop-{}x{}x{}-{}",
            self.bm,
            self.bn,
            self.bk,
            if self.staged { "staged" } else { "direct" }
        )
    }

    /// Workgroup memory the kernel declares, at most (it depends a little on the transposes):
    /// a K-slice of both operands' halves, each row padded by 8, and a 16 x 16 f32 fragment
    /// per subgroup for the epilogue.
    pub fn workgroup_bytes(self) -> u32 {
        let slice = |side: u32| side * self.bk + 8 * side.max(self.bk);
        2 * 2 * (slice(self.bm) + slice(self.bn)) + 4 * 256 * (self.bm / 32) * (self.bn / 32)
    }
}

/// The split-precision kernels the tuner times, the default (for products too small to tune)
/// first.
pub const SPLIT_F16_KERNELS: [CoopKernel; 4] = [
    CoopKernel {
        bm: 64,
        bn: 64,
        bk: 32,
        staged: true,
    },
    CoopKernel {
        bm: 64,
        bn: 64,
        bk: 64,
        staged: true,
    },
    CoopKernel {
        bm: 128,
        bn: 64,
        bk: 32,
        staged: true,
    },
    CoopKernel {
        bm: 64,
        bn: 64,
        bk: 32,
        staged: false,
    },
];

/// The [`SPLIT_F16_KERNELS`] whose workgroup memory fits the adapter's, in order.
pub(super) fn fitting_kernels(gpu: &Gpu) -> impl Iterator<Item = CoopKernel> {
    let room = gpu.capabilities().max_workgroup_storage_size;
    SPLIT_F16_KERNELS
        .into_iter()
        .filter(move |k| k.workgroup_bytes() <= room)
}

impl Precision {
    /// Whether `gpu` can compute at this precision: `Ok` for [`Precision::F32`] everywhere, and
    /// for [`Precision::SplitF16`] where the adapter has what it needs; else an error naming
    /// what is missing.
    pub fn available(self, gpu: &Gpu) -> Result<()> {
        if self == Precision::F32 {
            return Ok(());
        }
        let caps = gpu.capabilities();
        let missing = if !caps.subgroups {
            "subgroup operations"
        } else if !caps.cooperative_f16_16x16 {
            "cooperative matrices of 16 x 16 x 16 with f16 inputs and f32 accumulators"
        } else if !caps.shader_f16 {
            "f16 arithmetic in shaders"
        } else if (caps.min_subgroup_size, caps.max_subgroup_size) != (SUBGROUP, SUBGROUP) {
            "subgroups of exactly 32 invocations"
        } else if fitting_kernels(gpu).next().is_none() {
            "workgroup memory for one of the SPLIT_F16_KERNELS"
        } else {
            return Ok(());
        };
        Err(Error::invalid(
            OP,
            format!(
                "Precision::SplitF16 needs {missing}, which {} does not offer; use \
                 Precision::F32 on this adapter",
                gpu.summary().adapter
            ),
        ))
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SplitParams {
    rows: u32,
    cols: u32,
    rows_pad: u32,
    cols_pad: u32,
    count: u32,
    padded_count: u32,
    lows: u32,
    _pad: u32,
}

/// One operand split into halves: `halves` holds the padded highs then the padded lows (two f16
/// per f32 slot), `scales` the partial maxima and, at `GROUPS`, -log2(s).
#[derive(Clone)]
pub(super) struct Halves {
    halves: Tensor,
    scales: Tensor,
    /// f16 elements per padded matrix.
    per_matrix: usize,
    /// Offset of the lows, in f16 elements.
    lows: usize,
}

fn split_kernel(entry: &'static str) -> KernelSpec {
    KernelSpec::new("split_f16", SPLIT_SOURCES, entry, SPLIT_BINDINGS)
        .enabling(&["f16"])
        .with("GROUPS", Const::U32(GROUPS as u32))
}

/// Records the split of `x`, stored as `batch` matrices of `rows x cols`, padded to
/// `rows_pad x cols_pad`.
pub(super) fn split(
    x: &Tensor,
    batch: usize,
    (rows, cols): (usize, usize),
    (rows_pad, cols_pad): (usize, usize),
) -> Result<Halves> {
    let gpu = x.gpu();
    let per_matrix = rows_pad * cols_pad;
    let lows = batch * per_matrix;
    // Highs and lows are f16: the pair fits one f32 slot.
    fits_u32(OP, "halves of a padded operand", 2 * lows)?;
    let halves = Tensor::uninit(gpu, &[lows], DType::F32)?;
    let scales = Tensor::uninit(gpu, &[GROUPS + 1], DType::F32)?;
    let params = SplitParams {
        rows: rows as u32,
        cols: cols as u32,
        rows_pad: rows_pad as u32,
        cols_pad: cols_pad as u32,
        count: fits_u32(OP, "elements of an operand", batch * rows * cols)?,
        padded_count: fits_u32(OP, "elements of a padded operand", lows)?,
        lows: lows as u32,
        _pad: 0,
    };
    let bindings = [x.binding(), scales.binding(), halves.binding()];
    gpu.dispatch(
        &split_kernel("max_abs_partials"),
        bytemuck::bytes_of(&params),
        &bindings,
        [GROUPS as u32, 1, 1],
    )?;
    gpu.dispatch(
        &split_kernel("split_halves"),
        bytemuck::bytes_of(&params),
        &bindings,
        [lows.div_ceil(256).clamp(1, MAX_SPLIT_GROUPS) as u32, 1, 1],
    )?;
    Ok(Halves {
        halves,
        scales,
        per_matrix,
        lows,
    })
}

/// A right-hand operand split into f16 halves once, for many [`Precision::SplitF16`] products
/// with it: a weight held fixed over a DEQ's iterations, say. Pass it as
/// [`MatmulSpec::split_b`] beside B itself, and the product skips splitting B (two passes over
/// it). A product refuses it once B has been written to (by a kernel, an upload or a copy) since
/// it was made: make it again then.
#[derive(Clone)]
pub struct SplitB {
    halves: Halves,
    /// B itself, to check that a product is given the operand this was made from.
    source: Tensor,
    trans_b: bool,
    /// B's write count when it was split.
    writes: u64,
}

impl std::fmt::Debug for SplitB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitB")
            .field("shape", &self.source.shape())
            .field("trans_b", &self.trans_b)
            .finish_non_exhaustive()
    }
}

impl SplitB {
    /// Splits `b`, stored `[.., K, N]` (or `[.., N, K]` with `trans_b`, as
    /// [`MatmulSpec::trans_b`]), on an adapter where [`Precision::SplitF16`] is available.
    pub fn new(b: &Tensor, trans_b: bool) -> Result<SplitB> {
        Precision::SplitF16.available(b.gpu())?;
        b.expect_dtype(OP, DType::F32)?;
        let (lead, rows, cols) = matrix_dims("B", b)?;
        let (k, n) = if trans_b { (cols, rows) } else { (rows, cols) };
        let (dims, padded) = stored((k, n), (pad_k(k), pad_side(n)), trans_b);
        Ok(SplitB {
            halves: split(b, lead.iter().product(), dims, padded)?,
            source: b.clone(),
            trans_b,
            writes: b.writes(),
        })
    }

    /// Its halves, if it was made from `b` (the same view of the same buffer, not written to
    /// since) with `trans_b`.
    pub(super) fn halves_for(&self, b: &Tensor, trans_b: bool) -> Result<&Halves> {
        let same = self.source.shares_buffer(b)
            && self.source.binding().offset == b.binding().offset
            && self.source.shape() == b.shape()
            && self.trans_b == trans_b;
        if !same {
            return Err(Error::invalid(
                OP,
                format!(
                    "MatmulSpec::split_b was made from another operand ({:?}{}) than B ({:?}{}); \
                     make it with SplitB::new from B itself",
                    self.source.shape(),
                    if self.trans_b { " transposed" } else { "" },
                    b.shape(),
                    if trans_b { " transposed" } else { "" },
                ),
            ));
        }
        if b.writes() != self.writes {
            return Err(Error::invalid(
                OP,
                "B was written to since MatmulSpec::split_b was made from it, so its halves are \
                 stale; make it again with SplitB::new",
            ));
        }
        Ok(&self.halves)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CoopParams {
    m: u32,
    n: u32,
    m_pad: u32,
    n_pad: u32,
    k_pad: u32,
    stride_a: u32,
    stride_b: u32,
    lows_a: u32,
    lows_b: u32,
    stride_c: u32,
    unscale: u32,
    /// Matrices of C: the grid's third axis.
    batch: u32,
}

/// What a product kernel variant depends on besides its block shape.
#[derive(Clone, Copy, Debug)]
struct Flags {
    trans_a: bool,
    trans_b: bool,
    bias: bool,
    add: bool,
    activation: Activation,
}

impl Flags {
    fn of(spec: &MatmulSpec<'_>) -> Flags {
        Flags {
            trans_a: spec.trans_a,
            trans_b: spec.trans_b,
            bias: spec.bias.is_some(),
            add: spec.add.is_some(),
            activation: spec.activation,
        }
    }
}

/// The product kernel's variant for `flags` and `kernel`.
fn product_kernel(flags: Flags, kernel: CoopKernel) -> KernelSpec {
    KernelSpec::new(OP, COOP_SOURCES, "matmul_coop", COOP_BINDINGS)
        .enabling(COOP_ENABLES)
        .with("BM", Const::U32(kernel.bm))
        .with("BN", Const::U32(kernel.bn))
        .with("BK", Const::U32(kernel.bk))
        .with("STAGE", Const::Bool(kernel.staged))
        .with("TRANS_A", Const::Bool(flags.trans_a))
        .with("TRANS_B", Const::Bool(flags.trans_b))
        .with("BIAS", Const::Bool(flags.bias))
        .with("ADD", Const::Bool(flags.add))
        .with("ACT", Const::U32(flags.activation.code()))
}

/// M or N padded to a multiple of [`BLOCK_PAD`].
fn pad_side(x: usize) -> usize {
    x.next_multiple_of(BLOCK_PAD)
}

/// K padded to a multiple of [`K_PAD`].
fn pad_k(k: usize) -> usize {
    k.max(1).next_multiple_of(K_PAD)
}

/// The padded sizes of a product.
fn padded(p: &Problem) -> (usize, usize, usize) {
    (pad_side(p.m), pad_side(p.n), pad_k(p.k))
}

/// An operand's stored sizes and padded sizes, from those of op(X) (`rows x cols`, as the
/// product uses it) and whether it is stored transposed.
fn stored(
    (rows, cols): (usize, usize),
    (rows_pad, cols_pad): (usize, usize),
    transposed: bool,
) -> ((usize, usize), (usize, usize)) {
    match transposed {
        false => ((rows, cols), (rows_pad, cols_pad)),
        true => ((cols, rows), (cols_pad, rows_pad)),
    }
}

/// Records the split of both operands and the product with `kernel`.
pub(super) fn record(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    p: &Problem,
    kernel: CoopKernel,
) -> Result<()> {
    record_with(
        a,
        b,
        spec,
        c,
        p,
        kernel,
        &product_kernel(Flags::of(spec), kernel),
    )
}

/// [`record`] with the product kernel's variant given: the tests swap in one whose cooperative
/// matrices are emulated, to run the indexing on adapters without tensor cores.
fn record_with(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    p: &Problem,
    kernel: CoopKernel,
    product: &KernelSpec,
) -> Result<()> {
    let gpu = a.gpu();
    let (m_pad, n_pad, k_pad) = padded(p);
    let batch_a = if p.broadcast_a { 1 } else { p.batch };
    let batch_b = if p.broadcast_b { 1 } else { p.batch };
    let (a_dims, a_pad) = stored((p.m, p.k), (m_pad, k_pad), spec.trans_a);
    let (b_dims, b_pad) = stored((p.k, p.n), (k_pad, n_pad), spec.trans_b);
    let ha = split(a, batch_a, a_dims, a_pad)?;
    let fresh;
    let hb = match spec.split_b {
        Some(pre) => pre.halves_for(b, spec.trans_b)?,
        None => {
            fresh = split(b, batch_b, b_dims, b_pad)?;
            &fresh
        }
    };
    let stride = |h: &Halves, broadcast: bool| if broadcast { 0 } else { h.per_matrix as u32 };
    let params = CoopParams {
        m: p.m as u32,
        n: p.n as u32,
        m_pad: m_pad as u32,
        n_pad: n_pad as u32,
        k_pad: k_pad as u32,
        stride_a: stride(&ha, p.broadcast_a),
        stride_b: stride(hb, p.broadcast_b),
        lows_a: ha.lows as u32,
        lows_b: hb.lows as u32,
        stride_c: (p.m * p.n) as u32,
        unscale: GROUPS as u32,
        batch: fits_u32(OP, "matrices in the batch", p.batch)?,
    };
    let bias = spec.bias.unwrap_or(a);
    let add = spec.add.unwrap_or(a);
    gpu.dispatch(
        product,
        bytemuck::bytes_of(&params),
        &[
            ha.halves.binding(),
            ha.halves.binding(),
            hb.halves.binding(),
            hb.halves.binding(),
            ha.scales.binding(),
            hb.scales.binding(),
            bias.binding(),
            add.binding(),
            c.binding(),
        ],
        // Blocks of real outputs only: the padding covers every block these reach.
        gpu.block_grid([
            p.n.div_ceil(kernel.bn as usize),
            p.m.div_ceil(kernel.bm as usize),
            p.batch,
        ])?,
    )
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::ops::Activation;
    use crate::reference::{self, MatmulInputs, MatmulShape};
    use crate::{Gpu, GpuOptions, Tuning};

    fn gpu() -> Gpu {
        gpu_with(false)
    }

    /// A device of the test's own, with bounds-checked shader modules or not.
    fn gpu_with(checked: bool) -> Gpu {
        crate::gpu::test_gpu(GpuOptions {
            checked: Some(checked),
            tuning: Some(Tuning::Off),
            profile: Some(false),
            ..Default::default()
        })
    }

    /// Entries spread over six orders of magnitude, of both signs.
    fn spread(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powf(rng.random_range(-3.0..3.0)))
            .collect()
    }

    /// The f16 halves of a split operand, and its 1 / s.
    fn read_halves(h: &Halves) -> (Vec<f64>, Vec<f64>, f64) {
        let words = h.halves.to_vec().unwrap();
        let all: Vec<f64> = bytemuck::cast_slice::<f32, u16>(&words)
            .iter()
            .map(|&bits| half::f16::from_bits(bits).to_f64())
            .collect();
        let (hi, lo) = all.split_at(h.lows);
        let unscale = 2f64.powi(h.scales.to_vec().unwrap()[GROUPS] as i32);
        (hi.to_vec(), lo.to_vec(), unscale)
    }

    /// On any adapter with f16 (lavapipe too): the split kernels scale by the right power of two,
    /// pad with zeros, and keep about 22 bits of every element; and the three products of the
    /// halves, summed in f64 here, match the f64 product far inside f32 tolerances (the tensor
    /// cores compute the same sums with f32 accumulators).
    #[test]
    fn split_halves_keep_each_operand_and_the_product() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(7);
        let (batch, rows, cols, rows_pad, cols_pad) = (3, 37, 45, 48, 64);
        let x_host = spread(&mut rng, batch * rows * cols);
        let x = Tensor::from_slice(&gpu, &x_host, &[batch, rows, cols]).unwrap();
        let split_x = split(&x, batch, (rows, cols), (rows_pad, cols_pad)).unwrap();
        let (hi, lo, unscale) = read_halves(&split_x);
        let largest = x_host.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let s = 1.0 / unscale;
        assert_eq!(s.log2().fract(), 0.0, "s = {s} is a power of two");
        assert!(
            (16384.0..32768.0).contains(&(largest * s)),
            "largest * s = {}",
            largest * s
        );
        for bt in 0..batch {
            for r in 0..rows_pad {
                for c in 0..cols_pad {
                    let i = (bt * rows_pad + r) * cols_pad + c;
                    if r >= rows || c >= cols {
                        assert_eq!((hi[i], lo[i]), (0.0, 0.0), "padding at {bt}, {r}, {c}");
                        continue;
                    }
                    let v = s * x_host[(bt * rows + r) * cols + c] as f64;
                    let err = (hi[i] + lo[i] - v).abs();
                    // hi rounds v to 11 bits, lo the rest to 11 more, or to f16's subnormal
                    // spacing 2^-24 where the rest is that small.
                    let bound = v.abs() * 2f64.powi(-21) + 2f64.powi(-25);
                    assert!(
                        err <= bound,
                        "element {bt}, {r}, {c}: {v} kept as {} + {}",
                        hi[i],
                        lo[i]
                    );
                }
            }
        }

        // An infinite element keeps the scale and stays infinite, alone among the halves.
        let mut with_inf = x_host.clone();
        with_inf[5] = f32::INFINITY;
        let x = Tensor::from_slice(&gpu, &with_inf, &[batch, rows, cols]).unwrap();
        let (hi_inf, lo_inf, unscale_inf) =
            read_halves(&split(&x, batch, (rows, cols), (rows_pad, cols_pad)).unwrap());
        assert_eq!(unscale_inf, unscale);
        assert!(hi_inf[5].is_infinite() && !lo_inf[5].is_finite());
        let finite = |v: &[f64]| v.iter().filter(|x| x.is_finite()).count();
        assert_eq!(finite(&hi_inf) + finite(&lo_inf), 2 * hi.len() - 2);

        // The product the tensor cores compute, A [m, k] by B [k, n] with both split.
        let (m, k, n) = (29, 70, 23);
        let a_host = spread(&mut rng, m * k);
        let b_host = spread(&mut rng, k * n);
        let a = Tensor::from_slice(&gpu, &a_host, &[m, k]).unwrap();
        let b = Tensor::from_slice(&gpu, &b_host, &[k, n]).unwrap();
        let (ah, al, ua) = read_halves(&split(&a, 1, (m, k), (m, k)).unwrap());
        let (bh, bl, ub) = read_halves(&split(&b, 1, (k, n), (k, n)).unwrap());
        let mut got = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    let (x, y) = (i * k + p, p * n + j);
                    acc += ah[x] * bh[y] + ah[x] * bl[y] + al[x] * bh[y];
                }
                got.push((acc * ua * ub) as f32);
            }
        }
        let shape = MatmulShape {
            batch: 1,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            broadcast_a: false,
            broadcast_b: false,
        };
        let inputs = MatmulInputs {
            a: &a_host,
            b: &b_host,
            bias: None,
            add: None,
            activation: Activation::Identity,
        };
        let want = reference::matmul(&shape, &inputs);
        let err = reference::max_rel_err(&got, &want);
        // Beside it, for scale: the same product summed in f32.
        let mut f32_sums = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                f32_sums.push(
                    (0..k)
                        .map(|p| a_host[i * k + p] * b_host[p * n + j])
                        .sum::<f32>(),
                );
            }
        }
        eprintln!(
            "max_rel_err of the three half-products summed in f64: {err:.2e}; of the product \
             summed in f32: {:.2e}",
            reference::max_rel_err(&f32_sums, &want)
        );
        assert!(err < 1e-6, "split product max_rel_err {err:.2e}");
    }

    /// M, N, K, and the batches of A and B (`None`: one matrix for the whole batch).
    type Shape = (usize, usize, usize, Option<usize>, Option<usize>);

    /// Off the block grid, more than one block along each side, and every batch layout.
    const SHAPES: [Shape; 4] = [
        (17, 33, 65, None, None),
        (130, 7, 257, Some(2), Some(2)),
        (5, 64, 40, Some(3), None),
        (40, 150, 33, None, Some(2)),
    ];

    /// Runs `kernels` (their product variant made by `variant`) against the oracle on odd
    /// shapes, every transpose, batches and a broadcast, and the epilogue.
    fn check_kernels(
        gpu: &Gpu,
        kernels: &[CoopKernel],
        shapes: &[Shape],
        variant: impl Fn(Flags, CoopKernel) -> KernelSpec,
    ) {
        let mut rng = StdRng::seed_from_u64(11);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        for &kernel in kernels {
            for &(m, n, k, batch_a, batch_b) in shapes {
                for (trans_a, trans_b) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let batch = batch_a.or(batch_b).unwrap_or(1);
                    let dims = |batch: Option<usize>, r, c| match batch {
                        Some(bt) => vec![bt, r, c],
                        None => vec![r, c],
                    };
                    let a_shape = if trans_a {
                        dims(batch_a, k, m)
                    } else {
                        dims(batch_a, m, k)
                    };
                    let b_shape = if trans_b {
                        dims(batch_b, n, k)
                    } else {
                        dims(batch_b, k, n)
                    };
                    let c_shape = dims(Some(batch), m, n);
                    let a_host = values(a_shape.iter().product());
                    let b_host = values(b_shape.iter().product());
                    let bias_host = values(n);
                    let add_host = values(batch * m * n);
                    let a = Tensor::from_slice(gpu, &a_host, &a_shape).unwrap();
                    let b = Tensor::from_slice(gpu, &b_host, &b_shape).unwrap();
                    let bias = Tensor::from_slice(gpu, &bias_host, &[n]).unwrap();
                    let add = Tensor::from_slice(gpu, &add_host, &c_shape).unwrap();
                    let epilogue = trans_b;
                    let spec = MatmulSpec {
                        trans_a,
                        trans_b,
                        bias: epilogue.then_some(&bias),
                        add: epilogue.then_some(&add),
                        activation: if epilogue {
                            Activation::Tanh
                        } else {
                            Activation::Identity
                        },
                        precision: Precision::SplitF16,
                        ..Default::default()
                    };
                    let c = Tensor::uninit(gpu, &c_shape, DType::F32).unwrap();
                    let p = Problem::new(&a, &b, &spec, &c).unwrap();
                    record_with(
                        &a,
                        &b,
                        &spec,
                        &c,
                        &p,
                        kernel,
                        &variant(Flags::of(&spec), kernel),
                    )
                    .unwrap();
                    let shape = MatmulShape {
                        batch,
                        m,
                        n,
                        k,
                        trans_a,
                        trans_b,
                        broadcast_a: batch_a.is_none(),
                        broadcast_b: batch_b.is_none(),
                    };
                    let inputs = MatmulInputs {
                        a: &a_host,
                        b: &b_host,
                        bias: spec.bias.map(|_| &bias_host[..]),
                        add: spec.add.map(|_| &add_host[..]),
                        activation: spec.activation,
                    };
                    let err = reference::max_rel_err(
                        &c.to_vec().unwrap(),
                        &reference::matmul(&shape, &inputs),
                    );
                    assert!(
                        err <= 1e-5,
                        "{} {m}x{n}x{k} batch {batch_a:?}/{batch_b:?} ta={trans_a} tb={trans_b}: \
                         max_rel_err {err:.2e}",
                        kernel.name()
                    );
                }
            }
        }
    }

    /// Every split-precision kernel, forced, on tensor cores, with unchecked and bounds-checked
    /// shader modules; where the adapter has none (CI's lavapipe), the refusal instead, unless
    /// PERCEPT_EXPECT_SPLIT_F16 is set (as `scripts/gpu-check.sh` sets it on a lent GPU).
    #[test]
    fn every_split_kernel_matches_the_oracle_or_is_refused() {
        for checked in [false, true] {
            let gpu = gpu_with(checked);
            match Precision::SplitF16.available(&gpu) {
                Ok(()) => {
                    let kernels: Vec<CoopKernel> = fitting_kernels(&gpu).collect();
                    check_kernels(&gpu, &kernels, &SHAPES, product_kernel)
                }
                Err(e) => {
                    assert!(
                        std::env::var_os("PERCEPT_EXPECT_SPLIT_F16").is_none(),
                        "split precision was expected on {}: {e}",
                        gpu.summary().adapter
                    );
                    assert!(e.to_string().contains("use Precision::F32"), "{e}");
                }
            }
        }
    }

    /// The product kernel's source with each cooperative-matrix operation replaced by plain
    /// code (and the subgroup built-ins by 32-invocation groups of the workgroup), so that the
    /// kernel's staging, fragment addressing, epilogue and launcher run anywhere, lavapipe
    /// included. An A or B fragment becomes a reference to where it was loaded from (array,
    /// offset, stride, layout), which stays valid until the multiply-adds that read it; an
    /// accumulator holds each lane's 8 of the 256 outputs, lane l holding outputs l + 32 q.
    fn emulated(flags: Flags, kernel: CoopKernel) -> KernelSpec {
        let shipped = product_kernel(flags, kernel);
        let mut source = shipped.sources.concat();
        for (role, emulated) in [
            ("f16, A", "FragRef"),
            ("f16, B", "FragRef"),
            ("f32, C", "Acc"),
        ] {
            source = source.replace(&format!("coop_mat16x16<{role}>"), emulated);
        }
        for (id, array) in ["a_tile", "b_tile", "ah", "bh"].into_iter().enumerate() {
            for (call, row_major) in [("coopLoadT", true), ("coopLoad", false)] {
                source = source.replace(
                    &format!("{call}<FragRef>(&{array}[at], stride)"),
                    &format!("FragRef({id}u, at, stride, {row_major})"),
                );
            }
        }
        let replacements = [
            (
                "coopStoreT(frag, &out_frag[at], stride)",
                "emu_store_out_frag(frag, at, stride)",
            ),
            ("coopMultiplyAdd(", "emu_mma("),
            ("    @builtin(subgroup_id) sg: u32,\n", ""),
            ("    @builtin(subgroup_invocation_id) lane: u32,\n", ""),
            (
                "    let batch = min(",
                "    let sg = lid / 32u;\n    let lane = lid % 32u;\n    emu_lane = lane;\n    \
                 let batch = min(",
            ),
        ];
        for (from, to) in replacements {
            assert!(
                source.contains(from),
                "the kernel no longer contains {from}"
            );
            source = source.replace(from, to);
        }
        for left in [
            "coop_mat",
            "coopLoad<",
            "coopLoadT<",
            "coopStore(",
            "coopStoreT(",
            "coopMultiplyAdd(",
        ] {
            assert!(!source.contains(left), "{left} left unemulated");
        }
        let emulation = "
struct FragRef { array: u32, at: u32, stride: u32, row_major: bool }
struct Acc { v: array<f32, 8> }
var<private> emu_lane: u32;

// Element (r, c) of a fragment: row-major at at + r * stride + c, column-major at
// at + c * stride + r.
fn emu_element(f: FragRef, r: u32, c: u32) -> f32 {
    let i = select(f.at + c * f.stride + r, f.at + r * f.stride + c, f.row_major);
    switch f.array {
        case 0u: { return f32(a_tile[i]); }
        case 1u: { return f32(b_tile[i]); }
        case 2u: { return f32(ah[i]); }
        default: { return f32(bh[i]); }
    }
}

// Loop bounds the compiler cannot see (params.unscale is 256), so that it does not unroll the
// twelve inlined multiply-adds of a K-step into thousands of loads: lavapipe's compile time.
fn emu_mma(a: FragRef, b: FragRef, c: Acc) -> Acc {
    var out = c;
    let eight = min(8u, params.unscale);
    let sixteen = min(16u, params.unscale);
    for (var q = 0u; q < eight; q++) {
        let e = emu_lane + 32u * q;
        let r = e / 16u;
        let col = e % 16u;
        for (var k = 0u; k < sixteen; k++) {
            out.v[q] += emu_element(a, r, k) * emu_element(b, k, col);
        }
    }
    return out;
}

fn emu_store_out_frag(f: Acc, at: u32, stride: u32) {
    for (var q = 0u; q < 8u; q++) {
        let e = emu_lane + 32u * q;
        out_frag[at + (e / 16u) * stride + e % 16u] = f.v[q];
    }
}
";
        let sources: &'static [&'static str] =
            vec![&*Box::leak((source + emulation).into_boxed_str())].leak();
        let mut emulated = KernelSpec::new(
            "matmul_coop_emulated",
            sources,
            "matmul_coop",
            COOP_BINDINGS,
        )
        .enabling(&["f16"]);
        emulated.consts = shipped.consts;
        emulated
    }

    /// The product kernel, its cooperative matrices emulated (see [`emulated`]), against the
    /// oracle on this adapter: the shipped kernels whose workgroup memory fits it, and smaller
    /// block shapes and K-slices that exercise the same indexing.
    #[test]
    fn emulated_product_kernels_match_the_oracle() {
        for checked in [false, true] {
            emulated_kernels_match_the_oracle(&gpu_with(checked));
        }
    }

    fn emulated_kernels_match_the_oracle(gpu: &Gpu) {
        let room = gpu.capabilities().max_workgroup_storage_size;
        let mut kernels: Vec<CoopKernel> = SPLIT_F16_KERNELS.to_vec();
        for (bm, bn, bk) in [(128, 32, 32), (32, 64, 64), (32, 32, 16)] {
            kernels.push(CoopKernel {
                bm,
                bn,
                bk,
                staged: true,
            });
        }
        kernels.retain(|k| k.workgroup_bytes() <= room);
        kernels.iter().for_each(|&k| check_block_shape(k));
        assert!(kernels.len() >= 4, "only {kernels:?} fit {room} bytes");
        check_kernels(gpu, &kernels, &SHAPES, emulated);
    }

    /// Parses, validates and writes SPIR-V for a kernel variant as wgpu's Vulkan backend would
    /// (SPIR-V 1.6, with and without bounds checks), on any machine: CI's lavapipe has no
    /// cooperative matrices to compile the product kernel for.
    fn compile_to_spirv(kernel: &KernelSpec) {
        let source = kernel.source();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", kernel.entry, e.emit_to_string(&source)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", kernel.entry, e.emit_to_string(&source)));
        for policy in [
            naga::proc::BoundsCheckPolicy::Unchecked,
            naga::proc::BoundsCheckPolicy::Restrict,
        ] {
            let options = naga::back::spv::Options {
                lang_version: (1, 6),
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: policy,
                    buffer: policy,
                    image_load: policy,
                    binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
                },
                ..Default::default()
            };
            let pipeline = naga::back::spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: kernel.entry.to_string(),
            };
            naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
                .unwrap_or_else(|e| panic!("{} ({policy:?}): {e}", kernel.entry));
        }
    }

    #[test]
    fn every_product_variant_compiles_to_spirv() {
        let bools = [false, true];
        for kernel in SPLIT_F16_KERNELS {
            for (trans_a, trans_b, bias, add) in bools.into_iter().flat_map(|ta| {
                bools.into_iter().flat_map(move |tb| {
                    bools
                        .into_iter()
                        .flat_map(move |bias| bools.map(move |add| (ta, tb, bias, add)))
                })
            }) {
                for activation in [Activation::Identity, Activation::Tanh] {
                    let flags = Flags {
                        trans_a,
                        trans_b,
                        bias,
                        add,
                        activation,
                    };
                    compile_to_spirv(&product_kernel(flags, kernel));
                }
            }
        }
    }

    #[test]
    fn split_kernels_compile_to_spirv() {
        for entry in ["max_abs_partials", "split_halves"] {
            compile_to_spirv(&split_kernel(entry));
        }
    }

    /// What the product kernel assumes of a block shape.
    fn check_block_shape(k: CoopKernel) {
        let (bm, bn, bk) = (k.bm as usize, k.bn as usize, k.bk as usize);
        assert_eq!(BLOCK_PAD % bm + BLOCK_PAD % bn, 0, "{k:?}");
        assert_eq!(
            bm % 32 + bn % 32,
            0,
            "{k:?}: whole subgroups of 32 x 32 outputs"
        );
        assert!(
            [16, 32, 64].contains(&bk) && K_PAD.is_multiple_of(bk),
            "{k:?}"
        );
        // Each invocation stages whole rows of eight halves of each slice.
        let invocations = (bm / 32) * (bn / 32) * 32;
        assert_eq!(
            (bm * bk / 8) % invocations + (bk * bn / 8) % invocations,
            0,
            "{k:?}"
        );
    }

    #[test]
    fn blocks_fit_the_padding_and_the_subgroups() {
        for k in SPLIT_F16_KERNELS {
            check_block_shape(k);
            // Within the 48 KiB of workgroup memory an H200 offers.
            assert!(k.workgroup_bytes() <= 48 * 1024, "{k:?}");
        }
    }
}
