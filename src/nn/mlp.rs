//! Multi-layer perceptrons with an explicit forward (keeping what backward needs) and backward
//! (writing parameter gradients into the flat gradient buffer).

use serde::{Deserialize, Serialize};

use super::init::{self, Init};
use super::params::Parameters;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{self, Activation, LayerNormAffineGrads, LayerNormOutput, MatmulSpec};
use crate::tensor::Tensor;

/// Epsilon of every layer norm (PyTorch's default).
pub const LAYERNORM_EPS: f32 = 1e-5;

/// Where hidden layers normalise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// No layer norm.
    #[default]
    None,
    /// Linear, LayerNorm, activation.
    BeforeActivation,
    /// Linear, activation, LayerNorm (as in Joudaki et al.'s X <- LN(act(X W))).
    AfterActivation,
}

impl std::str::FromStr for Norm {
    type Err = Error;

    /// `none`, `before` (before the activation) or `after`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Norm::None),
            "before" => Ok(Norm::BeforeActivation),
            "after" => Ok(Norm::AfterActivation),
            _ => Err(Error::invalid(
                "norm",
                format!("`{s}`: use none, before or after"),
            )),
        }
    }
}

/// The architecture of an [`Mlp`] and how it is initialised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Widths from input to output: `[inputs, hidden.., outputs]`, at least two.
    pub widths: Vec<usize>,
    /// Activation after every hidden linear layer (none after the last).
    pub activation: Activation,
    /// Layer-norm placement in hidden layers.
    pub norm: Norm,
    /// Whether layer norms have a learnable gain and bias.
    pub norm_affine: bool,
    /// Whether linear layers have a bias.
    pub bias: bool,
    /// How linear weights are drawn.
    pub init: Init,
    /// Seed of the initialisation.
    pub seed: u64,
}

impl MlpConfig {
    /// A ReLU network of `widths` with biases, no layer norm, PyTorch's default initialisation.
    pub fn new(widths: &[usize]) -> Self {
        MlpConfig {
            widths: widths.to_vec(),
            activation: Activation::Relu,
            norm: Norm::None,
            norm_affine: true,
            bias: true,
            init: Init::PyTorch,
            seed: 0,
        }
    }
}

/// One step of the network as it runs (linear layers absorb the activation that follows them
/// when its derivative can be taken from its output).
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Linear {
        weight: usize,
        bias: Option<usize>,
        act: Activation,
    },
    Act(Activation),
    LayerNorm {
        affine: Option<(usize, usize)>,
    },
}

/// What [`Mlp::forward`] keeps for [`Mlp::backward`].
pub struct ForwardCache {
    /// The network's ops, so that a backward pass can refuse another network's cache.
    ops: Vec<Op>,
    /// Input of each op, then the network's output last.
    values: Vec<Tensor>,
    layernorms: Vec<Option<LayerNormOutput>>,
}

impl ForwardCache {
    /// The network's output.
    pub fn output(&self) -> &Tensor {
        self.values.last().expect("the input at least")
    }
}

/// A multi-layer perceptron on the GPU.
///
/// ```
/// use percept::{Gpu, Tensor, nn::{Mlp, MlpConfig}};
/// let gpu = Gpu::new()?;
/// let mlp = Mlp::new(&gpu, MlpConfig::new(&[3, 8, 2]))?;
/// let x = Tensor::from_slice(&gpu, &[0.5, -1.0, 2.0, 0.0, 1.0, -0.5], &[2, 3])?;
/// let (y, cache) = mlp.forward(&x)?;
/// assert_eq!(y.shape(), &[2, 2]);
/// let dy = Tensor::from_slice(&gpu, &[1.0, 0.0, 0.0, 1.0], &[2, 2])?;
/// mlp.backward(&cache, &dy, false)?; // gradients now in mlp.params().grads()
/// # Ok::<(), percept::Error>(())
/// ```
pub struct Mlp {
    config: MlpConfig,
    ops: Vec<Op>,
    params: Parameters,
}

impl Mlp {
    /// Builds the network and draws its initial parameters.
    pub fn new(gpu: &Gpu, config: MlpConfig) -> Result<Mlp> {
        // Sizes first: drawing the initial values of a network too large for the adapter
        // would exhaust host memory before the upload could refuse it.
        Parameters::layout(gpu, &layout(&config)?)?;
        let mut rng = init::rng(config.seed);
        let (ops, tensors, values) = plan(&config, Some(&mut rng))?;
        let params = Parameters::new(gpu, tensors, &values)?;
        Ok(Mlp {
            config,
            ops,
            params,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Parameters and gradients.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.config.widths[0]
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        *self.config.widths.last().expect("at least two widths")
    }

    /// Runs the network on `x` of shape `[batch, inputs]`, keeping what the backward needs.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, ForwardCache)> {
        if x.shape().len() != 2 || x.shape()[1] != self.inputs() {
            return Err(Error::shape(
                "Mlp::forward",
                format!(
                    "input has shape {:?}, the network takes [batch, {}]",
                    x.shape(),
                    self.inputs()
                ),
            ));
        }
        let mut values = vec![x.clone()];
        let mut layernorms = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let input = values.last().expect("the input at least");
            let mut ln = None;
            let out = match *op {
                Op::Linear { weight, bias, act } => {
                    let bias = bias.map(|b| self.params.weight(b));
                    let spec = MatmulSpec {
                        trans_b: true,
                        bias,
                        activation: act,
                        ..Default::default()
                    };
                    ops::matmul(input, self.params.weight(weight), &spec)?
                }
                Op::Act(act) => ops::activation(input, act)?,
                Op::LayerNorm { affine } => {
                    let params =
                        affine.map(|(g, b)| (self.params.weight(g), self.params.weight(b)));
                    let out = ops::layernorm(input, params, LAYERNORM_EPS)?;
                    let y = out.y.clone();
                    ln = Some(out);
                    y
                }
            };
            layernorms.push(ln);
            values.push(out);
        }
        let cache = ForwardCache {
            ops: self.ops.clone(),
            values,
            layernorms,
        };
        Ok((cache.output().clone(), cache))
    }

    /// Back-propagates `dy` (d loss / d output) through the network: writes every parameter's
    /// gradient into [`Parameters::grads`] (overwriting), and returns d loss / d input when
    /// `input_grad` is set.
    pub fn backward(
        &self,
        cache: &ForwardCache,
        dy: &Tensor,
        input_grad: bool,
    ) -> Result<Option<Tensor>> {
        if cache.ops != self.ops {
            return Err(Error::invalid(
                "Mlp::backward",
                "the cache comes from another network's forward (its layers differ): pass the \
                 cache this network's forward returned",
            ));
        }
        if dy.shape() != cache.output().shape() {
            return Err(Error::shape(
                "Mlp::backward",
                format!(
                    "gradient has shape {:?}, the output {:?}",
                    dy.shape(),
                    cache.output().shape()
                ),
            ));
        }
        let mut grad = dy.clone();
        for (i, op) in self.ops.iter().enumerate().rev() {
            let (input, output) = (&cache.values[i], &cache.values[i + 1]);
            let need_dx = i > 0 || input_grad;
            grad = match *op {
                Op::Linear { weight, bias, act } => {
                    let dz = match act {
                        Activation::Identity => grad,
                        _ => ops::activation_backward_from_output(output, &grad, act)?,
                    };
                    let spec = MatmulSpec {
                        trans_a: true,
                        ..Default::default()
                    };
                    ops::matmul_into(&dz, input, &spec, self.params.grad(weight))?;
                    if let Some(b) = bias {
                        ops::column_sums_into(&dz, 1.0, self.params.grad(b))?;
                    }
                    if !need_dx {
                        return Ok(None);
                    }
                    ops::matmul(&dz, self.params.weight(weight), &MatmulSpec::default())?
                }
                Op::Act(act) => ops::activation_backward(input, &grad, act)?,
                Op::LayerNorm { affine } => {
                    let forward = cache.layernorms[i].as_ref().expect("kept by forward");
                    let affine = affine.map(|(g, b)| LayerNormAffineGrads {
                        gamma: self.params.weight(g),
                        dgamma: self.params.grad(g),
                        dbeta: self.params.grad(b),
                    });
                    ops::layernorm_backward(input, forward, &grad, affine)?
                }
            };
        }
        Ok(Some(grad))
    }
}

/// The names and shapes of the parameters a configuration implies, in order.
pub(crate) fn layout(config: &MlpConfig) -> Result<Vec<(String, Vec<usize>)>> {
    Ok(plan(config, None)?.1)
}

type Plan = (Vec<Op>, Vec<(String, Vec<usize>)>, Vec<Vec<f32>>);

/// The ops and parameter tensors of `config`, with initial values drawn from `rng` (empty
/// values without one).
fn plan(config: &MlpConfig, mut rng: Option<&mut rand::rngs::StdRng>) -> Result<Plan> {
    if config.widths.len() < 2 || config.widths.contains(&0) {
        return Err(Error::invalid(
            "Mlp::new",
            format!(
                "widths must list at least the input and output sizes, all >= 1, got {:?}",
                config.widths
            ),
        ));
    }
    if rng.is_some() {
        // Only when drawing: a checkpoint's network is rebuilt whatever its initialiser was.
        config.init.check(config.widths[0])?;
    }
    let mut tensors = Vec::new();
    let mut values = Vec::new();
    let mut ops = Vec::new();
    let mut module = 0; // the index torch.nn.Sequential gives each module
    let mut add = |name: String, shape: Vec<usize>, v: Vec<f32>| {
        tensors.push((name, shape));
        values.push(v);
        tensors.len() - 1
    };
    let drawing = rng.is_some();
    let layers = config.widths.len() - 1;
    for layer in 0..layers {
        let (fan_in, fan_out) = (config.widths[layer], config.widths[layer + 1]);
        let hidden = layer + 1 < layers;
        let act = if hidden {
            config.activation
        } else {
            Activation::Identity
        };
        let (w, b) = match rng.as_deref_mut() {
            Some(rng) => init::linear(config.init, layer, fan_in, fan_out, act, rng),
            None => (Vec::new(), Vec::new()),
        };
        let weight = add(format!("{module}.weight"), vec![fan_out, fan_in], w);
        let bias = config
            .bias
            .then(|| add(format!("{module}.bias"), vec![fan_out], b));
        module += 1;
        let mut linear_act = Activation::Identity;
        let mut tail = Vec::new();
        if hidden {
            let mut layernorm = |module: &mut usize| {
                // Sizes only, like the linear layers', when not drawing: the layout is
                // checked against the adapter before any value is made.
                let fill = |v: f32| {
                    if drawing {
                        vec![v; fan_out]
                    } else {
                        Vec::new()
                    }
                };
                let affine = config.norm_affine.then(|| {
                    let g = add(format!("{module}.weight"), vec![fan_out], fill(1.0));
                    let b = add(format!("{module}.bias"), vec![fan_out], fill(0.0));
                    (g, b)
                });
                *module += 1;
                Op::LayerNorm { affine }
            };
            if config.norm == Norm::BeforeActivation {
                tail.push(layernorm(&mut module));
                tail.push(Op::Act(act));
            } else if act.derivative_from_output() {
                linear_act = act;
            } else {
                tail.push(Op::Act(act));
            }
            module += 1; // the activation module
            if config.norm == Norm::AfterActivation {
                tail.push(layernorm(&mut module));
            }
        }
        ops.push(Op::Linear {
            weight,
            bias,
            act: linear_act,
        });
        ops.extend(tail);
    }
    Ok((ops, tensors, values))
}
