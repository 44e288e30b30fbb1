//! Initialisers, all drawn from a seeded RNG so runs repeat exactly.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::ops::Activation;

/// How a linear layer's weight `[fan_out, fan_in]` is drawn. Biases start at zero, except
/// under [`Init::PyTorch`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    /// PyTorch's `nn.Linear` default: weight and bias U(-1/√fan_in, 1/√fan_in).
    PyTorch,
    /// N(0, gain² / fan_in).
    KaimingNormal,
    /// U(-b, b), b = gain √(3 / fan_in).
    KaimingUniform,
    /// N(0, gain² 2 / (fan_in + fan_out)).
    XavierNormal,
    /// U(-b, b), b = gain √(6 / (fan_in + fan_out)).
    XavierUniform,
    /// N(0, std²).
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// Each output unit of the first layer reads `inputs` randomly chosen inputs, weights
    /// N(0, gain² / inputs), the rest zero; later layers Kaiming normal. (Sparse initialisation
    /// as in Edelman et al., 2023.)
    Sparse {
        /// Inputs each unit reads.
        inputs: usize,
    },
}

impl std::str::FromStr for Init {
    type Err = crate::Error;

    /// `pytorch`, `kaiming-normal`, `kaiming-uniform`, `xavier-normal`, `xavier-uniform`,
    /// `normal:STD` or `sparse:INPUTS`.
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = || crate::Error::InvalidArgument {
            op: "init",
            detail: format!(
                "`{s}`: use pytorch, kaiming-normal, kaiming-uniform, xavier-normal, \
                     xavier-uniform, normal:STD or sparse:INPUTS"
            ),
        };
        let init = match s.split_once(':') {
            Some(("normal", std)) => Init::Normal {
                std: std.parse().map_err(|_| bad())?,
            },
            Some(("sparse", n)) => Init::Sparse {
                inputs: n.parse().map_err(|_| bad())?,
            },
            Some(_) => return Err(bad()),
            None => match s {
                "pytorch" => Init::PyTorch,
                "kaiming-normal" => Init::KaimingNormal,
                "kaiming-uniform" => Init::KaimingUniform,
                "xavier-normal" => Init::XavierNormal,
                "xavier-uniform" => Init::XavierUniform,
                _ => return Err(bad()),
            },
        };
        init.check(usize::MAX)?;
        Ok(init)
    }
}

impl Init {
    /// Checks the parameters for a first layer of `fan_in` inputs: a finite, non-negative
    /// standard deviation; a sparse unit reading between 1 and `fan_in` inputs.
    pub(crate) fn check(&self, fan_in: usize) -> crate::Result<()> {
        let bad = |detail: String| Err(crate::Error::invalid("init", detail));
        match *self {
            Init::Normal { std } if !(std.is_finite() && std >= 0.0) => bad(format!(
                "normal:{std}: the standard deviation must be finite and >= 0"
            )),
            Init::Sparse { inputs: 0 } => {
                bad("sparse:0: each unit must read at least one input".into())
            }
            Init::Sparse { inputs } if inputs > fan_in => bad(format!(
                "sparse:{inputs}: the first layer has only {fan_in} inputs; give at most \
                 sparse:{fan_in}"
            )),
            _ => Ok(()),
        }
    }
}

/// The gain PyTorch's `calculate_gain` gives the activation that follows a layer (ReLU-like
/// activations it does not list get ReLU's √2).
pub fn gain(act: Activation) -> f32 {
    match act {
        Activation::Identity | Activation::Sigmoid => 1.0,
        Activation::Tanh => 5.0 / 3.0,
        Activation::Relu | Activation::Gelu | Activation::Elu | Activation::Softplus => 2f32.sqrt(),
    }
}

/// Draws the weight and bias of layer number `layer` (0 is the first) with `fan_in` inputs and
/// `fan_out` outputs, followed by `act`, from `rng`. Callers check `init` ([`Init::check`]) and
/// the layer's size against the adapter first.
pub(crate) fn linear(
    init: Init,
    layer: usize,
    fan_in: usize,
    fan_out: usize,
    act: Activation,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<f32>) {
    let n = fan_in * fan_out;
    let g = gain(act);
    let normal = |rng: &mut StdRng, std: f32, n: usize| -> Vec<f32> {
        let d = Normal::new(0.0, std.max(f32::MIN_POSITIVE)).expect("finite std");
        (0..n).map(|_| d.sample(rng)).collect()
    };
    let uniform = |rng: &mut StdRng, bound: f32, n: usize| -> Vec<f32> {
        let d = Uniform::new_inclusive(-bound, bound).expect("finite bound");
        (0..n).map(|_| d.sample(rng)).collect()
    };
    let fan_in_f = fan_in.max(1) as f32;
    let weight = match init {
        Init::PyTorch => {
            let bound = 1.0 / fan_in_f.sqrt();
            let w = uniform(rng, bound, n);
            let b = uniform(rng, bound, fan_out);
            return (w, b);
        }
        Init::KaimingNormal => normal(rng, g / fan_in_f.sqrt(), n),
        Init::KaimingUniform => uniform(rng, g * (3.0 / fan_in_f).sqrt(), n),
        Init::XavierNormal => normal(rng, g * (2.0 / (fan_in + fan_out).max(1) as f32).sqrt(), n),
        Init::XavierUniform => uniform(rng, g * (6.0 / (fan_in + fan_out).max(1) as f32).sqrt(), n),
        Init::Normal { std } => normal(rng, std, n),
        Init::Sparse { inputs } if layer == 0 => {
            let s = inputs.clamp(1, fan_in.max(1));
            let d = Normal::new(0.0, g / (s as f32).sqrt()).expect("finite std");
            let mut w = vec![0.0; n];
            for row in w.chunks_mut(fan_in) {
                for j in sample(rng, fan_in, s.min(fan_in)) {
                    row[j] = d.sample(rng);
                }
            }
            w
        }
        Init::Sparse { .. } => normal(rng, g / fan_in_f.sqrt(), n),
    };
    (weight, vec![0.0; fan_out])
}

/// A seeded RNG for initialisation, independent of the data-shuffling stream.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x1417_1417_1417_1417)
}

/// Draws `n` values from N(0, 1) (for tests and synthetic data).
pub fn standard_normal(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect()
}
