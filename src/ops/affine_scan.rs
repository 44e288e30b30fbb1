//! Batched affine recurrences `x[k] = A[k] x[k-1] + v[k]`, forward and transposed-backward: the
//! linear solves of DeepPCR (block-bidiagonal systems). Two parallel scans: recursive doubling
//! (PCR) in ceil(log2 L) levels (`shaders/affine_scan.wgsl`), and a chunked, work-efficient scan
//! (`shaders/affine_chunk.wgsl`) whose chains run across a workgroup or in one invocation's
//! registers; the fastest method and chunk length for the shape are chosen by measurement.

use bytemuck::{Pod, Zeroable};

use super::{check_input, fits_u32};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const SCAN_SOURCES: &[&str] = &[include_str!("../../shaders/affine_scan.wgsl")];
const CHUNK_SOURCES: &[&str] = &[include_str!("../../shaders/affine_chunk.wgsl")];
const REVERSE_SOURCES: &[&str] = &[include_str!("../../shaders/affine_scan_reverse.wgsl")];
const UNREVERSE_SOURCES: &[&str] = &[include_str!("../../shaders/reverse_rows.wgsl")];
const MAPS_SOURCES: &[&str] = &[include_str!("../../shaders/affine_maps.wgsl")];
const FIVE: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];
const FOUR: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];
const THREE: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
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
struct ChunkParams {
    len: u32,
    batch: u32,
    chunks: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RowParams {
    len: u32,
    row: u32,
    _pad: [u32; 2],
}

/// Widest block the chunked scan takes: its workgroup holds a w x (w + 1) map (16.6 KB at 64,
/// which some adapters' workgroup memory does not hold).
pub const MAX_CHUNKED_WIDTH: usize = 64;

/// Widest block [`ScanMethod::ChunkedRegisters`] takes: an invocation holds two w-vectors.
pub const MAX_CHUNKED_REGISTERS_WIDTH: usize = 32;

/// Whether the chunked scan's workgroup memory (at least 256 floats, or one w x (w + 1) map)
/// fits the adapter, and w is at most [`MAX_CHUNKED_WIDTH`].
fn chunked_fits(gpu: &crate::Gpu, w: usize) -> bool {
    let bytes = (w * (w + 1)).max(256) * 4;
    w <= MAX_CHUNKED_WIDTH && bytes <= gpu.capabilities().max_workgroup_storage_size as usize
}

/// Whether a chunked scan's kernels keep within the adapter's loop budget
/// ([`crate::gpu::Capabilities::loop_budget`]). The workgroup compose kernel's invocations loop
/// over the chunk's steps, their share of the map's entries, and a row of w: on lavapipe it came
/// out wrong, silently, at chunks of 64 steps and w = 64 (64 x 17 x 65 = 70,720 iterations);
/// chunks of 32 (half that) came out right but are past the budget, and refused. The register
/// kernels' loops over w do not count there (right at chunks of 512 steps and w = 32), only
/// their steps.
fn chunked_within_loop_limit(gpu: &crate::Gpu, method: ScanMethod, w: usize) -> bool {
    let Some(budget) = gpu.capabilities().loop_budget() else {
        return true;
    };
    match method {
        ScanMethod::Doubling => true,
        ScanMethod::Chunked { chunk } => chunk * compose_groups(w).1 * (w + 1) <= budget,
        ScanMethod::ChunkedRegisters { chunk } => chunk <= budget,
    }
}

/// The workgroup compose kernel's shape for blocks of `w`: as many augmented maps [P | q] of
/// w x (w + 1) entries as fit 256 invocations (at least one), and the entries each invocation
/// owns.
fn compose_groups(w: usize) -> (usize, usize) {
    let entries = w * (w + 1);
    let groups = (256 / entries).max(1);
    (groups, (groups * entries).div_ceil(256))
}

/// Scans smaller than this (L w^2 batch, the size of A) take recursive doubling unmeasured.
const MIN_TUNED_ELEMENTS: usize = 1 << 16;

/// How [`affine_scan`] solves a recurrence of L steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanMethod {
    /// Recursive doubling (PCR): ceil(log2 L) dependent levels, O(L w^3 log L) work.
    Doubling,
    /// Chunks of `chunk` steps (1 to L) composed in parallel, recursive doubling over the
    /// chunks, then each chunk replayed from its carry-in: 2 + ceil(log2(L / chunk)) dependent
    /// levels with chains of `chunk` steps inside them, O(L w^3) work. Widths up to
    /// [`MAX_CHUNKED_WIDTH`] whose w x (w + 1) map fits the adapter's workgroup memory, and
    /// (on adapters that end loops past a count, see [`crate::gpu::Capabilities::loop_budget`])
    /// chains within the budget. Each chain runs across a workgroup, an invocation per entry of
    /// the map, a barrier per step.
    Chunked {
        /// Steps per chunk ([`ScanMethod::rule_chunk`] unless tuned).
        chunk: usize,
    },
    /// The chunked scan with each chain in one invocation's registers (a column of a chunk's
    /// map, or a chunk's vector): no barriers, but w times fewer invocations. Same levels and
    /// chains as `Chunked`; widths up to [`MAX_CHUNKED_REGISTERS_WIDTH`].
    ChunkedRegisters {
        /// Steps per chunk ([`ScanMethod::rule_chunk`] unless tuned).
        chunk: usize,
    },
}

impl ScanMethod {
    /// Every method for a recurrence of `len` steps, the chunked ones with the rule's chunk.
    pub fn all(len: usize) -> [ScanMethod; 3] {
        let chunk = ScanMethod::rule_chunk(len);
        [
            ScanMethod::Doubling,
            ScanMethod::Chunked { chunk },
            ScanMethod::ChunkedRegisters { chunk },
        ]
    }

    /// The fixed rule's steps per chunk: 2^ceil(log2(L) / 2), about sqrt(L), which balances the
    /// work of the chains inside chunks against that of the doubling scan over the chunks. On
    /// a GPU shorter chunks can be faster (more invocations, shorter chains, a level or two
    /// more), so tuning also measures a half and a quarter of it.
    pub fn rule_chunk(len: usize) -> usize {
        1 << ceil_log2(len).div_ceil(2)
    }

    /// The method's name in tuning files and reports: `doubling`, or the chunked scans with
    /// their chunk, e.g. `chunked_registers/32`.
    pub fn name(self) -> String {
        match self {
            ScanMethod::Doubling => "doubling".to_string(),
            ScanMethod::Chunked { chunk } => format!("chunked/{chunk}"),
            ScanMethod::ChunkedRegisters { chunk } => format!("chunked_registers/{chunk}"),
        }
    }

    /// Steps per chunk of the chunked scans.
    fn chunk(self) -> Option<usize> {
        match self {
            ScanMethod::Doubling => None,
            ScanMethod::Chunked { chunk } | ScanMethod::ChunkedRegisters { chunk } => Some(chunk),
        }
    }

    /// Dependent dispatches that solve a recurrence of `len` steps (a single chunk is replayed
    /// in one).
    pub fn levels(self, len: usize) -> usize {
        match self.chunk() {
            // A single step is a copy.
            None => ceil_log2(len).max(1),
            Some(chunk) if chunk >= len => 1,
            Some(chunk) => 2 + ceil_log2(len.div_ceil(chunk.max(1))),
        }
    }

    /// The longest chain of dependent steps inside one dispatch (1 for doubling).
    pub fn chain(self, len: usize) -> usize {
        self.chunk().map_or(1, |chunk| chunk.min(len))
    }
}

/// Written as its [`ScanMethod::name`], as tuning files and reports show it.
impl serde::Serialize for ScanMethod {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

fn ceil_log2(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// The maps `A[k]` of an affine scan, per step and batch entry.
#[derive(Clone, Copy, Debug)]
pub enum ScanMaps<'a> {
    /// `[L, batch, w, w]`, a block per step and batch entry.
    Dense(&'a Tensor),
    /// `A[k] = diag(scales[k]) weights[k]` for each batch entry: `weights` `[L, w, w]` shared by
    /// the batch and `scales` `[L, batch, w]`, as a deep MLP's layer Jacobians (the weight's rows
    /// scaled by act'(u)): L (w^2 + batch w) floats instead of L batch w^2. The chunked scans read
    /// the factors; recursive doubling multiplies them out first.
    RowScaled {
        /// `[L, w, w]`.
        weights: &'a Tensor,
        /// `[L, batch, w]`.
        scales: &'a Tensor,
    },
}

impl<'a> From<&'a Tensor> for ScanMaps<'a> {
    fn from(a: &'a Tensor) -> Self {
        ScanMaps::Dense(a)
    }
}

impl ScanMaps<'_> {
    /// The tensor the kernels bind as `a` (dense maps or weights) and as `scales`.
    fn bindings(&self) -> (&Tensor, &Tensor) {
        match *self {
            ScanMaps::Dense(a) => (a, a),
            ScanMaps::RowScaled { weights, scales } => (weights, scales),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ScanMaps::Dense(_) => "dense",
            ScanMaps::RowScaled { .. } => "row_scaled",
        }
    }
}

/// Checks the maps against `v: [L, batch, w]`; returns (L, batch, w).
fn dims(op: &'static str, maps: &ScanMaps<'_>, v: &Tensor) -> Result<(usize, usize, usize)> {
    check_input(op, v, v)?;
    let s = v.shape();
    if s.len() != 3 || s.contains(&0) {
        return Err(Error::shape(
            op,
            format!("need v [L, batch, w], non-empty; got {s:?}"),
        ));
    }
    let (len, batch, w) = (s[0], s[1], s[2]);
    match *maps {
        ScanMaps::Dense(a) => {
            check_input(op, v, a)?;
            if a.shape() != [len, batch, w, w] {
                return Err(Error::shape(
                    op,
                    format!(
                        "need A [L, batch, w, w] = {:?} for v {s:?}; got {:?}",
                        [len, batch, w, w],
                        a.shape()
                    ),
                ));
            }
            fits_u32(op, "elements of A", a.len())?;
        }
        ScanMaps::RowScaled { weights, scales } => {
            check_input(op, v, weights)?;
            check_input(op, v, scales)?;
            if weights.shape() != [len, w, w] || scales.shape() != s {
                return Err(Error::shape(
                    op,
                    format!(
                        "need weights [L, w, w] = {:?} and scales [L, batch, w] = {s:?} for v \
                         {s:?}; got {:?} and {:?}",
                        [len, w, w],
                        weights.shape(),
                        scales.shape()
                    ),
                ));
            }
        }
    }
    if w > MAX_AFFINE_WIDTH {
        return Err(Error::invalid(
            op,
            format!("block width {w} is past the kernels' {MAX_AFFINE_WIDTH}"),
        ));
    }
    Ok((len, batch, w))
}

/// What one scan solves: the maps, the right-hand sides, and whether it is the transposed,
/// backward recurrence.
struct Scan<'a> {
    maps: ScanMaps<'a>,
    v: &'a Tensor,
    transposed: bool,
    len: usize,
    batch: usize,
    w: usize,
}

impl Scan<'_> {
    /// Whether `method` takes this scan; if not, why: the chunked scans' chunks and widths, and
    /// for doubling of factored maps, the dense maps it forms.
    fn check(&self, method: ScanMethod) -> Result<()> {
        let (gpu, w) = (self.v.gpu(), self.w);
        if let Some(chunk) = method.chunk()
            && !(1..=self.len).contains(&chunk)
        {
            return Err(Error::invalid(
                "affine_scan",
                format!(
                    "a chunk of {chunk} steps for a recurrence of {} (give 1 to {0}; \
                     ScanMethod::rule_chunk is the default)",
                    self.len
                ),
            ));
        }
        let limit = match method {
            ScanMethod::Doubling => {
                if let ScanMaps::RowScaled { .. } = self.maps {
                    let dense = self.len * self.batch * w * w;
                    fits_u32("affine_scan", "elements of the dense maps", dense)?;
                    gpu.check_buffer_size(
                        "the dense maps a doubling scan forms from factored ones (a chunked \
                         ScanMethod reads the factors)",
                        4 * dense as u64,
                    )?;
                }
                return Ok(());
            }
            ScanMethod::Chunked { .. } if !chunked_fits(gpu, w) => format!(
                "blocks up to {MAX_CHUNKED_WIDTH} wide whose w x (w + 1) map fits workgroup \
                 memory ({} bytes here)",
                gpu.capabilities().max_workgroup_storage_size
            ),
            ScanMethod::ChunkedRegisters { .. } if w > MAX_CHUNKED_REGISTERS_WIDTH => {
                format!("blocks up to {MAX_CHUNKED_REGISTERS_WIDTH} wide")
            }
            ScanMethod::Chunked { chunk } | ScanMethod::ChunkedRegisters { chunk } => {
                if chunked_within_loop_limit(gpu, method, w) {
                    return Ok(());
                }
                return Err(Error::invalid(
                    "affine_scan",
                    format!(
                        "the {} scan's chains over {chunk} steps of blocks {w} wide would run \
                         past this adapter's loop limit (Capabilities::max_loop_iterations); use \
                         shorter chunks or another ScanMethod",
                        method.name()
                    ),
                ));
            }
        };
        Err(Error::invalid(
            "affine_scan",
            format!(
                "the {} scan takes {limit}, not {w}; use another ScanMethod",
                method.name()
            ),
        ))
    }

    /// The method for this scan, among doubling and the chunked scans with the rule's chunk, a
    /// half and a quarter of it: the first that takes it (recursive doubling, unless its dense
    /// maps would not fit) where the scan is small or only one applies, else the one measured
    /// fastest for the shape bucket.
    fn choose(&self) -> Result<ScanMethod> {
        let (len, batch, w) = (self.len, self.batch, self.w);
        let rule_chunk = ScanMethod::rule_chunk(len);
        // Chunks of one step would be doubling with extra passes.
        let shorter = [rule_chunk / 2, rule_chunk / 4]
            .into_iter()
            .filter(|&chunk| chunk >= 2)
            .flat_map(|chunk| {
                [
                    ScanMethod::Chunked { chunk },
                    ScanMethod::ChunkedRegisters { chunk },
                ]
            });
        let candidates: Vec<ScanMethod> = ScanMethod::all(len)
            .into_iter()
            .chain(shorter)
            .filter(|&m| self.check(m).is_ok())
            .collect();
        match candidates[..] {
            [] => {
                return self
                    .check(ScanMethod::Doubling)
                    .map(|()| ScanMethod::Doubling);
            }
            [only] => return Ok(only),
            [first, ..] if len * batch * w * w < MIN_TUNED_ELEMENTS => return Ok(first),
            _ => {}
        }
        let key = format!(
            "affine_scan len{} batch{} w{w} {}{}",
            len.next_power_of_two(),
            batch.next_power_of_two(),
            self.maps.name(),
            if self.transposed { " transposed" } else { "" }
        );
        self.v
            .gpu()
            .tune(key, &candidates, ScanMethod::name, |method| {
                self.run(method)
            })
    }

    /// Solves by `method`, or the chosen one.
    fn solve(&self, method: Option<ScanMethod>) -> Result<Tensor> {
        let method = match method {
            Some(method) => {
                self.check(method)?;
                method
            }
            None => self.choose()?,
        };
        self.run(method)
    }

    fn run(&self, method: ScanMethod) -> Result<Tensor> {
        match method {
            ScanMethod::Doubling => self.doubling(),
            ScanMethod::Chunked { chunk } => self.chunked(chunk, false),
            ScanMethod::ChunkedRegisters { chunk } => self.chunked(chunk, true),
        }
    }

    /// The maps as one dense tensor, multiplying factored ones out.
    fn dense_maps(&self) -> Result<Tensor> {
        let (weights, scales) = match self.maps {
            ScanMaps::Dense(a) => return Ok(a.clone()),
            ScanMaps::RowScaled { weights, scales } => (weights, scales),
        };
        let gpu = self.v.gpu();
        let (len, batch, w) = (self.len, self.batch, self.w);
        let a = Tensor::uninit(gpu, &[len, batch, w, w], DType::F32)?;
        let params = Params {
            len: len as u32,
            batch: batch as u32,
            w: w as u32,
            shift: 0,
        };
        gpu.dispatch(
            &KernelSpec::new("affine_maps", MAPS_SOURCES, "row_scaled_maps", THREE),
            bytemuck::bytes_of(&params),
            &[weights.binding(), scales.binding(), a.binding()],
            gpu.grid(((len * batch * w * w) as u64).div_ceil(256))?,
        )?;
        Ok(a)
    }

    /// Recursive doubling; a transposed scan is reversed into a forward one first, and its
    /// solution put back in order.
    fn doubling(&self) -> Result<Tensor> {
        // One step: its map multiplies nothing (x[0] = v[0]), so none is formed.
        if self.len == 1 {
            return super::copy(self.v);
        }
        let a = self.dense_maps()?;
        let (len, batch, w) = (self.len, self.batch, self.w);
        if !self.transposed {
            return doubling(&a, self.v, len, batch, w);
        }
        let gpu = self.v.gpu();
        let m = Tensor::uninit(gpu, a.shape(), DType::F32)?;
        let u = Tensor::uninit(gpu, self.v.shape(), DType::F32)?;
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
            &[a.binding(), self.v.binding(), m.binding(), u.binding()],
            grid,
        )?;
        let reversed = doubling(&m, &u, len, batch, w)?;
        let y = Tensor::uninit(gpu, self.v.shape(), DType::F32)?;
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

    /// The chunked scan in chunks of `chunk` steps: compose each chunk's maps, solve the
    /// recurrence of the chunks' maps by doubling, replay each chunk from its carry-in; each
    /// chain across a workgroup, or in one invocation's `registers`. The kernels read the maps
    /// as given (dense or factored, and transposed in reverse order for the transposed scan).
    fn chunked(&self, chunk: usize, registers: bool) -> Result<Tensor> {
        let gpu = self.v.gpu();
        let (len, batch, w) = (self.len, self.batch, self.w);
        let chunks = len.div_ceil(chunk);
        let params = ChunkParams {
            len: len as u32,
            batch: batch as u32,
            chunks: chunks as u32,
            _pad: 0,
        };
        let pairs = (chunks * batch) as u64;
        let spec = |entry: &'static str, groups: usize, per: usize, shared: usize| {
            KernelSpec::new("affine_chunk", CHUNK_SOURCES, entry, FIVE)
                .with("W", Const::U32(w as u32))
                .with("CHUNK", Const::U32(chunk as u32))
                .with(
                    "ROW_SCALED",
                    Const::Bool(matches!(self.maps, ScanMaps::RowScaled { .. })),
                )
                .with("REVERSE", Const::Bool(self.transposed))
                .with("GROUPS", Const::U32(groups as u32))
                .with("PER", Const::U32(per as u32))
                .with("SHARED", Const::U32(shared as u32))
        };
        let (a, scales) = self.maps.bindings();
        let x = Tensor::uninit(gpu, self.v.shape(), DType::F32)?;
        let inputs = [a.binding(), scales.binding(), self.v.binding()];
        // The register kernels run 64 invocations per workgroup: w + 1 per pair (one per column
        // of its map) to compose, one per pair to apply.
        let register_grid = |per_pair: u64| gpu.grid((pairs * per_pair).div_ceil(64));
        let carries = if chunks == 1 {
            // One chunk is replayed from zero: no composed map, no carries (this is not read).
            Tensor::uninit(gpu, &[1, batch, w], DType::F32)?
        } else {
            let p = Tensor::uninit(gpu, &[chunks, batch, w, w], DType::F32)?;
            let q = Tensor::uninit(gpu, &[chunks, batch, w], DType::F32)?;
            if registers {
                gpu.dispatch(
                    &spec("chunk_compose_registers", 1, 1, 1),
                    bytemuck::bytes_of(&params),
                    &[inputs[0], inputs[1], inputs[2], p.binding(), q.binding()],
                    register_grid(w as u64 + 1)?,
                )?;
            } else {
                let (groups, per) = compose_groups(w);
                gpu.dispatch(
                    &spec("chunk_compose", groups, per, groups * w * (w + 1)),
                    bytemuck::bytes_of(&params),
                    &[inputs[0], inputs[1], inputs[2], p.binding(), q.binding()],
                    gpu.grid(pairs.div_ceil(groups as u64))?,
                )?;
            }
            doubling(&p, &q, chunks, batch, w)?
        };
        if registers {
            gpu.dispatch(
                &spec("chunk_apply_registers", 1, 1, 1),
                bytemuck::bytes_of(&params),
                &[
                    inputs[0],
                    inputs[1],
                    inputs[2],
                    carries.binding(),
                    x.binding(),
                ],
                register_grid(1)?,
            )?;
        } else {
            // One invocation per row of each group's vector.
            let groups = 256 / w;
            gpu.dispatch(
                &spec("chunk_apply", groups, 1, groups * w),
                bytemuck::bytes_of(&params),
                &[
                    inputs[0],
                    inputs[1],
                    inputs[2],
                    carries.binding(),
                    x.binding(),
                ],
                gpu.grid(pairs.div_ceil(groups as u64))?,
            )?;
        }
        Ok(x)
    }
}

/// Recursive doubling of dense maps: ceil(log2 L) levels of `shaders/affine_scan.wgsl`.
fn doubling(a: &Tensor, v: &Tensor, len: usize, batch: usize, w: usize) -> Result<Tensor> {
    let gpu = v.gpu();
    let levels = ScanMethod::Doubling.levels(len);
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
            .with("W", Const::U32(w as u32))
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
/// `batch` independent recurrences: the maps are `[L, batch, w, w]` (a `&Tensor`, or
/// [`ScanMaps::RowScaled`] factors), `v` and the result `[L, batch, w]`. Takes
/// [`ScanMethod::levels`] dependent dispatches of the method [`affine_scan_method`] reports
/// (doubling one more for factored maps, which it multiplies out), unless `method` forces one.
pub fn affine_scan<'a>(
    maps: impl Into<ScanMaps<'a>>,
    v: &'a Tensor,
    method: Option<ScanMethod>,
) -> Result<Tensor> {
    scan("affine_scan", maps.into(), v, false)?.solve(method)
}

/// Solves the transposed recurrence that runs backward,
/// `y[l] = A[l+1]^T y[l+1] + v[l]` for l = L-1..0 with `y[L] = 0`: the adjoint of
/// [`affine_scan`], which back-propagation through it needs. Same shapes and methods; the
/// chunked scans read the maps in reverse order themselves, doubling reverses a copy of them
/// and its solution (two dispatch levels more).
pub fn affine_scan_transposed<'a>(
    maps: impl Into<ScanMaps<'a>>,
    v: &'a Tensor,
    method: Option<ScanMethod>,
) -> Result<Tensor> {
    scan("affine_scan_transposed", maps.into(), v, true)?.solve(method)
}

/// The method [`affine_scan`] uses for these operands (or [`affine_scan_transposed`], when
/// `transposed`): measured now if their shape bucket is new (see [`crate::Tuning`]).
pub fn affine_scan_method<'a>(
    maps: impl Into<ScanMaps<'a>>,
    v: &'a Tensor,
    transposed: bool,
) -> Result<ScanMethod> {
    scan("affine_scan_method", maps.into(), v, transposed)?.choose()
}

fn scan<'a>(
    op: &'static str,
    maps: ScanMaps<'a>,
    v: &'a Tensor,
    transposed: bool,
) -> Result<Scan<'a>> {
    let (len, batch, w) = dims(op, &maps, v)?;
    Ok(Scan {
        maps,
        v,
        transposed,
        len,
        batch,
        w,
    })
}
