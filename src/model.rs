//! The models a training run or a checkpoint holds, behind one interface: an [`Mlp`] or a
//! [`Deq`].

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::deq::{self, Deq, DeqConfig, DeqForward, SolveStats};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{self, ForwardCache, Mlp, MlpConfig, Parameters};
use crate::tensor::Tensor;

/// A model's architecture. Serialised as the inner configuration itself, so checkpoints of
/// MLPs read the same as before DEQs existed; an MLP's has `widths`, a DEQ's does not.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ModelConfig {
    /// A multi-layer perceptron.
    Mlp(MlpConfig),
    /// A deep equilibrium model.
    Deq(DeqConfig),
}

impl<'de> Deserialize<'de> for ModelConfig {
    /// Reads whichever configuration the `widths` key says it is, so that a malformed one
    /// reports its own error rather than "no variant matched".
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let config = match value.get("widths") {
            Some(_) => serde_json::from_value(value).map(ModelConfig::Mlp),
            None => serde_json::from_value(value).map(ModelConfig::Deq),
        };
        config.map_err(D::Error::custom)
    }
}

impl ModelConfig {
    /// Input features.
    pub fn inputs(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.widths.first().copied().unwrap_or(0),
            ModelConfig::Deq(c) => c.inputs,
        }
    }

    /// Output width (a DEQ without a head outputs z*).
    pub fn outputs(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.widths.last().copied().unwrap_or(0),
            ModelConfig::Deq(c) if c.outputs == 0 => c.width,
            ModelConfig::Deq(c) => c.outputs,
        }
    }

    /// Sets the input and output widths (from a data set's features and classes).
    pub fn fit_to(&mut self, inputs: usize, outputs: usize) -> Result<()> {
        match self {
            ModelConfig::Mlp(c) => {
                if c.widths.len() < 2 {
                    return Err(Error::invalid(
                        "model",
                        "MLP widths need an input and an output entry",
                    ));
                }
                c.widths[0] = inputs;
                *c.widths.last_mut().expect("two widths") = outputs;
            }
            ModelConfig::Deq(c) => {
                c.inputs = inputs;
                c.outputs = outputs;
            }
        }
        Ok(())
    }

    /// The names and shapes of the parameters, in order.
    pub(crate) fn layout(&self) -> Result<Vec<(String, Vec<usize>)>> {
        match self {
            ModelConfig::Mlp(c) => nn::mlp_layout(c),
            ModelConfig::Deq(c) => deq::layout(c),
        }
    }

    /// The most f32 values one row of a batch takes in any one buffer of a forward pass: the
    /// widest layer, or a DEQ solver's history of its state.
    pub(crate) fn row_floats(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.widths.iter().copied().max().unwrap_or(1),
            ModelConfig::Deq(c) => {
                let memory = match c.solver.method {
                    deq::Method::Anderson { memory, .. } | deq::Method::Broyden { memory } => {
                        memory.max(1)
                    }
                    deq::Method::FixedPoint { .. } => 1,
                };
                c.hidden
                    .iter()
                    .chain([&c.inputs, &c.outputs])
                    .copied()
                    .fold(c.width.saturating_mul(memory), usize::max)
            }
        }
    }

    /// A short description for logs, e.g. `mlp [64, 64, 10]` or
    /// `deq 64 -> z[64] (cell hidden []) -> 10`.
    pub fn describe(&self) -> String {
        match self {
            ModelConfig::Mlp(c) => format!("mlp {:?}", c.widths),
            ModelConfig::Deq(c) => format!(
                "deq {} -> z[{}] (cell hidden {:?}) -> {}",
                c.inputs, c.width, c.hidden, c.outputs
            ),
        }
    }
}

/// A model on the GPU.
pub enum Model {
    /// A multi-layer perceptron.
    Mlp(Mlp),
    /// A deep equilibrium model.
    Deq(Deq),
}

/// What [`Model::forward`] keeps for [`Model::backward`].
pub enum ModelCache {
    /// An MLP's activations.
    Mlp(ForwardCache),
    /// A DEQ's fixed point and solver statistics.
    Deq(Box<DeqForward>),
}

impl ModelCache {
    /// The forward solve's statistics, for DEQs.
    pub fn solve_stats(&self) -> Option<&SolveStats> {
        match self {
            ModelCache::Mlp(_) => None,
            ModelCache::Deq(f) => Some(&f.stats),
        }
    }
}

impl Model {
    /// Builds the model and draws its initial parameters.
    pub fn new(gpu: &Gpu, config: ModelConfig) -> Result<Model> {
        Ok(match config {
            ModelConfig::Mlp(c) => Model::Mlp(Mlp::new(gpu, c)?),
            ModelConfig::Deq(c) => Model::Deq(Deq::new(gpu, c)?),
        })
    }

    /// Rebuilds a model from a checkpoint's configuration and parameters.
    pub fn from_checkpoint(gpu: &Gpu, checkpoint: &Checkpoint) -> Result<Model> {
        let model = Model::new(gpu, checkpoint.config.clone())?;
        model.params().upload(&checkpoint.params)?;
        Ok(model)
    }

    /// The architecture.
    pub fn config(&self) -> ModelConfig {
        match self {
            Model::Mlp(m) => ModelConfig::Mlp(m.config().clone()),
            Model::Deq(d) => ModelConfig::Deq(d.config().clone()),
        }
    }

    /// Parameters and gradients.
    pub fn params(&self) -> &Parameters {
        match self {
            Model::Mlp(m) => m.params(),
            Model::Deq(d) => d.params(),
        }
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.config().outputs()
    }

    /// Runs the model on `x` of shape `[batch, inputs]`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, ModelCache)> {
        match self {
            Model::Mlp(m) => m.forward(x).map(|(y, c)| (y, ModelCache::Mlp(c))),
            Model::Deq(d) => d
                .forward(x)
                .map(|f| (f.output.clone(), ModelCache::Deq(Box::new(f)))),
        }
    }

    /// Writes every parameter's gradient for d loss / d output `dy`; returns the adjoint solve's
    /// statistics for a DEQ differentiated implicitly.
    pub fn backward(&self, cache: &ModelCache, dy: &Tensor) -> Result<Option<SolveStats>> {
        match (self, cache) {
            (Model::Mlp(m), ModelCache::Mlp(c)) => m.backward(c, dy, false).map(|_| None),
            (Model::Deq(d), ModelCache::Deq(f)) => d.backward(f, dy, false).map(|b| b.stats),
            _ => Err(Error::invalid(
                "Model::backward",
                "the cache comes from a different kind of model",
            )),
        }
    }
}
