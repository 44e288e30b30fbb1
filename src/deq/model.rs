//! A deep equilibrium model: an input injection, a cell whose fixed point z* = f(z*, x) is the
//! hidden state, and an optional linear head; backward by implicit differentiation or by a
//! phantom gradient.

use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::solver::{FixedPointMap, SolveStats, SolverConfig, Stop, solve};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Init, LAYERNORM_EPS, Parameters, init};
use crate::ops::{self, Activation, LayerNormOutput, MatmulSpec};
use crate::tensor::Tensor;

/// How gradients reach the parameters through the fixed point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Backward {
    /// Implicit differentiation: solve the adjoint fixed point g = J^T g + dL/dz* (J the
    /// cell's Jacobian at z*) with `solver`, then take one vector-Jacobian product.
    Implicit {
        /// The adjoint solve (it starts from dL/dz*).
        solver: SolverConfig,
    },
    /// Back-propagate through `steps` damped iterations z <- (1 - damping) z + damping f(z)
    /// started at z*: cheaper, and equal to the implicit gradient as `steps` grows when
    /// f is contractive.
    Phantom {
        /// Unrolled iterations, 1 to [`MAX_PHANTOM_STEPS`].
        steps: usize,
        /// In (0, 1].
        damping: f32,
    },
}

impl Default for Backward {
    /// Implicit differentiation to a relative residual of 1e-4: an absolute tolerance would
    /// accept dL/dz* itself whenever the loss's gradient is small (large batches, mean losses).
    fn default() -> Self {
        Backward::Implicit {
            solver: SolverConfig {
                stop: Stop::Relative,
                tol: 1e-4,
                ..SolverConfig::default()
            },
        }
    }
}

/// The architecture of a [`Deq`], its initialisation and solvers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeqConfig {
    /// Input features d.
    pub inputs: usize,
    /// Width n of the equilibrium state z.
    pub width: usize,
    /// Widths of the cell's inner layers: empty for Gao et al.'s f(z, x) = act(W z + U x + b);
    /// `[h]` for act(W2 act(W1 z + U x + b1) + b2), and so on.
    pub hidden: Vec<usize>,
    /// Outputs of a linear head on z*; 0 returns z* itself.
    pub outputs: usize,
    /// After every layer of the cell.
    pub activation: Activation,
    /// A layer norm without gain or bias on the cell's output: it bounds z whatever the weights
    /// become in training (it does not by itself make f contractive).
    pub norm: bool,
    /// Whether the cell's layers have biases.
    pub bias: bool,
    /// Cell weights acting on z and hidden layers ~ N(0, sigma_w^2 / fan_in).
    pub sigma_w: f32,
    /// The injection U ~ N(0, sigma_u^2 / inputs).
    pub sigma_u: f32,
    /// Seed of the initialisation.
    pub seed: u64,
    /// The forward solve.
    pub solver: SolverConfig,
    /// How the backward pass differentiates through z*.
    pub backward: Backward,
}

impl DeqConfig {
    /// Gao et al.'s cell tanh(W z + U x) of `width` with W ~ N(0, 0.6^2 / width),
    /// U ~ N(0, 1 / inputs), no bias, no head, default solvers.
    pub fn new(inputs: usize, width: usize) -> Self {
        DeqConfig {
            inputs,
            width,
            hidden: Vec::new(),
            outputs: 0,
            activation: Activation::Tanh,
            norm: false,
            bias: false,
            sigma_w: 0.6,
            sigma_u: 1.0,
            seed: 0,
            solver: SolverConfig::default(),
            backward: Backward::default(),
        }
    }

    /// (fan_out, fan_in) of each cell layer.
    fn layers(&self) -> Vec<(usize, usize)> {
        let mut dims = vec![self.width];
        dims.extend(&self.hidden);
        dims.push(self.width);
        dims.windows(2).map(|w| (w[1], w[0])).collect()
    }
}

/// Parameter indices of one cell layer.
#[derive(Clone, Copy, Debug)]
struct Layer {
    weight: usize,
    bias: Option<usize>,
}

/// The names and shapes of a configuration's parameters, in order (`cell.0.weight`,
/// `cell.0.input`, `cell.0.bias`, `cell.1.weight`, ..., `head.weight`, `head.bias`).
pub(crate) fn layout(config: &DeqConfig) -> Result<Vec<(String, Vec<usize>)>> {
    if config.inputs == 0 || config.width == 0 || config.hidden.contains(&0) {
        return Err(Error::invalid(
            "Deq::new",
            format!(
                "inputs, width and hidden widths must be at least 1, got {}, {} and {:?}",
                config.inputs, config.width, config.hidden
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, (fan_out, fan_in)) in config.layers().into_iter().enumerate() {
        out.push((format!("cell.{i}.weight"), vec![fan_out, fan_in]));
        if i == 0 {
            out.push(("cell.0.input".to_string(), vec![fan_out, config.inputs]));
        }
        if config.bias {
            out.push((format!("cell.{i}.bias"), vec![fan_out]));
        }
    }
    if config.outputs > 0 {
        out.push(("head.weight".into(), vec![config.outputs, config.width]));
        out.push(("head.bias".into(), vec![config.outputs]));
    }
    Ok(out)
}

/// A deep equilibrium model on the GPU.
///
/// ```
/// use percept::{Gpu, Tensor};
/// use percept::deq::{Deq, DeqConfig};
/// let gpu = Gpu::new()?;
/// let deq = Deq::new(&gpu, DeqConfig { outputs: 2, ..DeqConfig::new(3, 16) })?;
/// let x = Tensor::from_slice(&gpu, &[0.5, -1.0, 2.0, 0.0, 1.0, -0.5], &[2, 3])?;
/// let fwd = deq.forward(&x)?;
/// assert!(fwd.stats.converged);
/// let dy = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2])?;
/// deq.backward(&fwd, &dy, false)?; // gradients now in deq.params().grads()
/// # Ok::<(), percept::Error>(())
/// ```
pub struct Deq {
    config: DeqConfig,
    params: Parameters,
    layers: Vec<Layer>,
    input: usize,
    head: Option<(usize, usize)>,
}

/// What [`Deq::forward`] returns and [`Deq::backward`] needs.
pub struct DeqForward {
    /// The head's output, or z* without a head, `[batch, outputs or width]`.
    pub output: Tensor,
    /// The fixed point, `[batch, width]`.
    pub z: Tensor,
    /// The forward solve's statistics.
    pub stats: SolveStats,
    x: Tensor,
    injection: Tensor,
}

/// What [`Deq::backward`] did.
#[derive(Clone, Debug)]
pub struct DeqBackward {
    /// The input gradient, when asked for.
    pub input_grad: Option<Tensor>,
    /// The adjoint solve's statistics (implicit differentiation only).
    pub stats: Option<SolveStats>,
}

/// The cell's intermediate values at one z, kept for back-propagation.
struct Trace {
    /// Input of each layer (z first).
    inputs: Vec<Tensor>,
    /// Pre-activations, kept only when the activation's derivative needs them.
    pre: Vec<Option<Tensor>>,
    /// Post-activations.
    acts: Vec<Tensor>,
    norm: Option<LayerNormOutput>,
}

impl Trace {
    fn output(&self) -> &Tensor {
        match &self.norm {
            Some(n) => &n.y,
            None => self.acts.last().expect("at least one layer"),
        }
    }
}

/// The phantom gradient keeps every step's activations on the GPU; past this many steps the
/// implicit backward gives the exact gradient for less.
pub const MAX_PHANTOM_STEPS: usize = 1000;

impl Deq {
    /// Builds the model and draws its parameters.
    pub fn new(gpu: &Gpu, config: DeqConfig) -> Result<Deq> {
        let tensors = layout(&config)?;
        config.solver.validate()?;
        match &config.backward {
            Backward::Implicit { solver } => solver.validate()?,
            &Backward::Phantom { steps, damping } => {
                if !((1..=MAX_PHANTOM_STEPS).contains(&steps) && damping > 0.0 && damping <= 1.0) {
                    return Err(Error::invalid(
                        "Deq::new",
                        format!(
                            "the phantom gradient needs steps in 1..={MAX_PHANTOM_STEPS} and \
                             damping in (0, 1], got {steps} and {damping} (for an exact \
                             gradient, use the implicit backward)"
                        ),
                    ));
                }
            }
        }
        // Sizes before drawing: values for a model too large for the adapter would exhaust
        // host memory first.
        Parameters::layout(gpu, &tensors)?;
        let values = draw(&config, &tensors)?;
        let params = Parameters::new(gpu, tensors.clone(), &values)?;
        let index = |name: &str| tensors.iter().position(|(n, _)| n == name);
        let layers = (0..config.layers().len())
            .map(|i| Layer {
                weight: index(&format!("cell.{i}.weight")).expect("laid out"),
                bias: index(&format!("cell.{i}.bias")),
            })
            .collect();
        let head = index("head.weight").zip(index("head.bias"));
        Ok(Deq {
            input: index("cell.0.input").expect("laid out"),
            config,
            params,
            layers,
            head,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &DeqConfig {
        &self.config
    }

    /// Parameters and gradients.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// Solves for z* on `x` of shape `[batch, inputs]` and applies the head.
    pub fn forward(&self, x: &Tensor) -> Result<DeqForward> {
        ops::check_input("Deq::forward", self.params.weights(), x)?;
        if x.shape().len() != 2 || x.shape()[1] != self.config.inputs {
            return Err(Error::shape(
                "Deq::forward",
                format!(
                    "input has shape {:?}, the model takes [batch, {}]",
                    x.shape(),
                    self.config.inputs
                ),
            ));
        }
        let injection = ops::matmul(
            x,
            self.params.weight(self.input),
            &MatmulSpec {
                trans_b: true,
                ..Default::default()
            },
        )?;
        let map = CellMap {
            deq: self,
            injection: &injection,
            rows: x.shape()[0],
        };
        let solution = solve(&map, None, &self.config.solver)
            .map_err(|e| at_stage(e, "the DEQ's forward solve"))?;
        let output = match self.head {
            Some((w, b)) => ops::matmul(
                &solution.z,
                self.params.weight(w),
                &MatmulSpec {
                    trans_b: true,
                    bias: Some(self.params.weight(b)),
                    ..Default::default()
                },
            )?,
            None => solution.z.clone(),
        };
        Ok(DeqForward {
            output,
            z: solution.z,
            stats: solution.stats,
            x: x.clone(),
            injection,
        })
    }

    /// Back-propagates `dy` (d loss / d output): writes every parameter's gradient into
    /// [`Parameters::grads`] (overwriting), and returns d loss / d input when `input_grad` is set.
    pub fn backward(
        &self,
        forward: &DeqForward,
        dy: &Tensor,
        input_grad: bool,
    ) -> Result<DeqBackward> {
        for t in [dy, &forward.z] {
            ops::check_input("Deq::backward", self.params.weights(), t)?;
        }
        if dy.shape() != forward.output.shape() {
            return Err(Error::shape(
                "Deq::backward",
                format!(
                    "gradient has shape {:?}, the output {:?}",
                    dy.shape(),
                    forward.output.shape()
                ),
            ));
        }
        let dz = match self.head {
            Some((w, _)) => ops::matmul(dy, self.params.weight(w), &MatmulSpec::default())?,
            None => dy.clone(),
        };
        let (d_injection, stats) = match &self.config.backward {
            Backward::Implicit { solver } => {
                let trace = self.trace(&forward.z, &forward.injection)?;
                let adjoint = AdjointMap {
                    deq: self,
                    trace: &trace,
                    dz: &dz,
                };
                let g = solve(&adjoint, Some(&dz), solver)
                    .map_err(|e| at_stage(e, "the DEQ's adjoint (backward) solve"))?;
                let d_inj = self.cell_backward(&trace, &g.z, None, None, Some(&forward.x))?;
                (d_inj, Some(g.stats))
            }
            Backward::Phantom { steps, damping } => {
                (self.phantom(forward, &dz, *steps, *damping)?, None)
            }
        };
        // The head's gradients last: the phantom path accumulates over the whole flat buffer.
        if let Some((w, b)) = self.head {
            let spec = MatmulSpec {
                trans_a: true,
                ..Default::default()
            };
            ops::matmul_into(dy, &forward.z, &spec, self.params.grad(w))?;
            ops::column_sums_into(dy, 1.0, self.params.grad(b))?;
        }
        let input_grad = match input_grad {
            true => Some(ops::matmul(
                &d_injection,
                self.params.weight(self.input),
                &MatmulSpec::default(),
            )?),
            false => None,
        };
        Ok(DeqBackward { input_grad, stats })
    }

    /// The k-step phantom gradient; returns d loss / d injection summed over the steps.
    fn phantom(&self, fwd: &DeqForward, dz: &Tensor, steps: usize, damping: f32) -> Result<Tensor> {
        let gpu = dz.gpu();
        let mut traces = Vec::new();
        let mut z = fwd.z.clone();
        for _ in 0..steps {
            let trace = self.trace(&z, &fwd.injection)?;
            let next = ops::scale(&z, 1.0 - damping)?;
            ops::axpy(damping, trace.output(), &next)?;
            traces.push(trace);
            z = next;
        }
        let sum = Tensor::zeros(gpu, self.params.grads().shape())?;
        let d_injection = Tensor::zeros(gpu, fwd.injection.shape())?;
        let mut v = dz.clone();
        for trace in traces.iter().rev() {
            let keep = ops::scale(&v, 1.0 - damping)?;
            let pushed = ops::scale(&v, damping)?;
            let next = Tensor::zeros(gpu, v.shape())?;
            let d_inj =
                self.cell_backward(trace, &pushed, Some(&keep), Some(&next), Some(&fwd.x))?;
            ops::axpy(1.0, self.params.grads(), &sum)?;
            ops::axpy(1.0, &d_inj, &d_injection)?;
            v = next;
        }
        self.params.grads().copy_from(&sum, 0)?;
        Ok(d_injection)
    }

    /// Runs the cell at `z`, keeping what back-propagation needs.
    fn trace(&self, z: &Tensor, injection: &Tensor) -> Result<Trace> {
        let act = self.config.activation;
        let keep_pre = !act.derivative_from_output();
        let mut trace = Trace {
            inputs: Vec::new(),
            pre: Vec::new(),
            acts: Vec::new(),
            norm: None,
        };
        let mut input = z.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let spec = MatmulSpec {
                trans_b: true,
                bias: layer.bias.map(|b| self.params.weight(b)),
                add: (i == 0).then_some(injection),
                activation: if keep_pre { Activation::Identity } else { act },
                ..Default::default()
            };
            let y = ops::matmul(&input, self.params.weight(layer.weight), &spec)?;
            let (pre, out) = match keep_pre {
                true => (Some(y.clone()), ops::activation(&y, act)?),
                false => (None, y),
            };
            trace.inputs.push(input);
            trace.pre.push(pre);
            trace.acts.push(out.clone());
            input = out;
        }
        if self.config.norm {
            trace.norm = Some(ops::layernorm(&input, None, LAYERNORM_EPS)?);
        }
        Ok(trace)
    }

    /// Writes f(z) into `out`, in one fused matmul for a one-layer cell.
    fn apply_cell(&self, z: &Tensor, injection: &Tensor, out: &Tensor) -> Result<()> {
        let act = self.config.activation;
        if self.layers.len() == 1 && !self.config.norm {
            let layer = self.layers[0];
            let spec = MatmulSpec {
                trans_b: true,
                bias: layer.bias.map(|b| self.params.weight(b)),
                add: Some(injection),
                activation: act,
                ..Default::default()
            };
            return ops::matmul_into(z, self.params.weight(layer.weight), &spec, out);
        }
        out.copy_from(self.trace(z, injection)?.output(), 0)
    }

    /// Back-propagates `g` (d loss / d f) through the cell at `trace`: writes J_z^T g (plus `add`)
    /// into `dz` when given, the cell's parameter gradients when `x` is given, and returns
    /// d loss / d injection.
    fn cell_backward(
        &self,
        trace: &Trace,
        g: &Tensor,
        add: Option<&Tensor>,
        dz: Option<&Tensor>,
        x: Option<&Tensor>,
    ) -> Result<Tensor> {
        let act = self.config.activation;
        let mut g = match &trace.norm {
            Some(norm) => {
                ops::layernorm_backward(trace.acts.last().expect("a layer"), norm, g, None)?
            }
            None => g.clone(),
        };
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let delta = match &trace.pre[i] {
                Some(pre) => ops::activation_backward(pre, &g, act)?,
                None => ops::activation_backward_from_output(&trace.acts[i], &g, act)?,
            };
            if let Some(x) = x {
                let spec = MatmulSpec {
                    trans_a: true,
                    ..Default::default()
                };
                ops::matmul_into(
                    &delta,
                    &trace.inputs[i],
                    &spec,
                    self.params.grad(layer.weight),
                )?;
                if let Some(b) = layer.bias {
                    ops::column_sums_into(&delta, 1.0, self.params.grad(b))?;
                }
                if i == 0 {
                    ops::matmul_into(&delta, x, &spec, self.params.grad(self.input))?;
                }
            }
            let weight = self.params.weight(layer.weight);
            if i == 0 {
                if let Some(dz) = dz {
                    let spec = MatmulSpec {
                        add,
                        ..Default::default()
                    };
                    ops::matmul_into(&delta, weight, &spec, dz)?;
                }
                return Ok(delta);
            }
            g = ops::matmul(&delta, weight, &MatmulSpec::default())?;
        }
        unreachable!("a cell has at least one layer")
    }
}

/// Names the solve a non-convergence error comes from.
fn at_stage(mut e: Error, name: &'static str) -> Error {
    if let Error::NotConverged { stage, .. } = &mut e {
        *stage = name;
    }
    e
}

/// Initial values of every parameter tensor of `tensors` (the layout), in order.
fn draw(config: &DeqConfig, tensors: &[(String, Vec<usize>)]) -> Result<Vec<Vec<f32>>> {
    let mut rng = init::rng(config.seed);
    let normal = |rng: &mut StdRng, n: usize, std: f32| -> Result<Vec<f32>> {
        let d = Normal::new(0.0, std).map_err(|_| {
            Error::invalid(
                "Deq::new",
                format!("sigma_w and sigma_u must be finite, got {std}"),
            )
        })?;
        Ok((0..n).map(|_| d.sample(rng)).collect())
    };
    let mut values = Vec::with_capacity(tensors.len());
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let fan_in = *shape.last().expect("non-empty shape") as f32;
        values.push(match name.rsplit('.').next() {
            _ if name.starts_with("head.") => continue,
            Some("input") => normal(&mut rng, n, config.sigma_u / (config.inputs as f32).sqrt())?,
            Some("weight") => normal(&mut rng, n, config.sigma_w / fan_in.sqrt())?,
            _ => vec![0.0; n],
        });
    }
    if config.outputs > 0 {
        let (w, b) = init::linear(
            Init::PyTorch,
            1,
            config.width,
            config.outputs,
            Activation::Identity,
            &mut rng,
        );
        values.extend([w, b]);
    }
    Ok(values)
}

/// z -> f(z, x) for a fixed injection.
struct CellMap<'a> {
    deq: &'a Deq,
    injection: &'a Tensor,
    rows: usize,
}

impl FixedPointMap for CellMap<'_> {
    fn gpu(&self) -> &Gpu {
        self.injection.gpu()
    }

    fn shape(&self) -> [usize; 2] {
        [self.rows, self.deq.config.width]
    }

    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
        self.deq.apply_cell(z, self.injection, out)
    }
}

/// g -> J^T g + dL/dz*, the adjoint map at z*.
struct AdjointMap<'a> {
    deq: &'a Deq,
    trace: &'a Trace,
    dz: &'a Tensor,
}

impl FixedPointMap for AdjointMap<'_> {
    fn gpu(&self) -> &Gpu {
        self.dz.gpu()
    }

    fn shape(&self) -> [usize; 2] {
        [self.dz.shape()[0], self.dz.shape()[1]]
    }

    fn apply(&self, g: &Tensor, out: &Tensor) -> Result<()> {
        self.deq
            .cell_backward(self.trace, g, Some(self.dz), Some(out), None)
            .map(|_| ())
    }
}
