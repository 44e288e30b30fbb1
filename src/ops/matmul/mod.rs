//! Batched matrix multiply with a fused bias-and-activation epilogue (`shaders/matmul.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::{ACTIVATION_WGSL, Activation, BLOCK_GRID_WGSL, check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor, element_count};

mod coop;
mod tune;

pub use coop::{CoopKernel, Precision, SPLIT_F16_KERNELS, SplitB};

const SOURCES: &[&str] = &[
    ACTIVATION_WGSL,
    BLOCK_GRID_WGSL,
    include_str!("../../../shaders/matmul.wgsl"),
];
const SPLIT_SOURCES: &[&str] = &[
    ACTIVATION_WGSL,
    include_str!("../../../shaders/matmul_split.wgsl"),
];
const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
];
const SPLIT_BINDINGS: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];

/// The most parts a forced split of K may have.
pub const MAX_SPLIT_K: u32 = 64;

/// Output blocks below which the untuned rule picks the small tile: fewer large blocks than this
/// would leave most of a big GPU's compute units idle.
const LARGE_TILE_MIN_BLOCKS: usize = 96;

/// Block shapes of the register-tiled kernel. Without tuning, [`matmul`] picks `Large` or
/// `Small` by a fixed rule of the shape; with tuning (the default, see [`crate::Tuning`]) it
/// times every tile (and, for few outputs over a long K, the split-K kernels of
/// [`MatmulKernel`]) once per shape bucket on the adapter and keeps the fastest. Any tile can be
/// forced through [`MatmulSpec::kernel`]; unsplit, all give bit-identical results (each output sums over
/// K in the same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tile {
    /// 128 x 128 outputs per workgroup of 256 invocations (8 x 8 each), K-slices of 8.
    Large,
    /// 64 x 64 outputs per workgroup of 64 invocations (8 x 8 each), K-slices of 8.
    Small,
    /// 128 x 64 outputs per workgroup of 128 invocations (8 x 8 each), K-slices of 8.
    Tall,
    /// 64 x 128 outputs per workgroup of 128 invocations (8 x 8 each), K-slices of 8.
    Wide,
    /// 64 x 64 outputs per workgroup of 256 invocations (4 x 4 each), K-slices of 16: four
    /// times the invocations of `Small` for mid-sized products on large GPUs.
    Fine,
}

impl Tile {
    /// Every tile.
    pub const ALL: [Tile; 5] = [Tile::Large, Tile::Small, Tile::Tall, Tile::Wide, Tile::Fine];

    /// Block rows, block columns, K-slice, and outputs per invocation along each axis.
    fn dims(self) -> (usize, usize, usize, usize) {
        match self {
            Tile::Large => (128, 128, 8, 8),
            Tile::Small => (64, 64, 8, 8),
            Tile::Tall => (128, 64, 8, 8),
            Tile::Wide => (64, 128, 8, 8),
            Tile::Fine => (64, 64, 16, 4),
        }
    }

    /// The tile's name in tuning files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Tile::Large => "large",
            Tile::Small => "small",
            Tile::Tall => "tall",
            Tile::Wide => "wide",
            Tile::Fine => "fine",
        }
    }
}

/// Which kernel computes a product: a block shape, and the parts K is split into.
///
/// With `split_k` > 1 each part's workgroups sum their share of K into a scratch buffer and a
/// second dispatch adds the parts in order and applies the epilogue: `split_k` times the
/// workgroups, for products whose outputs are too few to fill a large GPU (a 1024^3 product
/// makes 64 blocks of 128 x 128 for an H200's 132 compute units), at the cost of writing and
/// reading `split_k` partial outputs. Split kernels round differently from unsplit ones (K is
/// summed in parts), and each is deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulKernel {
    /// The block shape.
    pub tile: Tile,
    /// Parts K is split into, 1 ..= [`MAX_SPLIT_K`]; 1 does not split.
    pub split_k: u32,
}

impl From<Tile> for MatmulKernel {
    fn from(tile: Tile) -> Self {
        MatmulKernel { tile, split_k: 1 }
    }
}

impl MatmulKernel {
    /// The kernel's name in tuning files and reports: the tile's, with `-split<parts>` when K
    /// is split.
    pub fn name(self) -> String {
        match self.split_k {
            1 => self.tile.name().to_string(),
            parts => format!("{}-split{parts}", self.tile.name()),
        }
    }
}

impl std::fmt::Display for MatmulKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The untuned rule: the large tile when it makes enough blocks, else the small one.
fn rule_tile(m: usize, n: usize, batch: usize) -> Tile {
    if m.div_ceil(128) * n.div_ceil(128) * batch >= LARGE_TILE_MIN_BLOCKS {
        Tile::Large
    } else {
        Tile::Small
    }
}

/// What to multiply: `act(op(A) op(B) + bias + add)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatmulSpec<'a> {
    /// Use Aᵀ: A is stored `[.., K, M]`.
    pub trans_a: bool,
    /// Use Bᵀ: B is stored `[.., N, K]` (as a linear layer's weight `[out, in]`).
    pub trans_b: bool,
    /// A bias of shape `[N]` added to every row.
    pub bias: Option<&'a Tensor>,
    /// A tensor of the output's shape added with the bias (a DEQ's input injection, say).
    pub add: Option<&'a Tensor>,
    /// Applied after the bias and the addend.
    pub activation: Activation,
    /// Force a kernel (`Some(Tile::Large.into())`, say); `None` takes the tuned choice for the
    /// shape (see [`Tile`] and [`MatmulKernel`]). Only with [`Precision::F32`].
    pub kernel: Option<MatmulKernel>,
    /// f32 kernels (the default), or the split-precision product on tensor cores.
    pub precision: Precision,
    /// With [`Precision::SplitF16`]: B already split (made from this B by [`SplitB::new`]).
    pub split_b: Option<&'a SplitB>,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    k_part: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    split_stride: u32,
    /// Matrices of the batch times the parts of K: the grid's third axis.
    layers: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SplitParams {
    total: u32,
    n: u32,
    parts: u32,
    _pad: u32,
}

/// Splits `[batch.., r, c]` into (batch dims, r, c).
fn matrix_dims<'t>(name: &str, t: &'t Tensor) -> Result<(&'t [usize], usize, usize)> {
    let s = t.shape();
    if s.len() < 2 {
        return Err(Error::shape(
            "matmul",
            format!("{name} needs shape [.., rows, cols], got {s:?}"),
        ));
    }
    Ok((&s[..s.len() - 2], s[s.len() - 2], s[s.len() - 1]))
}

/// `act(op(A) op(B) + bias)` for `A: [.., M, K]` (or `[.., K, M]` transposed) and
/// `B: [.., K, N]` (or `[.., N, K]` transposed). Leading batch dimensions must match, or be
/// absent on one side, which then broadcasts. The result is `[.., M, N]`.
///
/// ```
/// use percept::{Gpu, Tensor, ops::{self, Activation, MatmulSpec}};
/// let gpu = Gpu::new()?;
/// let x = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;     // batch 2, 2 inputs
/// let w = Tensor::from_slice(&gpu, &[1.0, -1.0, 0.5, 0.5, 2.0, 0.0], &[3, 2])?; // 3 outputs
/// let b = Tensor::from_slice(&gpu, &[0.0, 0.0, -1.0], &[3])?;
/// let spec = MatmulSpec { trans_b: true, bias: Some(&b), activation: Activation::Relu, ..Default::default() };
/// let y = ops::matmul(&x, &w, &spec)?; // relu(x wᵀ + b), shape [2, 3]
/// assert_eq!(y.to_vec()?, vec![0.0, 1.5, 1.0, 0.0, 3.5, 5.0]);
/// # Ok::<(), percept::Error>(())
/// ```
pub fn matmul(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>) -> Result<Tensor> {
    let shape = output_shape(a, b, spec)?;
    let c = Tensor::uninit(a.gpu(), &shape, DType::F32)?;
    matmul_into(a, b, spec, &c)?;
    Ok(c)
}

/// [`matmul`] writing into `c`, which must have the result's shape (a parameter-gradient view,
/// say) and must not share a buffer with the inputs.
pub fn matmul_into(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>, c: &Tensor) -> Result<()> {
    const OP: &str = "matmul";
    let out_shape = output_shape(a, b, spec)?;
    check_input(OP, a, c)?;
    if c.shape() != out_shape {
        return Err(Error::shape(
            OP,
            format!(
                "the output has shape {:?}, the product {out_shape:?}",
                c.shape()
            ),
        ));
    }
    if [Some(a), Some(b), spec.bias, spec.add]
        .into_iter()
        .flatten()
        .any(|t| t.shares_buffer(c))
    {
        return Err(Error::invalid(
            OP,
            "the output shares a buffer with an input",
        ));
    }
    launch(a, b, spec, c)
}

/// Validates the operands and returns the product's shape.
fn output_shape(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>) -> Result<Vec<usize>> {
    const OP: &str = "matmul";
    check_input(OP, a, a)?;
    check_input(OP, a, b)?;
    let (batch_a, ar, ac) = matrix_dims("A", a)?;
    let (batch_b, br, bc) = matrix_dims("B", b)?;
    let (m, k) = if spec.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if spec.trans_b { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(Error::shape(
            OP,
            format!(
                "op(A) is {m} x {k} but op(B) is {kb} x {n} (A {:?}{}, B {:?}{})",
                a.shape(),
                if spec.trans_a { " transposed" } else { "" },
                b.shape(),
                if spec.trans_b { " transposed" } else { "" },
            ),
        ));
    }
    let batch_dims = match (batch_a.is_empty(), batch_b.is_empty()) {
        (_, true) => batch_a,
        (true, false) => batch_b,
        (false, false) if batch_a == batch_b => batch_a,
        _ => {
            return Err(Error::shape(
                OP,
                format!(
                    "batch dimensions differ: A {:?}, B {:?}",
                    a.shape(),
                    b.shape()
                ),
            ));
        }
    };
    if let Some(bias) = spec.bias {
        check_input(OP, a, bias)?;
        if bias.shape() != [n] {
            return Err(Error::shape(
                OP,
                format!(
                    "bias has shape {:?}, the output has {n} columns",
                    bias.shape()
                ),
            ));
        }
    }
    let mut out_shape = batch_dims.to_vec();
    out_shape.extend([m, n]);
    if let Some(add) = spec.add {
        check_input(OP, a, add)?;
        if add.shape() != out_shape {
            return Err(Error::shape(
                OP,
                format!(
                    "the addend has shape {:?}, the product {out_shape:?}",
                    add.shape()
                ),
            ));
        }
    }
    fits_u32(OP, "elements of A", a.len())?;
    fits_u32(OP, "elements of B", b.len())?;
    // M and N come from different operands: an empty K lets both be huge.
    let out_len = element_count(&out_shape).ok_or_else(|| {
        Error::invalid(OP, format!("the product's shape {out_shape:?} overflows"))
    })?;
    fits_u32(OP, "elements of C", out_len)?;
    Ok(out_shape)
}

/// The sizes and memory layout a launch depends on, from validated operands.
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    broadcast_a: bool,
    broadcast_b: bool,
    /// Whether A and B can be read as vec4s (contiguous dimension a multiple of 4, 16-byte
    /// aligned base).
    vec_a: bool,
    vec_b: bool,
}

impl Problem {
    fn new(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>, c: &Tensor) -> Result<Problem> {
        let (batch_a, ar, ac) = matrix_dims("A", a)?;
        let (batch_b, _, _) = matrix_dims("B", b)?;
        let (m, k) = if spec.trans_a { (ac, ar) } else { (ar, ac) };
        let n = c.shape()[c.shape().len() - 1];
        let a_contiguous = if spec.trans_a { m } else { k };
        let b_contiguous = if spec.trans_b { k } else { n };
        Ok(Problem {
            m,
            n,
            k,
            batch: c.shape()[..c.shape().len() - 2].iter().product(),
            broadcast_a: batch_a.is_empty(),
            broadcast_b: batch_b.is_empty(),
            vec_a: a_contiguous % 4 == 0 && a.binding().offset.is_multiple_of(16),
            vec_b: b_contiguous % 4 == 0 && b.binding().offset.is_multiple_of(16),
        })
    }

    fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64 * self.batch as f64
    }
}

/// Records the product of validated operands into `c`, with the kernel forced, tuned or ruled.
fn launch(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>, c: &Tensor) -> Result<()> {
    let problem = Problem::new(a, b, spec, c)?;
    check_precision(b, spec)?;
    if spec.precision == Precision::SplitF16 {
        let kernel = tune::choose_split_f16(a, b, spec, c, &problem)?;
        return coop::record(a, b, spec, c, &problem, kernel);
    }
    let kernel = match spec.kernel {
        Some(kernel) => check_kernel(a.gpu(), kernel, &problem)?,
        None => within_loop_limit(a.gpu(), tune::choose(a, b, spec, c, &problem)?, &problem)?,
    };
    record(a, b, spec, c, &problem, kernel)
}

/// Refuses what does not go with the spec's precision: halves of B at f32, a forced f32
/// kernel, an adapter without tensor cores or halves made from another (or a rewritten) B with
/// split precision.
fn check_precision(b: &Tensor, spec: &MatmulSpec<'_>) -> Result<()> {
    match spec.precision {
        Precision::F32 if spec.split_b.is_some() => Err(Error::invalid(
            "matmul",
            "MatmulSpec::split_b holds f16 halves for Precision::SplitF16; set that precision \
             or leave split_b None",
        )),
        Precision::F32 => Ok(()),
        Precision::SplitF16 if spec.kernel.is_some() => Err(Error::invalid(
            "matmul",
            "MatmulSpec::kernel forces an f32 kernel, so it cannot go with Precision::SplitF16; \
             leave it None (the tuner chooses among SPLIT_F16_KERNELS)",
        )),
        Precision::SplitF16 => {
            Precision::SplitF16.available(b.gpu())?;
            match spec.split_b {
                Some(halves) => halves.halves_for(b, spec.trans_b).map(drop),
                None => Ok(()),
            }
        }
    }
}

/// A forced kernel, if its split of K is one the product allows (on this adapter: see
/// [`within_loop_limit`]).
fn check_kernel(gpu: &Gpu, kernel: MatmulKernel, p: &Problem) -> Result<MatmulKernel> {
    let (_, _, bk, _) = kernel.tile.dims();
    let slices = p.k.div_ceil(bk).max(1);
    let most = slices.min(MAX_SPLIT_K as usize);
    if kernel.split_k == 0 || kernel.split_k as usize > most {
        return Err(Error::invalid(
            "matmul",
            format!(
                "split_k {} is out of range: K = {} in K-slices of {bk} allows 1 ..= {most}",
                kernel.split_k, p.k
            ),
        ));
    }
    let needed = min_split_k(gpu, p)?;
    if kernel.split_k < needed {
        return Err(Error::invalid(
            "matmul",
            format!(
                "split_k {} leaves parts of K = {} longer than this adapter's loops may run \
                 (Capabilities::max_loop_iterations); use split_k >= {needed}",
                kernel.split_k, p.k
            ),
        ));
    }
    Ok(kernel)
}

/// `kernel`, its K split into at least [`min_split_k`] parts.
fn within_loop_limit(gpu: &Gpu, kernel: MatmulKernel, p: &Problem) -> Result<MatmulKernel> {
    Ok(MatmulKernel {
        split_k: kernel.split_k.max(min_split_k(gpu, p)?),
        ..kernel
    })
}

/// The fewest parts K must be split into on `gpu` for each to stay within the adapter's loop
/// budget ([`crate::gpu::Capabilities::loop_budget`]); 1 where it has none. The f32 kernels
/// count one or two loop iterations per element of K: on lavapipe (a limit of 65535) a 64 x 64
/// product was right at K = 33,000 and wrong, silently, at 65,000.
fn min_split_k(gpu: &Gpu, p: &Problem) -> Result<u32> {
    let Some(budget) = gpu.capabilities().loop_budget() else {
        return Ok(1);
    };
    let longest = budget / 2;
    let parts = p.k.div_ceil(longest).max(1);
    if parts > MAX_SPLIT_K as usize {
        return Err(Error::invalid(
            "matmul",
            format!(
                "K = {} is longer than this adapter can sum: it ends loops past a count \
                 (Capabilities::max_loop_iterations), which allows K up to {} in \
                 {MAX_SPLIT_K} parts; split the product along K yourself, or use another adapter",
                p.k,
                longest * MAX_SPLIT_K as usize
            ),
        ));
    }
    Ok(parts as u32)
}

/// The f32 kernel [`matmul`] uses for these operands: `spec.kernel` if set, else the tuned
/// choice for their shape bucket (measured now if the bucket is new), else the untuned rule.
/// With [`Precision::SplitF16`], see [`split_f16_kernel`].
pub fn matmul_kernel(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>) -> Result<MatmulKernel> {
    f32_only(spec, "matmul_kernel", "split_f16_kernel")?;
    let (c, problem) = scratch_problem(a, b, spec)?;
    match spec.kernel {
        Some(kernel) => check_kernel(a.gpu(), kernel, &problem),
        None => within_loop_limit(a.gpu(), tune::choose(a, b, spec, &c, &problem)?, &problem),
    }
}

/// The f32 kernels tuning times for these operands' shape bucket, the untuned rule's first:
/// every tile, and the large tile with K split where the bucket's outputs are few and its K
/// long (`percept bench matmul` times each beside the chosen one). With
/// [`Precision::SplitF16`], the candidates are the [`SPLIT_F16_KERNELS`] that fit the adapter.
pub fn matmul_candidates(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
) -> Result<Vec<MatmulKernel>> {
    f32_only(spec, "matmul_candidates", "SPLIT_F16_KERNELS")?;
    tune::runnable_candidates(a.gpu(), &scratch_problem(a, b, spec)?.1)
}

/// The split-precision kernel [`matmul`] uses for these operands with
/// [`Precision::SplitF16`]: the tuned choice for their shape bucket (measured now if the
/// bucket is new), else the first of [`SPLIT_F16_KERNELS`] that fits the adapter.
pub fn split_f16_kernel(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>) -> Result<CoopKernel> {
    let spec = MatmulSpec {
        precision: Precision::SplitF16,
        ..*spec
    };
    let (c, problem) = scratch_problem(a, b, &spec)?;
    check_precision(b, &spec)?;
    tune::choose_split_f16(a, b, &spec, &c, &problem)
}

/// Refuses a question about f32 kernels asked of a split-precision spec, naming the one to ask.
fn f32_only(spec: &MatmulSpec<'_>, asked: &str, instead: &str) -> Result<()> {
    match spec.precision {
        Precision::F32 => Ok(()),
        Precision::SplitF16 => Err(Error::invalid(
            "matmul",
            format!("{asked} describes the f32 kernels; with Precision::SplitF16 see {instead}"),
        )),
    }
}

/// A scratch output of the product's shape (tuning writes it), and the product's sizes.
fn scratch_problem(a: &Tensor, b: &Tensor, spec: &MatmulSpec<'_>) -> Result<(Tensor, Problem)> {
    let shape = output_shape(a, b, spec)?;
    let c = Tensor::uninit(a.gpu(), &shape, DType::F32)?;
    let problem = Problem::new(a, b, spec, &c)?;
    Ok((c, problem))
}

/// Records `kernel`'s dispatches: one, or for a split K the parts and their sum.
fn record(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    p: &Problem,
    kernel: MatmulKernel,
) -> Result<()> {
    const OP: &str = "matmul";
    let gpu = a.gpu();
    let parts = kernel.split_k as usize;
    let total = p.batch * p.m * p.n;
    // The parts' sums go to a scratch buffer, [parts, batch, M, N].
    let partial = match parts {
        1 => None,
        _ => Some(Tensor::uninit(gpu, &[parts, total], DType::F32)?),
    };
    let (bm, bn, bk, per) = kernel.tile.dims();
    let k_part = p.k.div_ceil(parts).next_multiple_of(bk);
    let main = KernelSpec::new(OP, SOURCES, OP, BINDINGS)
        .with("BM", Const::U32(bm as u32))
        .with("BN", Const::U32(bn as u32))
        .with("BK", Const::U32(bk as u32))
        .with("PER", Const::U32(per as u32))
        .with("SPLIT", Const::U32(parts as u32))
        .with("TRANS_A", Const::Bool(spec.trans_a))
        .with("TRANS_B", Const::Bool(spec.trans_b))
        .with("VEC_A", Const::Bool(p.vec_a))
        .with("VEC_B", Const::Bool(p.vec_b))
        .with("BIAS", Const::Bool(spec.bias.is_some()))
        .with("ADD", Const::Bool(spec.add.is_some()))
        .with("ACT", Const::U32(spec.activation.code()));
    let (m, n, k) = (p.m, p.n, p.k);
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        k_part: k_part as u32,
        stride_a: if p.broadcast_a { 0 } else { (m * k) as u32 },
        stride_b: if p.broadcast_b { 0 } else { (k * n) as u32 },
        stride_c: (m * n) as u32,
        split_stride: fits_u32(OP, "elements of the output", total)?,
        layers: fits_u32(OP, "batch times the parts of K", p.batch * parts)?,
        _pad: [0; 3],
    };
    let bias = spec.bias.unwrap_or(a);
    let add = spec.add.unwrap_or(a);
    gpu.dispatch(
        &main,
        bytemuck::bytes_of(&params),
        &[
            a.binding(),
            a.binding(),
            b.binding(),
            b.binding(),
            bias.binding(),
            add.binding(),
            partial.as_ref().unwrap_or(c).binding(),
        ],
        gpu.block_grid([n.div_ceil(bn), m.div_ceil(bm), p.batch * parts])?,
    )?;
    let Some(partial) = partial else {
        return Ok(());
    };
    let sum = KernelSpec::new(OP, SPLIT_SOURCES, "matmul_split_sum", SPLIT_BINDINGS)
        .with("BIAS", Const::Bool(spec.bias.is_some()))
        .with("ADD", Const::Bool(spec.add.is_some()))
        .with("ACT", Const::U32(spec.activation.code()));
    let params = SplitParams {
        total: total as u32,
        n: n as u32,
        parts: parts as u32,
        _pad: 0,
    };
    gpu.dispatch(
        &sum,
        bytemuck::bytes_of(&params),
        &[
            partial.binding(),
            bias.binding(),
            add.binding(),
            c.binding(),
        ],
        gpu.grid((total as u64).div_ceil(256))?,
    )
}

#[cfg(test)]
mod tests {
    use super::Tile;

    /// The shader gives each invocation a whole number of vec4s of each K-slice to stage.
    #[test]
    fn every_tile_stages_whole_vec4s_per_invocation() {
        for tile in Tile::ALL {
            let (bm, bn, bk, per) = tile.dims();
            let invocations = (bm / per) * (bn / per);
            assert_eq!(bm % per + bn % per + bk % 4, 0, "{tile:?}");
            assert!(bk * bm / 4 >= invocations, "{tile:?}: idle A loads");
            assert_eq!((bk * bm / 4) % invocations, 0, "{tile:?}: A share");
            assert_eq!((bk * bn / 4) % invocations, 0, "{tile:?}: B share");
        }
    }
}
