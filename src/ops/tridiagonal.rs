//! Batched tridiagonal solves (`shaders/tridiagonal_pcr.wgsl`, `shaders/tridiagonal_thomas.wgsl`,
//! `shaders/tridiagonal_pcr_level.wgsl`): cyclic reduction down to at most [`PCR_SIZE`]
//! equations, then parallel cyclic reduction, in workgroup memory (CR+PCR); one invocation per
//! system (Thomas) for many short systems; and for systems too long for workgroup memory,
//! levels of parallel cyclic reduction in global memory that split each system into enough
//! independent ones to fill the GPU, then Thomas on those (partitioned).

use bytemuck::{Pod, Zeroable};

use super::{Reduction, check_input, fits_u32, reduce_all, rows_cols};
use crate::error::{Error, Result};
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::tensor::{DType, Tensor};

const PCR_SOURCES: &[&str] = &[include_str!("../../shaders/tridiagonal_pcr.wgsl")];
const PCR_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
];
const THOMAS_SOURCES: &[&str] = &[include_str!("../../shaders/tridiagonal_thomas.wgsl")];
const THOMAS_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];
const LEVEL_SOURCES: &[&str] = &[include_str!("../../shaders/tridiagonal_pcr_level.wgsl")];
const LEVEL_BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// Systems at least this many, of at most [`THOMAS_MAX_SHORT`] equations, go one per invocation:
/// enough of them to fill a GPU, each too short to keep a 256-wide workgroup busy.
const THOMAS_MIN_SYSTEMS: usize = 4096;
const THOMAS_MAX_SHORT: usize = 64;

/// Independent systems the partitioned method aims for: one invocation each, enough to fill
/// a large GPU (an H200 runs about 270,000 invocations at once; a fraction of that already
/// hides Thomas's dependent loads).
const PARTITION_SYSTEMS: usize = 1 << 16;
/// ... as long as each keeps at least this many equations: below that a level of global
/// reduction (a pass over all the systems) buys less than it costs.
const MIN_PARTITION_LEN: usize = 8;

/// How a batch of systems is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TridiagonalMethod {
    /// Cyclic reduction then parallel cyclic reduction (CR+PCR), one workgroup per system.
    Pcr,
    /// The Thomas algorithm, one invocation per system.
    Thomas,
    /// Levels of parallel cyclic reduction over whole systems in global memory, one dispatch
    /// each, that split every system into 2, 4, 8, ... independent interleaved ones, then Thomas
    /// on those, one invocation each: for systems too long for workgroup memory and too few to
    /// fill the GPU one per invocation (a single system of 10^6 equations, say). Each level
    /// reads and writes every equation once more than Thomas alone.
    Partitioned,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    systems: u32,
    /// Thomas: interleaved systems per system. A global PCR level: the distance it eliminates.
    /// CR+PCR: unused.
    stride: u32,
    _pad: u32,
}

/// The largest system the CR+PCR kernel hands from cyclic to parallel cyclic reduction: CR
/// halves the system with O(n) work until at most this many equations are left, which PCR
/// solves in log2 of that many steps with every equation active.
pub const PCR_SIZE: usize = 128;

/// Cyclic-reduction steps that bring `n` equations down to at most [`PCR_SIZE`].
fn cr_steps(n: usize) -> u32 {
    let mut steps = 0;
    while n >> steps > PCR_SIZE {
        steps += 1;
    }
    steps
}

/// Equations one invocation owns in the PCR kernel, or `None` when a system of `n` does not
/// fit the adapter's workgroup memory.
fn pcr_equations(n: usize, workgroup_bytes: u32) -> Option<usize> {
    let eq = n.div_ceil(256).max(1);
    (eq * 256 * 4 * 4 <= workgroup_bytes as usize).then_some(eq)
}

/// Whether the PCR kernel's four arrays fit with a slot of padding after every 32 (which keeps
/// its strided accesses in different memory banks).
fn pcr_padded_fits(eq: usize, workgroup_bytes: u32) -> bool {
    let slots = eq * 256 + eq * 256 / 32;
    slots * 4 * 4 <= workgroup_bytes as usize
}

/// Batches smaller than this many equations in all take the rule's method unmeasured: they are
/// over in microseconds on a GPU. (On lavapipe the rule's choice is already 10x off at 64
/// systems of 1000.)
const MIN_TUNED_EQUATIONS: usize = 1 << 12;

/// The longest system one Thomas invocation may solve on `gpu`: its two loops run n - 1 times
/// each, and some drivers end loops silently past a count
/// ([`crate::gpu::Capabilities::loop_budget`]; lavapipe's gives 16384 equations. There a
/// system of 32768 still came out right, and one of 40,000 wrong).
fn thomas_max_len(gpu: &crate::Gpu) -> usize {
    match gpu.capabilities().loop_budget() {
        Some(iterations) => iterations / 2 + 1,
        None => usize::MAX,
    }
}

/// Levels of global PCR the partitioned method runs on `systems` systems of `n`: as many as it
/// takes to bring the interleaved systems within Thomas's `max_len`, then more until there are
/// [`PARTITION_SYSTEMS`] of them, while one more level would leave them at least
/// [`MIN_PARTITION_LEN`] long. Zero levels is plain Thomas.
fn partition_levels(n: usize, systems: usize, max_len: usize) -> u32 {
    let mut levels = 0;
    while n.div_ceil(1 << levels) > max_len
        || (systems << levels < PARTITION_SYSTEMS && n >> (levels + 1) >= MIN_PARTITION_LEN)
    {
        levels += 1;
    }
    levels
}

impl TridiagonalMethod {
    /// Every method.
    pub const ALL: [TridiagonalMethod; 3] = [
        TridiagonalMethod::Pcr,
        TridiagonalMethod::Thomas,
        TridiagonalMethod::Partitioned,
    ];

    /// The method's name in tuning files and reports.
    pub fn name(self) -> &'static str {
        match self {
            TridiagonalMethod::Pcr => "pcr",
            TridiagonalMethod::Thomas => "thomas",
            TridiagonalMethod::Partitioned => "partitioned",
        }
    }

    /// Whether the method solves `systems` systems of `n` equations on `gpu` in a way of its
    /// own: CR+PCR needs a system to fit workgroup memory, Thomas a system within the
    /// adapter's loop limit (see [`crate::gpu::Capabilities::max_loop_iterations`]), and the
    /// partitioned method is plain Thomas where it would run no level.
    pub fn applies(self, gpu: &crate::Gpu, systems: usize, n: usize) -> bool {
        match self {
            TridiagonalMethod::Pcr => {
                pcr_equations(n, gpu.capabilities().max_workgroup_storage_size).is_some()
            }
            TridiagonalMethod::Thomas => n <= thomas_max_len(gpu),
            TridiagonalMethod::Partitioned => partition_levels(n, systems, thomas_max_len(gpu)) > 0,
        }
    }
}

/// The fixed rule, used where tuning is off: CR+PCR unless the systems are many and short, or do
/// not fit workgroup memory; those too long for it partitioned unless they are already many
/// (and within Thomas's reach).
fn rule_method(gpu: &crate::Gpu, n: usize, systems: usize) -> TridiagonalMethod {
    let many_short = systems >= THOMAS_MIN_SYSTEMS && n <= THOMAS_MAX_SHORT;
    match pcr_equations(n, gpu.capabilities().max_workgroup_storage_size) {
        Some(_) if !many_short => TridiagonalMethod::Pcr,
        Some(_) => TridiagonalMethod::Thomas,
        None if partition_levels(n, systems, thomas_max_len(gpu)) > 0 => {
            TridiagonalMethod::Partitioned
        }
        None => TridiagonalMethod::Thomas,
    }
}

/// The method [`tridiagonal_solve`] uses for these systems: where tuning is on
/// ([`crate::Tuning`]), the one measured fastest on this adapter for their shape bucket among
/// those that [apply](TridiagonalMethod::applies) (measured now if the bucket is new); else the
/// fixed rule. On lavapipe, a CPU, Thomas wins everywhere, by 10x at 256 systems of 1024; on a
/// GPU the parallel methods should win where systems are few and long.
pub fn tridiagonal_method(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
) -> Result<TridiagonalMethod> {
    let batch = Batch::new(a, b, c, d)?;
    let x = Tensor::uninit(d.gpu(), d.shape(), DType::F32)?;
    choose(&batch, &x)
}

/// The method for `batch`, tuned (measured by solving into `x`) or ruled.
fn choose(batch: &Batch<'_>, x: &Tensor) -> Result<TridiagonalMethod> {
    let Batch { systems, n, .. } = *batch;
    let gpu = batch.d.gpu();
    let rule = rule_method(gpu, n, systems);
    if n * systems < MIN_TUNED_EQUATIONS {
        return Ok(rule);
    }
    // Beside the rule's, the methods that apply to the bucket's largest sizes (and so run on
    // every size in it: CR+PCR fits a shorter system too, Thomas takes a shorter chain, and the
    // partitioned method runs anywhere). The key names the candidates: sizes whose rule's method
    // does not apply to the whole bucket (CR+PCR near workgroup memory's limit) keep a choice of
    // their own, and a choice made among fewer methods (by an older build) is measured again.
    let (bucket_n, bucket_systems) = (n.next_power_of_two(), systems.next_power_of_two());
    let mut candidates = vec![rule];
    candidates.extend(
        TridiagonalMethod::ALL
            .into_iter()
            .filter(|&m| m != rule && m.applies(gpu, bucket_systems, bucket_n)),
    );
    let mut names: Vec<&str> = candidates.iter().map(|m| m.name()).collect();
    names.sort_unstable();
    let key = format!(
        "tridiagonal n{bucket_n} systems{bucket_systems} of {}",
        names.join(",")
    );
    gpu.tune(key, &candidates, TridiagonalMethod::name, |method| {
        batch.record(method, x).map(|()| x.clone())
    })
}

/// Solves `a[i] x[i-1] + b[i] x[i] + c[i] x[i+1] = d[i]` for every row of `[.., n]` tensors
/// (`a[0]` and `c[n-1]` are ignored) by `method`, or by [`tridiagonal_method`]'s choice.
///
/// No method pivots: the systems must be safe for elimination without pivoting (diagonally
/// dominant, or symmetric positive definite, say).
///
/// In f32 the methods differ on ill-conditioned systems, where no f32 method promises more than
/// about the condition number times 6e-8. The 1-D Dirichlet Laplacian (`-1, 2, -1`, condition
/// about 0.4 n^2) is the usual example: with random `d`, Thomas's relative error grows as n^2
/// (3.4e-4 at n = 1024, 1.6e-2 at 4096, 0.65 at 16384; lavapipe, 2026-11-27), while CR+PCR
/// (at 1024, where it fits workgroup memory) and the partitioned method (at every n) stay
/// within 3e-7. Force [`TridiagonalMethod::Partitioned`] for such systems: the tuner chooses by
/// speed ([`crate::Tuning`]) among the methods whose outputs agree with the rule's within 10%,
/// so it catches only the largest of these differences, and keeps the rule's method then. A
/// shift of 1e-3 on the diagonal brings every method within 7e-5.
///
/// A singular or non-finite system gives an [`Error::NonFinite`] (the solution is checked with
/// one reduction and a readback), never a silent NaN.
///
/// ```
/// use percept::{Gpu, Tensor, ops};
/// let gpu = Gpu::new()?;
/// // 2x - y = 1, -x + 2y - z = 0, -y + 2z = 1: x = y = z = 1.
/// let t = |v: &[f32]| Tensor::from_slice(&gpu, v, &[1, 3]);
/// let x = ops::tridiagonal_solve(&t(&[0., -1., -1.])?, &t(&[2., 2., 2.])?, &t(&[-1., -1., 0.])?, &t(&[1., 0., 1.])?, None)?;
/// let got = x.to_vec()?;
/// assert!(got.iter().all(|v| (v - 1.0).abs() < 1e-6), "{got:?}");
/// # Ok::<(), percept::Error>(())
/// ```
pub fn tridiagonal_solve(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
    method: Option<TridiagonalMethod>,
) -> Result<Tensor> {
    let x = tridiagonal_solve_unchecked(a, b, c, d, method)?;
    // The largest magnitude, not a sum of squares, which overflows for finite solutions past
    // 1.8e19.
    let check = reduce_all(&x, Reduction::MaxAbs)?.to_vec()?[0];
    if !check.is_finite() {
        return Err(Error::NonFinite {
            what: "the tridiagonal solution (a singular, non-finite or badly conditioned system \
                   without pivoting: check that system's coefficients, or force \
                   TridiagonalMethod::Partitioned)"
                .into(),
            index: x.first_non_finite()?.unwrap_or(0),
        });
    }
    Ok(x)
}

/// [`tridiagonal_solve`] without the finiteness check (and its readback), for callers that check
/// a residual of their own.
pub fn tridiagonal_solve_unchecked(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
    method: Option<TridiagonalMethod>,
) -> Result<Tensor> {
    let batch = Batch::new(a, b, c, d)?;
    let x = Tensor::uninit(d.gpu(), d.shape(), DType::F32)?;
    let method = match method {
        Some(method) => method,
        None => choose(&batch, &x)?,
    };
    batch.record(method, &x)?;
    Ok(x)
}

/// Validated systems: the four diagonals and right-hand sides, `systems` rows of `n`.
#[derive(Clone, Copy)]
struct Batch<'t> {
    a: &'t Tensor,
    b: &'t Tensor,
    c: &'t Tensor,
    d: &'t Tensor,
    systems: usize,
    n: usize,
}

impl<'t> Batch<'t> {
    /// Checks that the four tensors share one shape of non-empty rows.
    fn new(a: &'t Tensor, b: &'t Tensor, c: &'t Tensor, d: &'t Tensor) -> Result<Batch<'t>> {
        const OP: &str = "tridiagonal_solve";
        for t in [a, b, c, d] {
            check_input(OP, d, t)?;
            if t.shape() != d.shape() {
                return Err(Error::shape(
                    OP,
                    format!(
                        "a, b, c and d must share one shape; got {:?}, {:?}, {:?}, {:?}",
                        a.shape(),
                        b.shape(),
                        c.shape(),
                        d.shape()
                    ),
                ));
            }
        }
        let (systems, n) = rows_cols(OP, d)?;
        if n == 0 || systems == 0 {
            return Err(Error::invalid(
                OP,
                format!("empty systems of shape {:?}", d.shape()),
            ));
        }
        fits_u32(OP, "elements", d.len())?;
        Ok(Batch {
            a,
            b,
            c,
            d,
            systems,
            n,
        })
    }

    /// Records one solve by `method` into `x`.
    fn record(&self, method: TridiagonalMethod, x: &Tensor) -> Result<()> {
        const OP: &str = "tridiagonal_solve";
        let Batch {
            a,
            b,
            c,
            d,
            systems,
            n,
        } = *self;
        let gpu = d.gpu();
        let workgroup_bytes = gpu.capabilities().max_workgroup_storage_size;
        let params = |stride: usize| Params {
            n: n as u32,
            systems: systems as u32,
            stride: stride as u32,
            _pad: 0,
        };
        match method {
            TridiagonalMethod::Pcr => {
                let eq = pcr_equations(n, workgroup_bytes).ok_or_else(|| {
                    let detail = format!(
                        "systems of {n} equations do not fit workgroup memory for PCR; use Thomas \
                         or the partitioned method"
                    );
                    Error::invalid(OP, detail)
                })?;
                let spec = KernelSpec::new(
                    "tridiagonal_pcr",
                    PCR_SOURCES,
                    "tridiagonal_pcr",
                    PCR_BINDINGS,
                )
                .with("EQ", Const::U32(eq as u32))
                .with("CR_STEPS", Const::U32(cr_steps(n)))
                .with("PAD", Const::Bool(pcr_padded_fits(eq, workgroup_bytes)));
                gpu.dispatch(
                    &spec,
                    bytemuck::bytes_of(&params(1)),
                    &[
                        a.binding(),
                        b.binding(),
                        c.binding(),
                        d.binding(),
                        x.binding(),
                    ],
                    gpu.grid(systems as u64)?,
                )?;
            }
            TridiagonalMethod::Thomas => {
                if n > thomas_max_len(gpu) {
                    let detail = format!(
                        "systems of {n} equations are past this adapter's loop limit for Thomas \
                         ({} equations; see Capabilities::max_loop_iterations); use the \
                         partitioned method",
                        thomas_max_len(gpu)
                    );
                    return Err(Error::invalid(OP, detail));
                }
                thomas([a, b, c, d], systems, n, 1, x)?
            }
            TridiagonalMethod::Partitioned => {
                let levels = partition_levels(n, systems, thomas_max_len(gpu));
                let spec = KernelSpec::new(
                    "tridiagonal_pcr_level",
                    LEVEL_SOURCES,
                    "tridiagonal_pcr_level",
                    LEVEL_BINDINGS,
                );
                // Each level reads the previous level's systems and writes the next; two sets
                // of four arrays take turns (the first level reads the caller's).
                let set = || -> Result<[Tensor; 4]> {
                    let t = || Tensor::uninit(gpu, d.shape(), DType::F32);
                    Ok([t()?, t()?, t()?, t()?])
                };
                let sets = match levels {
                    0 => vec![],
                    1 => vec![set()?],
                    _ => vec![set()?, set()?],
                };
                let mut from = [a, b, c, d];
                for level in 0..levels as usize {
                    let to = &sets[level % 2];
                    gpu.dispatch(
                        &spec,
                        bytemuck::bytes_of(&params(1 << level)),
                        &[
                            from[0].binding(),
                            from[1].binding(),
                            from[2].binding(),
                            from[3].binding(),
                            to[0].binding(),
                            to[1].binding(),
                            to[2].binding(),
                            to[3].binding(),
                        ],
                        gpu.grid(((systems * n) as u64).div_ceil(256))?,
                    )?;
                    from = [&to[0], &to[1], &to[2], &to[3]];
                }
                thomas(from, systems, n, 1 << levels, x)?;
            }
        }
        Ok(())
    }
}

/// Records Thomas on `systems` systems of `n` equations, each `stride` independent interleaved
/// ones (see `shaders/tridiagonal_thomas.wgsl`), one invocation per interleaved system.
fn thomas(
    [a, b, c, d]: [&Tensor; 4],
    systems: usize,
    n: usize,
    stride: usize,
    x: &Tensor,
) -> Result<()> {
    let gpu = d.gpu();
    let scratch = Tensor::uninit(gpu, d.shape(), DType::F32)?;
    let spec = KernelSpec::new(
        "tridiagonal_thomas",
        THOMAS_SOURCES,
        "tridiagonal_thomas",
        THOMAS_BINDINGS,
    );
    let params = Params {
        n: n as u32,
        systems: systems as u32,
        stride: stride as u32,
        _pad: 0,
    };
    gpu.dispatch(
        &spec,
        bytemuck::bytes_of(&params),
        &[
            a.binding(),
            b.binding(),
            c.binding(),
            d.binding(),
            x.binding(),
            scratch.binding(),
        ],
        gpu.grid(((systems * stride) as u64).div_ceil(64))?,
    )
}

#[cfg(test)]
mod tests {
    use super::partition_levels;

    #[test]
    fn partition_levels_stop_at_enough_systems_or_short_ones() {
        // 20 equations: one level leaves pieces of 10, a second would leave 5.
        assert_eq!(partition_levels(20, 2, usize::MAX), 1);
        assert_eq!(partition_levels(15, 2, usize::MAX), 0);
        // 4 x 2^18: 2^16 pieces of 16; bench pcr's 4 x 2^16: 2^15 pieces of 8.
        assert_eq!(partition_levels(1 << 18, 4, usize::MAX), 14);
        assert_eq!(partition_levels(1 << 16, 4, usize::MAX), 13);
        // Already as many systems as the GPU wants.
        assert_eq!(partition_levels(1 << 20, 1 << 16, usize::MAX), 0);
        // A loop budget adds levels until Thomas's chains fit it (ceil(100 / 16) = 7 <= 10).
        assert_eq!(partition_levels(100, 1 << 16, 10), 4);
    }
}
