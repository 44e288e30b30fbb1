//! DeepPCR (Danieli et al., 2023): evaluating the L layers of a deep MLP in O(log L) sequential
//! steps. The trajectory z[1..L] of `z[l] = f_l(z[l-1])` solves the nonlinear system
//! `z[l] - f_l(z[l-1]) = 0`; each Newton step linearises all layers at once and solves the
//! block-bidiagonal system `d[l] = J[l] d[l-1] + r[l]` by a parallel scan
//! ([`ops::affine_scan`]: recursive doubling in ceil(log2 L) levels, or a chunked scan in
//! O(log L) levels with chains of chunks inside, about sqrt(L) steps or shorter: whichever is
//! tuned). The Jacobians `J[l] = diag(act'(u[l])) W[l]` are never formed: the scans read the
//! weights and act' ([`ops::ScanMaps::RowScaled`]). The backward pass is already linear,
//! `g[l-1] = J[l]^T g[l]`, and takes one transposed scan. Work grows as w^3, so this pays at
//! small widths and large depths.

use bytemuck::{Pod, Zeroable};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::kernel::{Access, Const, KernelSpec};
use crate::nn::init::standard_normal;
use crate::ops::{self, Activation, MatmulSpec, Reduction};
use crate::tensor::{DType, Tensor};

const LINEARIZE: &[&str] = &[
    ops::ACTIVATION_WGSL,
    include_str!("../shaders/deeppcr_linearize.wgsl"),
];
const FORWARD: &[&str] = &[
    ops::ACTIVATION_WGSL,
    include_str!("../shaders/layer_forward.wgsl"),
];
const BACKWARD: &[&str] = &[include_str!("../shaders/layer_backward.wgsl")];
const PARAM_GRADS: &[&str] = &[include_str!("../shaders/layer_param_grads.wgsl")];

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    /// Layers (linearise) or the layer index (one layer of the chain).
    layers_or_layer: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

/// Checks a network's dimensions, and that its weights fit the adapter, before host data is
/// built for them.
fn check_dims(gpu: &Gpu, layers: usize, width: usize) -> Result<()> {
    if layers == 0 || width == 0 || width > ops::MAX_AFFINE_WIDTH {
        return Err(Error::invalid(
            "DeepMlp",
            format!(
                "need at least one layer and widths 1..={}, got {layers} layers of {width}",
                ops::MAX_AFFINE_WIDTH
            ),
        ));
    }
    Tensor::check_size(gpu, &[layers, width, width], DType::F32).map(drop)
}

/// A deep, narrow MLP of `layers` square layers `z[l] = act(W[l] z[l-1] + b[l])`, with the
/// weights stacked `[L, w, w]` and biases `[L, w]`.
pub struct DeepMlp {
    layers: usize,
    width: usize,
    activation: Activation,
    weights: Tensor,
    biases: Tensor,
}

/// A forward pass: the layers' outputs and what the backward needs.
#[derive(Debug)]
pub struct Trajectory {
    /// The input `[batch, w]`.
    pub input: Tensor,
    /// z[1..L], `[L, batch, w]`; the network's output is the last slot.
    pub states: Tensor,
    /// `act'(u[l])` at each layer, `[L, batch, w]`.
    pub dact: Tensor,
}

impl Trajectory {
    /// The network's output `[batch, w]`.
    pub fn output(&self) -> Result<Tensor> {
        // The last slot: a view when it starts aligned, else one copy (see Tensor::narrow).
        match *self.states.shape() {
            [layers, ref rest @ ..] if layers > 0 && !rest.is_empty() => {
                self.states.narrow(layers - 1..layers)?.reshape(rest)
            }
            ref s => Err(Error::shape(
                "Trajectory::output",
                format!("states must be [L, batch, w] with L >= 1, got {s:?}"),
            )),
        }
    }
}

/// Gradients of a loss with respect to the input and parameters.
#[derive(Debug)]
pub struct Gradients {
    /// d loss / d input, `[batch, w]`.
    pub input: Tensor,
    /// d loss / d W, `[L, w, w]`.
    pub weights: Tensor,
    /// d loss / d b, `[L, w]`.
    pub biases: Tensor,
}

/// States below this are past f32's full precision (its smallest normal value is 1.2e-38):
/// residuals are measured relative to at least this.
const SMALLEST_STATE: f32 = 1e-30;

/// When the Newton iteration stops.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NewtonOptions {
    /// Stop when, in every layer, the residual `f(z) - z`'s largest element is at most this
    /// times the layer's largest state (states below 1e-30 count as 1e-30). The largest
    /// element, not a root mean square, which stopped where a few residuals were far larger
    /// than the mean (states 8.6e-4 off f64 on PyTorch's anchor problem at L = 16, w = 8); and
    /// per layer, since that problem's states shrink about e^-0.14 a layer, and a test absolute
    /// or relative to the largest state overall left deep layers 1e-4 off their own scale.
    pub tolerance: f32,
    /// Stop after this many Newton steps without converging.
    pub max_iterations: usize,
    /// Without convergence: run the sequential pass and say so (`true`), or return an error.
    pub fallback: bool,
    /// Force the forward's scan method; `None` takes the tuned one (see
    /// [`ops::affine_scan_method`]). The parallel backward always takes the tuned one.
    pub scan: Option<ops::ScanMethod>,
}

impl Default for NewtonOptions {
    fn default() -> Self {
        NewtonOptions {
            tolerance: 1e-5,
            max_iterations: 32,
            fallback: true,
            scan: None,
        }
    }
}

/// What a DeepPCR forward did.
#[derive(Clone, Debug, Serialize)]
pub struct NewtonStats {
    /// Newton steps taken (each one scan).
    pub iterations: usize,
    /// Before each step, and after the last, the largest over layers of the residual's largest
    /// element relative to the layer's largest state (what the tolerance bounds).
    pub residuals: Vec<f32>,
    /// Whether the residual reached the tolerance.
    pub converged: bool,
    /// Whether the sequential pass replaced the result.
    pub fell_back: bool,
    /// Dependent dispatch levels of the solve: per step one linearisation, the scan's levels
    /// ([`ops::ScanMethod::levels`], plus one for doubling, which forms the Jacobians) and one
    /// update, plus the final linearisation (the residual reductions that let the host decide
    /// are not counted). The sequential pass takes L.
    pub sequential_steps: usize,
    /// How the scans were solved (`None` when no Newton step was needed).
    pub scan: Option<ops::ScanMethod>,
}

impl DeepMlp {
    /// Weights `W[l] ~ N(0, weight_std^2 / w)` and biases `N(0, bias_std^2)`, seeded. With tanh
    /// and `weight_std < 1` every layer is a contraction.
    pub fn random(
        gpu: &Gpu,
        layers: usize,
        width: usize,
        activation: Activation,
        weight_std: f32,
        bias_std: f32,
        seed: u64,
    ) -> Result<Self> {
        check_dims(gpu, layers, width)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let scale = weight_std / (width as f32).sqrt();
        let w: Vec<f32> = standard_normal(&mut rng, layers * width * width)
            .iter()
            .map(|v| v * scale)
            .collect();
        let b: Vec<f32> = standard_normal(&mut rng, layers * width)
            .iter()
            .map(|v| v * bias_std)
            .collect();
        Self::from_host(gpu, layers, width, activation, &w, &b)
    }

    /// A network from host weights `[L, w, w]` (row-major, `W[l][i][j]` maps input j to output
    /// i) and biases `[L, w]`.
    pub fn from_host(
        gpu: &Gpu,
        layers: usize,
        width: usize,
        activation: Activation,
        weights: &[f32],
        biases: &[f32],
    ) -> Result<Self> {
        check_dims(gpu, layers, width)?;
        if let Some(i) = weights.iter().chain(biases).position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "DeepMlp parameters".into(),
                index: i,
            });
        }
        Ok(DeepMlp {
            layers,
            width,
            activation,
            weights: Tensor::from_slice(gpu, weights, &[layers, width, width])?,
            biases: Tensor::from_slice(gpu, biases, &[layers, width])?,
        })
    }

    /// Layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Stacked weights `[L, w, w]`.
    pub fn weights(&self) -> &Tensor {
        &self.weights
    }

    /// Stacked biases `[L, w]`.
    pub fn biases(&self) -> &Tensor {
        &self.biases
    }

    fn gpu(&self) -> &Gpu {
        self.weights.gpu()
    }

    fn check_input(&self, x: &Tensor) -> Result<usize> {
        ops::check_input("DeepMlp", &self.weights, x)?;
        let s = x.shape();
        if s.len() != 2 || s[1] != self.width || s[0] == 0 {
            return Err(Error::shape(
                "DeepMlp",
                format!(
                    "input has shape {s:?}, the network takes [batch, {}]",
                    self.width
                ),
            ));
        }
        Ok(s[0])
    }

    fn params(&self, layers_or_layer: usize, batch: usize) -> Params {
        Params {
            layers_or_layer: layers_or_layer as u32,
            batch: batch as u32,
            w: self.width as u32,
            _pad: 0,
        }
    }

    /// The layers one after another: L dependent dispatches in one submission.
    pub fn forward_sequential(&self, x: &Tensor) -> Result<Trajectory> {
        let batch = self.check_input(x)?;
        let gpu = self.gpu();
        let shape = [self.layers, batch, self.width];
        let t = Trajectory {
            input: x.clone(),
            states: Tensor::uninit(gpu, &shape, DType::F32)?,
            dact: Tensor::uninit(gpu, &shape, DType::F32)?,
        };
        let spec = KernelSpec::new(
            "layer_forward",
            FORWARD,
            "layer_forward",
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        )
        .with("ACT", Const::U32(self.activation.code()));
        let grid = gpu.grid(((batch * self.width) as u64).div_ceil(256))?;
        for layer in 0..self.layers {
            gpu.dispatch(
                &spec,
                bytemuck::bytes_of(&self.params(layer, batch)),
                &[
                    self.weights.binding(),
                    self.biases.binding(),
                    x.binding(),
                    t.states.binding(),
                    t.dact.binding(),
                ],
                grid,
            )?;
        }
        Ok(t)
    }

    /// Linearises every layer around `states`: (residual, dact). The layer Jacobians are
    /// `diag(dact[l]) W[l]`, which the scans read as [`ops::ScanMaps::RowScaled`].
    fn linearize(&self, x: &Tensor, states: &Tensor, batch: usize) -> Result<(Tensor, Tensor)> {
        let gpu = self.gpu();
        let (l, w) = (self.layers, self.width);
        let residual = Tensor::uninit(gpu, &[l, batch, w], DType::F32)?;
        let dact = Tensor::uninit(gpu, &[l, batch, w], DType::F32)?;
        let spec = KernelSpec::new(
            "deeppcr_linearize",
            LINEARIZE,
            "deeppcr_linearize",
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        )
        .with("W", Const::U32(w as u32))
        .with("ACT", Const::U32(self.activation.code()));
        gpu.dispatch(
            &spec,
            bytemuck::bytes_of(&self.params(l, batch)),
            &[
                self.weights.binding(),
                self.biases.binding(),
                x.binding(),
                states.binding(),
                residual.binding(),
                dact.binding(),
            ],
            gpu.grid(((l * batch * w) as u64).div_ceil(256))?,
        )?;
        Ok((residual, dact))
    }

    /// The largest over layers of the residual's largest element relative to the layer's
    /// largest state, `max_l |r_l|_inf / max(|z_l|_inf, 1e-30)` (+inf where a residual is NaN),
    /// in one readback of both per-layer norms. In f64: a finite residual over 1e-30 may pass
    /// f32's range, and only a non-finite residual may read as non-finite.
    fn relative_residual(&self, residual: &Tensor, states: &Tensor, batch: usize) -> Result<f64> {
        let (l, per_layer) = (self.layers, batch * self.width);
        let norms = Tensor::uninit(self.gpu(), &[2, l], DType::F32)?;
        for (at, t) in [(0, residual), (l, states)] {
            let layers = t.reshape(&[l, per_layer])?;
            norms.copy_from(&ops::reduce_rows(&layers, Reduction::MaxAbs)?, at)?;
        }
        let norms = norms.to_vec()?;
        let (r, z) = norms.split_at(l);
        Ok(r.iter()
            .zip(z)
            .map(|(&r, &z)| r as f64 / z.max(SMALLEST_STATE) as f64)
            .fold(
                0.0,
                |worst, v| if v.is_nan() || v > worst { v } else { worst },
            ))
    }

    /// The forward pass by Newton iterations with parallel scans, from the all-zero trajectory.
    /// On non-convergence it runs the sequential pass when `options.fallback` is set (and says
    /// so in the statistics), and otherwise returns an error. A non-finite input, or states past
    /// f32's range after the fallback, give [`Error::NonFinite`].
    pub fn forward_deeppcr(
        &self,
        x: &Tensor,
        options: &NewtonOptions,
    ) -> Result<(Trajectory, NewtonStats)> {
        let batch = self.check_input(x)?;
        if !(options.tolerance.is_finite() && options.tolerance >= 0.0) {
            return Err(Error::invalid(
                "DeepMlp::forward_deeppcr",
                format!(
                    "the tolerance must be finite and >= 0, got {}",
                    options.tolerance
                ),
            ));
        }
        let gpu = self.gpu();
        let states = Tensor::zeros(gpu, &[self.layers, batch, self.width])?;
        let mut stats = NewtonStats {
            iterations: 0,
            residuals: Vec::new(),
            converged: false,
            fell_back: false,
            sequential_steps: 0,
            scan: None,
        };
        loop {
            let (residual, dact) = self.linearize(x, &states, batch)?;
            stats.sequential_steps += 1;
            // +inf where a residual is NaN, which ends the loop below.
            let norm = self.relative_residual(&residual, &states, batch)?;
            stats.residuals.push(norm as f32);
            if norm <= options.tolerance as f64 {
                stats.converged = true;
                return Ok((
                    Trajectory {
                        input: x.clone(),
                        states,
                        dact,
                    },
                    stats,
                ));
            }
            if !norm.is_finite() && stats.iterations == 0 {
                // From the all-zero trajectory the residual is each layer's output on finite
                // weights: a non-finite one comes from x, and no fallback would mend it.
                return Err(match x.first_non_finite()? {
                    Some(index) => Error::NonFinite {
                        what: "DeepMlp::forward_deeppcr's input x".into(),
                        index,
                    },
                    None => Error::NonFinite {
                        what: "DeepMlp::forward_deeppcr's first residual, [layers, batch, \
                               width] (a layer's output on x past f32's range: scale x down)"
                            .into(),
                        index: residual.first_non_finite()?.unwrap_or(0),
                    },
                });
            }
            if !norm.is_finite() || stats.iterations >= options.max_iterations {
                break;
            }
            let jacobians = ops::ScanMaps::RowScaled {
                weights: &self.weights,
                scales: &dact,
            };
            let method = match options.scan {
                Some(method) => method,
                None => ops::affine_scan_method(jacobians, &residual, false)?,
            };
            let step = ops::affine_scan(jacobians, &residual, Some(method))?;
            ops::axpy(1.0, &step, &states)?;
            stats.iterations += 1;
            // Doubling multiplies the factored Jacobians out first (past one layer, whose map
            // is not used): one level more.
            let expand = usize::from(method == ops::ScanMethod::Doubling && self.layers > 1);
            stats.sequential_steps += expand + method.levels(self.layers) + 1;
            stats.scan = Some(method);
        }
        if !options.fallback {
            return Err(Error::invalid(
                "DeepMlp::forward_deeppcr",
                format!(
                    "Newton did not converge: largest relative residual {:?} after {} steps (tolerance {}, per layer); allow the sequential fallback or more iterations",
                    stats.residuals.last(),
                    stats.iterations,
                    options.tolerance
                ),
            ));
        }
        stats.fell_back = true;
        stats.sequential_steps += self.layers;
        let trajectory = self.forward_sequential(x)?;
        // Newton can diverge where the sequential pass does not, but NaN states are never
        // handed on.
        let largest = ops::reduce_all(&trajectory.states, Reduction::MaxAbs)?.to_vec()?[0];
        if !largest.is_finite() {
            return Err(Error::NonFinite {
                what: "DeepMlp::forward_deeppcr's states after the sequential fallback, \
                       [layers, batch, width] (past f32's range: scale x or the weights down)"
                    .into(),
                index: trajectory.states.first_non_finite()?.unwrap_or(0),
            });
        }
        Ok((trajectory, stats))
    }

    /// The layer Jacobians along `trajectory`, `diag(act'(u[l])) W[l]`, as the scans read them.
    fn jacobians<'a>(&'a self, trajectory: &'a Trajectory) -> ops::ScanMaps<'a> {
        ops::ScanMaps::RowScaled {
            weights: &self.weights,
            scales: &trajectory.dact,
        }
    }

    /// The scan method the parallel [`DeepMlp::backward`] through `trajectory` takes (tuned
    /// per shape bucket, and measured now if the bucket is new).
    pub fn backward_scan(&self, trajectory: &Trajectory) -> Result<ops::ScanMethod> {
        ops::affine_scan_method(self.jacobians(trajectory), &trajectory.dact, true)
    }

    /// Back-propagates `grad_output` (`d loss / d z[L]`, `[batch, w]`) through a forward
    /// `trajectory`: by one transposed parallel scan (`parallel`), or layer by layer. On an
    /// adapter that ends loops past a count (lavapipe; see
    /// [`crate::gpu::Capabilities::loop_budget`]) a batch past the budget is refused.
    pub fn backward(
        &self,
        trajectory: &Trajectory,
        grad_output: &Tensor,
        parallel: bool,
    ) -> Result<Gradients> {
        let batch = self.check_input(grad_output)?;
        let (l, w) = (self.layers, self.width);
        for (name, tensor, shape) in [
            ("input", &trajectory.input, &[batch, w][..]),
            ("states", &trajectory.states, &[l, batch, w][..]),
            ("dact", &trajectory.dact, &[l, batch, w][..]),
        ] {
            ops::check_input("DeepMlp::backward", &self.weights, tensor)?;
            if tensor.shape() != shape {
                return Err(Error::shape(
                    "DeepMlp::backward",
                    format!(
                        "the trajectory's {name} has shape {:?}, expected {shape:?}: pass a \
                         forward pass of this network on the batch of grad_output",
                        tensor.shape()
                    ),
                ));
            }
        }
        let gpu = self.gpu();
        // The parameter gradients' kernel sums each one over the batch in one invocation's loop
        // (on lavapipe, right at a batch of 60,000 and wrong at 70,000).
        if let Some(most) = gpu.capabilities().loop_budget() {
            if batch > most {
                return Err(Error::invalid(
                    "DeepMlp::backward",
                    format!(
                        "a batch of {batch} is past this adapter's loop limit for the parameter \
                         gradients (Capabilities::max_loop_iterations); use batches of at most \
                         {most} and add their gradients"
                    ),
                ));
            }
        }
        let rows = batch * w;
        // grads[l] = d loss / d z[l+1], slots 0..L-1; the top one is the output's gradient.
        let grads = if parallel {
            let top = Tensor::zeros(gpu, &[l, batch, w])?;
            top.copy_from(grad_output, (l - 1) * rows)?;
            ops::affine_scan_transposed(self.jacobians(trajectory), &top, None)?
        } else {
            let grads = Tensor::uninit(gpu, &[l, batch, w], DType::F32)?;
            grads.copy_from(grad_output, (l - 1) * rows)?;
            let spec = KernelSpec::new(
                "layer_backward",
                BACKWARD,
                "layer_backward",
                &[Access::Read, Access::Read, Access::ReadWrite],
            );
            let grid = gpu.grid((rows as u64).div_ceil(256))?;
            for layer in (1..l).rev() {
                gpu.dispatch(
                    &spec,
                    bytemuck::bytes_of(&self.params(layer, batch)),
                    &[
                        self.weights.binding(),
                        trajectory.dact.binding(),
                        grads.binding(),
                    ],
                    grid,
                )?;
            }
            grads
        };
        // Through each layer's activation: p[l] = act'(u[l]) * g[l].
        let p = ops::mul(&trajectory.dact, &grads)?;
        let input = ops::matmul(
            &p.view(0, &[batch, w])?,
            &self.weights.view(0, &[w, w])?,
            &MatmulSpec::default(),
        )?;
        // z[l-1] for every layer: the input, then the outputs of layers 1..L-1.
        let previous = Tensor::uninit(gpu, &[l, batch, w], DType::F32)?;
        previous.copy_from(&trajectory.input, 0)?;
        if l > 1 {
            let outputs = trajectory
                .states
                .reshape(&[l * rows])?
                .narrow(0..(l - 1) * rows)?;
            previous.copy_from(&outputs, rows)?;
        }
        let grads = Gradients {
            input,
            weights: Tensor::uninit(gpu, &[l, w, w], DType::F32)?,
            biases: Tensor::uninit(gpu, &[l, w], DType::F32)?,
        };
        let spec = KernelSpec::new(
            "layer_param_grads",
            PARAM_GRADS,
            "layer_param_grads",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        );
        gpu.dispatch(
            &spec,
            bytemuck::bytes_of(&self.params(l, batch)),
            &[
                p.binding(),
                previous.binding(),
                grads.weights.binding(),
                grads.biases.binding(),
            ],
            gpu.grid(((l * w * (w + 1)) as u64).div_ceil(256))?,
        )?;
        Ok(grads)
    }
}
