//! Batched fixed-point solvers on the GPU: damped iteration, Anderson acceleration and
//! limited-memory Broyden, with per-row stopping, f at the lowest-residual iterate kept, and the
//! residual trace recorded on the device (`shaders/deq_*.wgsl`).

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::ops;
use crate::tensor::{DType, Tensor};

/// The largest history (Anderson's memory, Broyden's rank-one terms) the kernels hold.
pub const MAX_MEMORY: usize = 16;

const COMMON_WGSL: &str = concat!(
    include_str!("../../shaders/nan.wgsl"),
    include_str!("../../shaders/deq_common.wgsl")
);
const FIXED_POINT_SOURCES: &[&str] = &[
    COMMON_WGSL,
    include_str!("../../shaders/deq_fixed_point.wgsl"),
];
const ANDERSON_SOURCES: &[&str] = &[COMMON_WGSL, include_str!("../../shaders/deq_anderson.wgsl")];
const BROYDEN_SOURCES: &[&str] = &[COMMON_WGSL, include_str!("../../shaders/deq_broyden.wgsl")];
/// fz, then z, best, state and stats, then up to four history buffers, all written.
const BINDINGS: [Access; 9] = [
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];
/// u32 words per row of solver state, as `RowState` in the shader.
pub(crate) const STATE_WORDS: usize = 8;
/// Leading u32 counters of the stats buffer: rows done, fallbacks.
const STAT_TRACE: usize = 2;

/// A map whose fixed point z = f(z) is sought, one row per sample.
pub trait FixedPointMap {
    /// The device the map runs on.
    fn gpu(&self) -> &Gpu;

    /// The state's shape `[rows, width]`: each row is one sample, stopped on its own.
    fn shape(&self) -> [usize; 2];

    /// Writes f(z) into `out`; both are f32 tensors of [`FixedPointMap::shape`].
    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()>;
}

/// How each iteration moves the state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Method {
    /// z <- z + damping (f(z) - z); damping 1 is plain iteration.
    FixedPoint {
        /// In (0, 1].
        damping: f32,
    },
    /// Anderson acceleration over the last `memory` iterates (torchdeq's memory 6, lambda 1e-4
    /// and beta 1 by default, lambda relative here).
    Anderson {
        /// Iterates mixed, 1 to [`MAX_MEMORY`].
        memory: usize,
        /// Tikhonov regulariser of the mixing least-squares problem, relative to the largest
        /// squared residual in memory (torchdeq's is absolute, which makes late steps plain
        /// averages once residuals fall below its square root).
        lambda: f32,
        /// Mixing: 1 takes f of the mixed iterates, 0 the mixed iterates themselves.
        beta: f32,
        /// Plain steps (z <- z + beta (f(z) - z)) before mixing starts; their iterates still
        /// enter the memory.
        #[serde(default)]
        warmup: usize,
    },
    /// Broyden's method with an inverse-Jacobian estimate of at most `memory` rank-one terms.
    Broyden {
        /// Rank-one terms kept, 1 to [`MAX_MEMORY`]; the oldest is dropped to make room.
        memory: usize,
    },
}

impl Method {
    /// Anderson with torchdeq's defaults.
    pub const ANDERSON: Method = Method::Anderson {
        memory: 6,
        lambda: 1e-4,
        beta: 1.0,
        warmup: 0,
    };
    /// Broyden keeping 8 terms.
    pub const BROYDEN: Method = Method::Broyden { memory: 8 };
    /// Plain fixed-point iteration.
    pub const FIXED_POINT: Method = Method::FixedPoint { damping: 1.0 };

    /// The solver's name in messages and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::FixedPoint { .. } => "fixed-point iteration",
            Method::Anderson { .. } => "Anderson acceleration",
            Method::Broyden { .. } => "Broyden's method",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = Error;

    /// `fixed-point`, `anderson` or `broyden`, with default settings.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fixed-point" => Ok(Method::FIXED_POINT),
            "anderson" => Ok(Method::ANDERSON),
            "broyden" => Ok(Method::BROYDEN),
            _ => Err(Error::invalid(
                "solver",
                format!("`{s}`: use fixed-point, anderson or broyden"),
            )),
        }
    }
}

/// Which residual the tolerance bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// ||f(z) - z||.
    #[default]
    Absolute,
    /// ||f(z) - z|| / ||f(z)||.
    Relative,
}

/// A solver and when it stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolverConfig {
    /// The iteration.
    pub method: Method,
    /// A row stops once its residual is at most this.
    pub tol: f32,
    /// Which residual `tol` bounds.
    pub stop: Stop,
    /// Evaluations of f at most.
    pub max_iter: usize,
    /// The host reads how many rows are done every this many iterations (each read waits for
    /// the GPU, so larger values queue more work between waits).
    pub check_every: usize,
    /// Return f at the lowest-residual iterates when some rows miss the tolerance, instead of
    /// [`Error::NotConverged`]; rows with no finite iterate return their start.
    pub accept_unconverged: bool,
}

impl Default for SolverConfig {
    /// torchdeq's forward defaults: fixed-point iteration, absolute tolerance 1e-3, 40
    /// iterations; the host checks every 5.
    fn default() -> Self {
        SolverConfig {
            method: Method::FIXED_POINT,
            tol: 1e-3,
            stop: Stop::Absolute,
            max_iter: 40,
            check_every: 5,
            accept_unconverged: false,
        }
    }
}

impl SolverConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::invalid("deq::solve", detail));
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad(format!("tol must be finite and >= 0, got {}", self.tol));
        }
        if self.max_iter == 0 || self.check_every == 0 {
            return bad("max_iter and check_every must be at least 1".into());
        }
        match self.method {
            Method::FixedPoint { damping } if !(damping > 0.0 && damping <= 1.0) => {
                bad(format!("damping must be in (0, 1], got {damping}"))
            }
            Method::Anderson {
                memory,
                lambda,
                beta,
                ..
            } if memory == 0
                || memory > MAX_MEMORY
                || !(lambda.is_finite() && lambda >= 0.0)
                || !(beta > 0.0 && beta <= 1.0) =>
            {
                bad(format!(
                    "Anderson needs memory in 1..={MAX_MEMORY}, lambda >= 0 and beta in (0, 1]; \
                     got memory {memory}, lambda {lambda}, beta {beta}"
                ))
            }
            Method::Broyden { memory } if memory == 0 || memory > MAX_MEMORY => bad(format!(
                "Broyden needs memory in 1..={MAX_MEMORY}, got {memory}"
            )),
            _ => Ok(()),
        }
    }
}

/// What a solve did.
#[derive(Clone, Debug, Serialize)]
pub struct SolveStats {
    /// The solver's name.
    pub method: &'static str,
    /// Evaluations of f.
    pub iterations: usize,
    /// Per iteration, the largest residual among the rows still running.
    pub residuals: Vec<f32>,
    /// Whether every row reached the tolerance.
    pub converged: bool,
    /// Rows that reached it.
    pub converged_rows: usize,
    /// Rows in all.
    pub rows: usize,
    /// The largest residual among the iterates z whose f(z) is returned.
    pub max_residual: f32,
    /// Anderson mixings whose least-squares problem was singular (a plain step was taken), and
    /// Broyden updates skipped for a vanishing secant (the step used the estimate as it was).
    pub fallbacks: usize,
}

/// The fixed point and how it was found.
pub struct Solution {
    /// Per row, f(z) at the iterate z with the lowest residual, `[rows, width]`.
    pub z: Tensor,
    /// Statistics.
    pub stats: SolveStats,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    width: u32,
    iter: u32,
    relative: u32,
    tol: f32,
    mix: f32,
    lambda: f32,
    warmup: u32,
}

/// Solves z = f(z) row by row, from `z0` (zeros when `None`).
///
/// Each iteration evaluates f once and runs one step kernel; rows whose residual reaches the
/// tolerance stop moving. Each row returns f(z) at its lowest-residual iterate z: one evaluation
/// further along (for plain iteration, `max_iter` evaluations from z0 return the `max_iter`-th
/// iterate), and for a contraction closer to the fixed point than z by its factor. A NaN
/// iterate is never kept. When rows miss the tolerance within `max_iter` evaluations the result
/// is [`Error::NotConverged`], unless `accept_unconverged` is set; rows that had no finite
/// iterate then return their start (a non-finite start is an [`Error::NonFinite`]).
///
/// ```
/// use percept::{Gpu, Result, Tensor, ops::{self, Activation, MatmulSpec}};
/// use percept::deq::{FixedPointMap, Method, SolverConfig, solve};
///
/// /// z = tanh(z Wᵀ + b) for one sample of width 2.
/// struct Layer { w: Tensor, b: Tensor }
/// impl FixedPointMap for Layer {
///     fn gpu(&self) -> &Gpu { self.w.gpu() }
///     fn shape(&self) -> [usize; 2] { [1, 2] }
///     fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
///         let spec = MatmulSpec { trans_b: true, bias: Some(&self.b),
///                                 activation: Activation::Tanh, ..Default::default() };
///         ops::matmul_into(z, &self.w, &spec, out)
///     }
/// }
/// let gpu = Gpu::new()?;
/// let layer = Layer { w: Tensor::from_slice(&gpu, &[0.5, 0.1, -0.2, 0.4], &[2, 2])?,
///                     b: Tensor::from_slice(&gpu, &[0.3, -0.1], &[2])? };
/// let config = SolverConfig { method: Method::ANDERSON, tol: 1e-5, ..Default::default() };
/// let solution = solve(&layer, None, &config)?;
/// assert!(solution.stats.converged && solution.stats.max_residual <= 1e-5);
/// # Ok::<(), percept::Error>(())
/// ```
pub fn solve(
    map: &dyn FixedPointMap,
    z0: Option<&Tensor>,
    config: &SolverConfig,
) -> Result<Solution> {
    const OP: &str = "deq::solve";
    config.validate()?;
    let gpu = map.gpu();
    let [rows, width] = map.shape();
    if rows == 0 || width == 0 {
        return Err(Error::shape(OP, format!("empty state [{rows}, {width}]")));
    }
    let z = match z0 {
        Some(z0) => {
            z0.expect_dtype(OP, DType::F32)?;
            if !z0.gpu().same(gpu) {
                return Err(Error::invalid(
                    OP,
                    "z0 lives on another device than the map (FixedPointMap::gpu)",
                ));
            }
            if z0.shape() != [rows, width] {
                return Err(Error::shape(
                    OP,
                    format!(
                        "z0 has shape {:?}, the map's state is [{rows}, {width}]",
                        z0.shape()
                    ),
                ));
            }
            ops::copy(z0)?
        }
        None => Tensor::zeros(gpu, &[rows, width])?,
    };
    let fz = Tensor::uninit(gpu, &[rows, width], DType::F32)?;
    let best = ops::copy(&z)?;
    // The counters and trace, then the rows' states, in one buffer read back once at the end;
    // its size (max_iter comes from the caller) checked before the host fills it.
    let align = (gpu.limits().min_storage_buffer_offset_alignment as usize / 4).max(1);
    let words = STAT_TRACE
        .checked_add(config.max_iter)
        .and_then(|w| w.checked_next_multiple_of(align))
        .and_then(|w| Some((w, w.checked_add(rows.checked_mul(STATE_WORDS)?)?)));
    let what = format!(
        "the solver's bookkeeping (a residual trace of max_iter = {} iterations, the state of \
         {rows} rows)",
        config.max_iter
    );
    let Some((stats_words, all_words)) = words else {
        return Err(Error::invalid(OP, format!("{what} overflows")));
    };
    gpu.check_buffer_size(&what, (all_words as u64).saturating_mul(4))?;
    let mut init = vec![0.0f32; all_words];
    for row in init[stats_words..].chunks_mut(STATE_WORDS) {
        row[0] = f32::INFINITY;
    }
    let bookkeeping = Tensor::from_slice(gpu, &init, &[init.len()])?;
    let stats = bookkeeping.view(0, &[stats_words])?;
    let state = bookkeeping.view(stats_words, &[rows, STATE_WORDS])?;
    let step = Step::new(config, rows, width, [&fz, &z, &best, &state, &stats])?;
    for k in 0..config.max_iter {
        map.apply(&z, &fz)?;
        step.record(k)?;
        let evaluated = k + 1;
        if evaluated % config.check_every == 0 && evaluated < config.max_iter {
            let done = stats.narrow(0..1)?.to_vec()?[0].to_bits() as usize;
            if done == rows {
                break;
            }
        }
    }
    let all = bookkeeping.to_vec()?;
    let (counters, rows_state) = all.split_at(stats_words);
    let iterations = rows_state
        .chunks(STATE_WORDS)
        .map(|r| r[2].to_bits() as usize)
        .max()
        .unwrap_or(0);
    let max_residual = rows_state
        .chunks(STATE_WORDS)
        .map(|r| r[0])
        .fold(0.0f32, f32::max);
    let stats = SolveStats {
        method: config.method.name(),
        iterations,
        residuals: counters[STAT_TRACE..STAT_TRACE + iterations].to_vec(),
        converged: counters[0].to_bits() as usize == rows,
        converged_rows: counters[0].to_bits() as usize,
        rows,
        max_residual,
        fallbacks: counters[1].to_bits() as usize,
    };
    let non_finite = rows_state
        .chunks(STATE_WORDS)
        .filter(|r| !r[0].is_finite())
        .count();
    if !stats.converged && !config.accept_unconverged {
        return Err(Error::NotConverged {
            stage: "the fixed-point solve",
            method: stats.method,
            converged: stats.converged_rows,
            rows,
            tol: config.tol,
            iterations: stats.iterations,
            residual: stats.max_residual,
            non_finite,
        });
    }
    // Rows without a finite iterate return their start, which only z0 can make non-finite: it
    // is read only then, so that a solve from a finite start pays nothing for the check.
    if non_finite > 0 && z0.is_some() {
        let largest = ops::reduce_all(&best, ops::Reduction::MaxAbs)?.to_vec()?[0];
        if !largest.is_finite() {
            return Err(Error::NonFinite {
                what: "z0, the start of the fixed-point solve (its rows that had no finite \
                       iterate are returned as they started; give a finite start)"
                    .into(),
                index: best.first_non_finite()?.unwrap_or(0),
            });
        }
    }
    Ok(Solution { z: best, stats })
}

/// The step kernel of one method with its buffers, recorded once per iteration.
struct Step {
    kernel: KernelSpec,
    params: Params,
    /// fz, z, best, state, stats, then the method's history.
    buffers: Vec<Tensor>,
    rows: usize,
}

impl Step {
    fn new(config: &SolverConfig, rows: usize, width: usize, common: [&Tensor; 5]) -> Result<Step> {
        const OP: &str = "deq::solve";
        let gpu = common[0].gpu();
        let history = |shape: &[usize]| Tensor::uninit(gpu, shape, DType::F32);
        let (mix, lambda, warmup) = match config.method {
            Method::FixedPoint { damping } => (damping, 0.0, 0),
            Method::Anderson {
                lambda,
                beta,
                warmup,
                ..
            } => (beta, lambda, warmup.min(u32::MAX as usize) as u32),
            Method::Broyden { .. } => (1.0, 0.0, 0),
        };
        let mut buffers: Vec<Tensor> = common.into_iter().cloned().collect();
        let kernel = match config.method {
            Method::FixedPoint { .. } => KernelSpec::new(
                "deq_fixed_point",
                FIXED_POINT_SOURCES,
                "fixed_point",
                &BINDINGS[..5],
            )
            .with("NV", Const::U32(2))
            .with("M", Const::U32(1)),
            Method::Anderson { memory: m, .. } => {
                buffers.push(history(&[rows, m, width])?);
                buffers.push(history(&[rows, m, width])?);
                buffers.push(history(&[rows, m, m])?);
                KernelSpec::new("deq_anderson", ANDERSON_SOURCES, "anderson", &BINDINGS[..8])
                    .with("NV", Const::U32(m.max(2) as u32))
                    .with("M", Const::U32(m as u32))
            }
            Method::Broyden { memory: m } => {
                let most = gpu.capabilities().max_storage_buffers_per_stage as usize;
                if most < BINDINGS.len() {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "Broyden's method binds {} storage buffers and this adapter allows \
                             {most}: use Anderson acceleration",
                            BINDINGS.len()
                        ),
                    ));
                }
                buffers.push(history(&[rows, m, width])?);
                buffers.push(history(&[rows, m, width])?);
                buffers.push(history(&[rows, width])?);
                buffers.push(history(&[rows, width])?);
                KernelSpec::new("deq_broyden", BROYDEN_SOURCES, "broyden", &BINDINGS[..9])
                    .with("NV", Const::U32(3 * m as u32 + 4))
                    .with("M", Const::U32(m as u32))
            }
        };
        let params = Params {
            rows: ops::fits_u32(OP, "rows", rows)?,
            width: width as u32, // rows * width is checked below with the state's buffers
            iter: 0,
            relative: (config.stop == Stop::Relative) as u32,
            tol: config.tol,
            mix,
            lambda,
            warmup,
        };
        for t in &buffers {
            ops::fits_u32(OP, "history elements", t.len())?;
        }
        Ok(Step {
            kernel,
            params,
            buffers,
            rows,
        })
    }

    fn record(&self, iter: usize) -> Result<()> {
        let gpu = self.buffers[0].gpu();
        let params = Params {
            iter: iter as u32,
            ..self.params
        };
        let bindings: Vec<_> = self.buffers.iter().map(Tensor::binding).collect();
        gpu.dispatch(
            &self.kernel,
            bytemuck::bytes_of(&params),
            &bindings,
            gpu.grid(self.rows as u64)?,
        )
    }
}
