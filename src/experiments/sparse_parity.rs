//! Sparse parity (Barak et al., 2022; Edelman et al., 2023): labels are the product of k hidden
//! coordinates of x in {-1, 1}^n; one-hidden-layer ReLU networks trained by SGD on the hinge
//! loss succeed with enough data, width, steps or luck, and sparse initialisation helps. Many
//! independent networks (seeds) train at once: every product below is one batched matmul over
//! the networks, and the optimizer one dispatch over all their parameters.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{Optimizer, OptimizerChoice, OptimizerConfig, Parameters};
use crate::ops::{self, Activation, Loss, MatmulSpec, Reduction};
use crate::tensor::{DType, Tensor};

/// Test accuracy that counts as success.
pub const SUCCESS_ACCURACY: f32 = 0.99;

/// An (n, k)-sparse-parity task: the hidden coordinates and a sampler.
#[derive(Clone, Debug)]
pub struct ParityTask {
    /// Input dimension.
    pub n: usize,
    /// The k coordinates whose product is the label.
    pub support: Vec<usize>,
}

impl ParityTask {
    /// A task with `k` hidden coordinates of `n`, drawn from `rng`.
    pub fn new(n: usize, k: usize, rng: &mut StdRng) -> Result<Self> {
        if k == 0 || k > n {
            return Err(Error::invalid(
                "sparse parity",
                format!("need 1 <= k <= n, got n = {n}, k = {k}"),
            ));
        }
        let mut support = sample(rng, n, k).into_vec();
        support.sort_unstable();
        Ok(ParityTask { n, support })
    }

    /// The label of `x`: the product of its hidden coordinates.
    pub fn label(&self, x: &[f32]) -> f32 {
        self.support.iter().map(|&i| x[i]).product()
    }

    /// `rows` samples x uniform in {-1, 1}^n, each followed by a constant 1 (the hidden
    /// layer's bias input), and their labels.
    pub fn sample(&self, rows: usize, rng: &mut StdRng) -> (Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(rows * (self.n + 1));
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let start = x.len();
            x.extend((0..self.n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }));
            y.push(self.label(&x[start..]));
            x.push(1.0);
        }
        (x, y)
    }
}

/// How the hidden layer starts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ParityInit {
    /// Every weight N(0, 1/n).
    Dense,
    /// Each hidden unit reads `inputs` random coordinates, weights N(0, 1/inputs).
    Sparse {
        /// Coordinates per unit.
        inputs: usize,
    },
}

/// One cell of the sweep.
#[derive(Clone, Debug, Serialize)]
pub struct ParityCell {
    /// Hidden width.
    pub width: usize,
    /// Initialisation.
    pub init: ParityInit,
    /// Training-set size, or `None` for fresh samples every step.
    pub train_size: Option<usize>,
}

/// Training settings shared by every cell (defaults as Barak et al.).
#[derive(Clone, Debug, Serialize)]
pub struct ParityConfig {
    /// Input dimension n.
    pub n: usize,
    /// Hidden coordinates k.
    pub k: usize,
    /// Networks (seeds) per cell, trained at once.
    pub seeds: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// Rows per step.
    pub batch: usize,
    /// Weight decay.
    pub weight_decay: f32,
    /// Steps before a network counts as failed.
    pub max_steps: usize,
    /// Steps between test evaluations.
    pub eval_every: usize,
    /// Test rows per network.
    pub test_size: usize,
}

impl ParityConfig {
    /// n = 50, k = 3, lr 0.1, batch 32, weight decay 0.01; 32 networks per cell (with fewer,
    /// a cell's 95% interval is too wide to tell most cells apart).
    pub fn paper() -> Self {
        ParityConfig {
            n: 50,
            k: 3,
            seeds: 32,
            lr: 0.1,
            batch: 32,
            weight_decay: 0.01,
            max_steps: 100_000,
            eval_every: 500,
            test_size: 2000,
        }
    }
}

/// What one cell measured.
#[derive(Clone, Debug, Serialize)]
pub struct ParityResult {
    /// The cell.
    pub cell: ParityCell,
    /// Networks reaching [`SUCCESS_ACCURACY`] on fresh test data within `max_steps`.
    pub successes: usize,
    /// Networks trained (the config's seeds).
    pub total: usize,
    /// `successes / total`.
    pub success_rate: f64,
    /// 95% Clopper-Pearson (exact binomial) interval of the success probability: with a few
    /// networks per cell the rate alone overstates what a cell shows (1 of 4 and 4 of 4 have
    /// overlapping intervals).
    pub success_interval: (f64, f64),
    /// Networks still below the threshold when training stopped at `max_steps`: their steps to
    /// success are censored (only known to exceed the cap).
    pub censored: usize,
    /// Median steps to success over all networks, the censored ones counted as beyond the cap:
    /// the step by which more than half of the networks had succeeded, `None` when no more
    /// than half did. (A median over the successful networks alone would condition on success,
    /// and with 1 success of 4 be that one network.)
    pub median_steps: Option<usize>,
    /// Steps each network needed (`None`: not within `max_steps`).
    pub steps: Vec<Option<usize>>,
    /// Final test accuracy of each network.
    pub final_accuracy: Vec<f32>,
}

/// Checks a cell's settings, and that its buffers fit the adapter, before anything is drawn:
/// [`run_cell`] calls it, and a sweep can check every cell before running the first.
pub fn check_cell(gpu: &Gpu, config: &ParityConfig, cell: &ParityCell) -> Result<()> {
    let bad = |detail: String| Err(Error::invalid("sparse parity", detail));
    let (s, n, m) = (config.seeds, config.n, cell.width);
    if config.k == 0 || config.k > n {
        return bad(format!("need 1 <= k <= n, got n = {n}, k = {}", config.k));
    }
    let counts = [
        ("seeds (networks per cell)", s),
        ("width", m),
        ("batch", config.batch),
        ("max_steps", config.max_steps),
        ("eval_every", config.eval_every),
        ("test_size", config.test_size),
    ];
    if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
        return bad(format!("{name} must be at least 1, got 0"));
    }
    if cell.train_size == Some(0) {
        return bad("a training-set size must be at least 1, got 0".into());
    }
    match cell.init {
        ParityInit::Sparse { inputs } if inputs == 0 || inputs > n => {
            return bad(format!(
                "a sparse unit reads between 1 and n = {n} inputs, got {inputs}"
            ));
        }
        _ => {}
    }
    // The largest buffers: hidden weights, a batch and the test set with their activations.
    let rows = config.batch.max(config.test_size);
    let inputs = n.saturating_add(1);
    for shape in [[s, m, inputs], [s, rows, inputs], [s, rows, m]] {
        Tensor::check_size(gpu, &shape, DType::F32)?;
    }
    // Fixed training sets live on the host only. Asking the allocator is a heuristic: under
    // Linux's overcommit it refuses only sizes past what the address space or policy allows,
    // which is the aim here (a typo such as 1e12 rows), not a promise that the sets fit.
    if let Some(size) = cell.train_size {
        let floats = s
            .checked_mul(size)
            .and_then(|v| v.checked_mul(n.saturating_add(2)))
            .filter(|&v| Vec::<f32>::new().try_reserve_exact(v).is_ok());
        if floats.is_none() {
            return bad(format!(
                "{s} training sets of {size} rows of {n} inputs do not fit in host memory; \
                 give smaller training-set sizes or fewer seeds"
            ));
        }
    }
    Ok(())
}

/// Trains `config.seeds` networks of one cell at once and reports when each succeeded.
pub fn run_cell(
    gpu: &Gpu,
    config: &ParityConfig,
    cell: &ParityCell,
    seed: u64,
) -> Result<ParityResult> {
    check_cell(gpu, config, cell)?;
    let (s, n, m, b) = (config.seeds, config.n, cell.width, config.batch);
    // Network j draws everything from its own stream, seeded `seed + j`, so it trains exactly as
    // it would alone (the batched products compute each network as a single product would).
    let mut rngs: Vec<StdRng> = (0..s as u64)
        .map(|j| StdRng::seed_from_u64(seed.wrapping_add(j)))
        .collect();
    let tasks: Vec<ParityTask> = rngs
        .iter_mut()
        .map(|r| ParityTask::new(n, config.k, r))
        .collect::<Result<_>>()?;
    let train: Option<Vec<(Vec<f32>, Vec<f32>)>> = cell.train_size.map(|size| {
        tasks
            .iter()
            .zip(rngs.iter_mut())
            .map(|(t, r)| t.sample(size, r))
            .collect()
    });

    // Hidden weights [s, m, n + 1] (the last column is the bias), output weights [s, 1, m].
    let normal = |rng: &mut StdRng, std: f32| -> f32 {
        rng.sample::<f32, _>(rand_distr::StandardNormal) * std
    };
    let mut w1 = vec![0.0f32; s * m * (n + 1)];
    let mut w2 = vec![0.0f32; s * m];
    for (net, rng) in rngs.iter_mut().enumerate() {
        for row in w1[net * m * (n + 1)..(net + 1) * m * (n + 1)].chunks_mut(n + 1) {
            match cell.init {
                ParityInit::Dense => row[..n]
                    .iter_mut()
                    .for_each(|w| *w = normal(rng, 1.0 / (n as f32).sqrt())),
                ParityInit::Sparse { inputs } => {
                    let inputs = inputs.clamp(1, n);
                    for j in sample(rng, n, inputs) {
                        row[j] = normal(rng, 1.0 / (inputs as f32).sqrt());
                    }
                }
            }
        }
        w2[net * m..(net + 1) * m]
            .iter_mut()
            .for_each(|w| *w = normal(rng, 1.0 / (m as f32).sqrt()));
    }
    let params = Parameters::new(
        gpu,
        vec![
            ("0.weight".into(), vec![s, m, n + 1]),
            ("2.weight".into(), vec![s, 1, m]),
        ],
        &[w1, w2],
    )?;
    let mut optimizer = Optimizer::new(
        &params,
        OptimizerConfig {
            kind: OptimizerChoice::Sgd,
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..OptimizerConfig::default()
        },
    )?;
    let (w1, w2) = (params.weight(0), params.weight(1));
    let (dw1, dw2) = (params.grad(0), params.grad(1));

    let test: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .iter()
        .zip(rngs.iter_mut())
        .map(|(t, r)| t.sample(config.test_size, r))
        .collect();
    let test_x = Tensor::from_slice(
        gpu,
        &test.iter().flat_map(|(x, _)| x.clone()).collect::<Vec<_>>(),
        &[s, config.test_size, n + 1],
    )?;
    let x = Tensor::zeros(gpu, &[s, b, n + 1])?;
    let y = Tensor::zeros(gpu, &[s * b, 1])?;
    let relu = MatmulSpec {
        trans_b: true,
        activation: Activation::Relu,
        ..Default::default()
    };
    let linear = MatmulSpec {
        trans_b: true,
        ..Default::default()
    };

    let mut steps: Vec<Option<usize>> = vec![None; s];
    let mut accuracy = vec![0.0f32; s];
    let (mut xs, mut ys) = (
        Vec::with_capacity(s * b * (n + 1)),
        Vec::with_capacity(s * b),
    );
    for step in 1..=config.max_steps {
        xs.clear();
        ys.clear();
        for (net, (task, rng)) in tasks.iter().zip(rngs.iter_mut()).enumerate() {
            match &train {
                None => {
                    let (bx, by) = task.sample(b, rng);
                    xs.extend(bx);
                    ys.extend(by);
                }
                Some(sets) => {
                    let (tx, ty) = &sets[net];
                    for _ in 0..b {
                        let row = rng.random_range(0..ty.len());
                        xs.extend_from_slice(&tx[row * (n + 1)..(row + 1) * (n + 1)]);
                        ys.push(ty[row]);
                    }
                }
            }
        }
        x.write(&xs)?;
        y.write(&ys)?;
        let h = ops::matmul(&x, w1, &relu)?; // [s, b, m]
        let out = ops::matmul(&h, w2, &linear)?; // [s, b, 1]
        let loss = ops::loss(&out.reshape(&[s * b, 1])?, &y, Loss::Hinge, Reduction::Sum)?;
        // Each network's loss is the mean over its own batch.
        let dout = ops::scale(&loss.grad, 1.0 / b as f32)?.reshape(&[s, b, 1])?;
        ops::matmul_into(
            &dout,
            &h,
            &MatmulSpec {
                trans_a: true,
                ..Default::default()
            },
            dw2,
        )?;
        let dh = ops::matmul(&dout, w2, &MatmulSpec::default())?;
        let dz = ops::activation_backward_from_output(&h, &dh, Activation::Relu)?;
        ops::matmul_into(
            &dz,
            &x,
            &MatmulSpec {
                trans_a: true,
                ..Default::default()
            },
            dw1,
        )?;
        optimizer.step(&params)?;

        if step % config.eval_every == 0 || step == config.max_steps {
            let hidden = ops::matmul(&test_x, w1, &relu)?;
            let scores = ops::matmul(&hidden, w2, &linear)?.to_vec()?;
            for net in 0..s {
                let (_, labels) = &test[net];
                let rows = &scores[net * config.test_size..(net + 1) * config.test_size];
                let correct = rows
                    .iter()
                    .zip(labels)
                    .filter(|(f, y)| **f * **y > 0.0)
                    .count();
                accuracy[net] = correct as f32 / config.test_size as f32;
                if accuracy[net] >= SUCCESS_ACCURACY && steps[net].is_none() {
                    steps[net] = Some(step);
                }
            }
            if steps.iter().all(Option::is_some) {
                break;
            }
        }
    }
    let mut done: Vec<usize> = steps.iter().flatten().copied().collect();
    done.sort_unstable();
    let successes = done.len();
    Ok(ParityResult {
        cell: cell.clone(),
        successes,
        total: s,
        success_rate: successes as f64 / s as f64,
        success_interval: clopper_pearson(successes, s, 0.05),
        censored: s - successes,
        // Index s / 2 of all s step counts sorted, failures last.
        median_steps: done.get(s / 2).copied(),
        steps,
        final_accuracy: accuracy,
    })
}

/// ln P(X = i) for X ~ Binomial(n, p), 0 < p < 1.
fn ln_binomial_pmf(i: usize, n: usize, p: f64) -> f64 {
    let (i, n) = (i as f64, n as f64);
    libm::lgamma(n + 1.0) - libm::lgamma(i + 1.0) - libm::lgamma(n - i + 1.0)
        + i * p.ln()
        + (n - i) * (-p).ln_1p()
}

/// P(X <= k) for X ~ Binomial(n, p).
pub fn binomial_cdf(k: usize, n: usize, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    (0..=k)
        .map(|i| ln_binomial_pmf(i, n, p).exp())
        .sum::<f64>()
        .min(1.0)
}

/// The exact (Clopper-Pearson) two-sided `1 - alpha` interval for a binomial proportion with
/// `k` successes in `n` trials: the p at which P(X >= k) and P(X <= k) equal alpha / 2, found by
/// bisection (both are monotone in p). `(0, 1)` when `n` is 0.
pub fn clopper_pearson(k: usize, n: usize, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let k = k.min(n);
    // The p in [0, 1] where the decreasing function `f` crosses alpha / 2.
    let crossing = |f: &dyn Fn(f64) -> f64| {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > alpha / 2.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let lower = if k == 0 {
        0.0
    } else {
        // P(X >= k | p) = P(n - X <= n - k | 1 - p), and n - X ~ Binomial(n, 1 - p).
        1.0 - crossing(&|q| binomial_cdf(n - k, n, q))
    };
    let upper = if k == n {
        1.0
    } else {
        crossing(&|p| binomial_cdf(k, n, p))
    };
    (lower, upper)
}

/// Exact two-sided sign test (McNemar's test on paired outcomes): the probability, if either
/// of two initialisations were as likely as the other to be the only one to succeed on a task,
/// of a split of the discordant tasks at least as uneven as `a` against `b`.
pub fn sign_test(a: usize, b: usize) -> f64 {
    let n = a + b;
    if n == 0 {
        return 1.0;
    }
    (2.0 * binomial_cdf(a.min(b), n, 0.5)).min(1.0)
}
