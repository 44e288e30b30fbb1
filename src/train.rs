//! Supervised training of a classifier (an MLP or a DEQ, see [`Model`]) on a [`Dataset`]:
//! epochs of shuffled batches (each step recorded back to back: forward, loss, backward,
//! optimizer), evaluation, checkpoints, and exact resumption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_checkpoint, save_checkpoint};
use crate::data::{DataFingerprint, Dataset, Splits, Standardizer};
use crate::deq::SolveStats;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{Model, ModelCache, ModelConfig};
use crate::nn::{MlpConfig, Optimizer, OptimizerConfig, Schedule};
use crate::ops::{self, Loss, Reduction};
use crate::tensor::Tensor;

/// Rows evaluated per forward pass.
const EVAL_CHUNK: usize = 4096;

/// Everything that defines a training run; saved in checkpoints so a resumed run continues
/// with the same settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model; its input and output widths are set from the data (features, classes).
    pub model: ModelConfig,
    /// The loss (class labels are one-hot encoded for squared error, ±1 for hinge).
    pub loss: Loss,
    /// Optimizer and schedule.
    pub optimizer: OptimizerConfig,
    /// Rows per step.
    pub batch_size: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Seed of the split and the batch order (the model has its own in `model.seed`).
    pub seed: u64,
    /// Fraction of rows held out for validation.
    pub validation: f64,
    /// Fraction of rows held out for testing.
    pub test: f64,
    /// Standardise features with statistics of the training split.
    pub standardize: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelConfig::Mlp(MlpConfig::new(&[0, 64, 0])),
            loss: Loss::CrossEntropy,
            optimizer: OptimizerConfig::default(),
            batch_size: 64,
            epochs: 20,
            seed: 0,
            validation: 0.1,
            test: 0.2,
            standardize: true,
        }
    }
}

/// Loss and accuracy on some rows.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f32,
    /// Fraction of rows whose largest output is the label.
    pub accuracy: f32,
}

/// What one epoch measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub train_loss: f32,
    /// Training-split accuracy after the epoch.
    pub train_accuracy: f32,
    /// Validation split after the epoch, if it has rows.
    pub validation: Option<Evaluation>,
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Optimizer steps so far.
    pub steps: u64,
    /// Wall time of the epoch, including evaluation.
    pub seconds: f64,
    /// The fixed-point solves of a DEQ's training steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverMetrics>,
}

/// Reads back a metric that JSON could not hold: serde_json writes a NaN or infinity as null.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

/// What a DEQ's solvers did over an epoch's training steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SolverMetrics {
    /// Mean evaluations of the cell per forward solve.
    pub forward_iterations: f64,
    /// The most in one forward solve.
    pub forward_iterations_max: usize,
    /// Forward solves that left some rows above the tolerance (f at their lowest-residual
    /// iterates was used).
    pub forward_unconverged: usize,
    /// The largest residual left by a forward solve.
    #[serde(deserialize_with = "nan_if_null")]
    pub forward_residual_max: f32,
    /// Mean iterations per adjoint (backward) solve, when differentiating implicitly.
    pub backward_iterations: Option<f64>,
    /// Adjoint solves that missed their tolerance.
    pub backward_unconverged: usize,
    /// Singular Anderson or Broyden updates replaced by plain steps, both directions.
    pub fallbacks: usize,
}

impl SolverMetrics {
    fn add(&mut self, forward: &SolveStats, backward: Option<&SolveStats>, steps: usize) {
        let n = steps as f64;
        self.forward_iterations += (forward.iterations as f64 - self.forward_iterations) / n;
        self.forward_iterations_max = self.forward_iterations_max.max(forward.iterations);
        self.forward_unconverged += usize::from(!forward.converged);
        self.forward_residual_max = self.forward_residual_max.max(forward.max_residual);
        self.fallbacks += forward.fallbacks;
        if let Some(b) = backward {
            let mean = self.backward_iterations.unwrap_or(0.0);
            self.backward_iterations = Some(mean + (b.iterations as f64 - mean) / n);
            self.backward_unconverged += usize::from(!b.converged);
            self.fallbacks += b.fallbacks;
        }
    }
}

/// A training run in progress.
pub struct Trainer {
    gpu: Gpu,
    config: TrainConfig,
    model: Model,
    optimizer: Optimizer,
    splits: Splits,
    standardizer: Option<Standardizer>,
    classes: usize,
    data: DataFingerprint,
    epoch: usize,
    history: Vec<EpochMetrics>,
}

impl Trainer {
    /// Splits and standardises `data`, sizes the model to it, and initialises.
    pub fn new(gpu: &Gpu, mut config: TrainConfig, data: &Dataset) -> Result<Trainer> {
        data.check()?;
        let classes = data.classes();
        if classes < 2 {
            return Err(Error::data(
                &data.source,
                "every label is 0: a classifier needs at least two classes",
            ));
        }
        config.model.fit_to(data.dim, classes)?;
        let model = Model::new(gpu, config.model.clone())?;
        let optimizer = Optimizer::new(model.params(), config.optimizer.clone())?;
        Self::assemble(gpu, config, data, model, optimizer, 0, Vec::new())
    }

    /// Continues the run saved in `checkpoint` (written by [`Trainer::save`]) on the same data:
    /// same split, parameters, optimizer state and batch order, as if it had not stopped.
    /// `epochs` replaces the saved total when given.
    pub fn resume(
        gpu: &Gpu,
        checkpoint: &Path,
        data: &Dataset,
        epochs: Option<usize>,
    ) -> Result<Trainer> {
        data.check()?;
        let file = checkpoint.display();
        let saved = load_checkpoint(checkpoint)?;
        let mut config: TrainConfig = saved
            .metadata
            .get("train")
            .ok_or_else(|| {
                Error::data(
                    &file,
                    "no training state (`train` metadata): not written by a training run",
                )
            })
            .and_then(|t| {
                serde_json::from_str(t)
                    .map_err(|e| Error::data(&file, format!("malformed `train` metadata: {e}")))
            })?;
        let epoch: usize = saved
            .metadata
            .get("epoch")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| Error::data(&file, "no `epoch` metadata"))?;
        if let Some(epochs) = epochs {
            if epochs < epoch {
                return Err(Error::invalid(
                    "Trainer::resume",
                    format!(
                        "{file} has already trained {epoch} epochs; epochs is the total to \
                         reach, so give {epoch} or more"
                    ),
                ));
            }
            config.epochs = epochs;
        }
        if config.model != saved.config {
            return Err(Error::data(
                &file,
                "the `train` metadata and the saved model disagree",
            ));
        }
        // A checkpoint written before fingerprints were kept resumes unchecked.
        if let Some(saved) = saved.metadata.get("data") {
            let saved: DataFingerprint = serde_json::from_str(saved)
                .map_err(|e| Error::data(&file, format!("malformed `data` metadata: {e}")))?;
            let here = data.fingerprint();
            if saved != here {
                return Err(Error::data(
                    &data.source,
                    format!(
                        "is not the data {file} was trained on ({} rows of {} features, CRC-32 \
                         {:08x}; here {} rows of {}, {:08x}): the split and the batch order \
                         follow row indices, so resume on the same rows in the same order, or \
                         train anew",
                        saved.rows,
                        saved.features,
                        saved.crc32,
                        here.rows,
                        here.features,
                        here.crc32
                    ),
                ));
            }
        }
        if data.dim != config.model.inputs() || data.classes() > config.model.outputs() {
            return Err(Error::data(
                &data.source,
                format!(
                    "does not fit the checkpoint's {} ({} features, {} classes)",
                    config.model.describe(),
                    data.dim,
                    data.classes()
                ),
            ));
        }
        let model = Model::from_checkpoint(gpu, &saved)?;
        let state = saved
            .optimizer
            .as_ref()
            .ok_or_else(|| Error::data(&file, "no optimizer state to resume from"))?;
        let optimizer = Optimizer::from_checkpoint(model.params(), state)?;
        // A checkpoint written before histories were kept resumes without one, and so holds
        // only the epochs after that in its own: the history ends at `epoch`, however far back
        // it goes. One that does not read so resumes all the same, with the files restarting.
        let history: Vec<EpochMetrics> = match saved.metadata.get("history") {
            None => Vec::new(),
            Some(h) => serde_json::from_str(h)
                .ok()
                .filter(|h: &Vec<EpochMetrics>| {
                    h.len() <= epoch
                        && h.iter()
                            .rev()
                            .zip((1..=epoch).rev())
                            .all(|(m, e)| m.epoch == e)
                })
                .unwrap_or_else(|| {
                    log::warn!(
                        "{file}: its epoch history is unreadable; the metrics file and plot \
                         restart at epoch {}",
                        epoch + 1
                    );
                    Vec::new()
                }),
        };
        let trainer = Self::assemble(gpu, config, data, model, optimizer, epoch, history)?;
        // A cosine schedule's rate is 0 from its last step on: epochs past it would train
        // nothing (the CLI sizes it to the run's first --epochs).
        if let Schedule::Cosine { total, .. } = trainer.config.optimizer.schedule {
            let steps = trainer.steps_per_epoch() as u64;
            if (trainer.config.epochs as u64).saturating_mul(steps) > total {
                let last = total / steps.max(1);
                return Err(Error::invalid(
                    "Trainer::resume",
                    format!(
                        "{file}'s cosine schedule reaches a rate of 0 after {total} steps \
                         (epoch {last}), so epochs past it would train nothing; resume to {last} \
                         epochs at most, or train anew with the longer run"
                    ),
                ));
            }
        }
        Ok(trainer)
    }

    fn assemble(
        gpu: &Gpu,
        config: TrainConfig,
        data: &Dataset,
        model: Model,
        optimizer: Optimizer,
        epoch: usize,
        history: Vec<EpochMetrics>,
    ) -> Result<Trainer> {
        if config.batch_size == 0 {
            return Err(Error::invalid("Trainer", "batch size must be at least 1"));
        }
        if config.epochs == 0 {
            return Err(Error::invalid(
                "Trainer",
                "epochs must be at least 1 (0 would train nothing)",
            ));
        }
        let classes = config.model.outputs();
        data.check_labels(classes)?;
        let mut splits = data.split(config.validation, config.test, config.seed)?;
        let standardizer = config.standardize.then(|| Standardizer::fit(&splits.train));
        if let Some(s) = &standardizer {
            for part in [&mut splits.train, &mut splits.validation, &mut splits.test] {
                s.apply(part)?;
            }
        }
        Ok(Trainer {
            gpu: gpu.clone(),
            config,
            model,
            optimizer,
            splits,
            standardizer,
            classes,
            data: data.fingerprint(),
            epoch,
            history,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The (standardised) splits.
    pub fn splits(&self) -> &Splits {
        &self.splits
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The metrics of the epochs completed, those before a resumption included as far back as
    /// the checkpoint holds them (all, unless the run began from a checkpoint written before
    /// percept kept them).
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Whether every configured epoch has run.
    pub fn finished(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// Steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.splits.train.len().div_ceil(self.config.batch_size)
    }

    fn targets(&self, labels: &[f32]) -> Result<Tensor> {
        targets(&self.gpu, self.config.loss, labels, self.classes)
    }

    /// Trains one epoch; `on_step` is called after each step is recorded (for progress bars).
    /// Returns the epoch's metrics, or [`Error::Diverged`] when the loss is not finite (the
    /// parameters are then those after the bad epoch: keep the last checkpoint).
    pub fn train_epoch(&mut self, mut on_step: impl FnMut()) -> Result<EpochMetrics> {
        let start = Instant::now();
        let train = &self.splits.train;
        let epoch_loss = Tensor::zeros(&self.gpu, &[1])?;
        let mut solver: Option<SolverMetrics> = None;
        let mut steps = 0;
        for rows in train.batches(self.config.batch_size, self.config.seed, self.epoch as u64) {
            let (features, labels) = train.gather(&rows);
            let x = Tensor::from_slice(&self.gpu, &features, &[rows.len(), train.dim])?;
            let target = self.targets(&labels)?;
            let (logits, cache) = self.model.forward(&x)?;
            let out = ops::loss(&logits, &target, self.config.loss, Reduction::Mean)?;
            let adjoint = self.model.backward(&cache, &out.grad)?;
            steps += 1;
            if let ModelCache::Deq(f) = &cache {
                solver
                    .get_or_insert_default()
                    .add(&f.stats, adjoint.as_ref(), steps);
            }
            self.optimizer.step(self.model.params())?;
            ops::axpy(
                rows.len() as f32 / train.len() as f32,
                &out.loss,
                &epoch_loss,
            )?;
            on_step();
        }
        let train_loss = epoch_loss.to_vec()?[0];
        self.epoch += 1;
        if !train_loss.is_finite() {
            return Err(Error::Diverged {
                loss: train_loss,
                epoch: self.epoch,
                kept: String::new(),
            });
        }
        let train_accuracy = self.score(&self.splits.train)?.accuracy;
        let validation = match self.splits.validation.is_empty() {
            true => None,
            false => Some(self.score(&self.splits.validation)?),
        };
        let metrics = EpochMetrics {
            epoch: self.epoch,
            train_loss,
            train_accuracy,
            validation,
            lr: self
                .config
                .optimizer
                .schedule
                .lr(self.config.optimizer.lr, self.optimizer.steps()),
            steps: self.optimizer.steps(),
            seconds: start.elapsed().as_secs_f64(),
            solver,
        };
        self.history.push(metrics.clone());
        Ok(metrics)
    }

    /// Loss and accuracy of the current network on `data` (already standardised like the
    /// training split: the splits are).
    pub fn evaluate(&self, data: &Dataset) -> Result<Evaluation> {
        data.check()?;
        check_fits(data, self.config.model.inputs(), self.classes)?;
        self.score(data)
    }

    /// [`Trainer::evaluate`] without its checks, for the trainer's own splits (checked when
    /// they were made).
    fn score(&self, data: &Dataset) -> Result<Evaluation> {
        evaluate(&self.model, self.config.loss, data, |labels| {
            self.targets(labels)
        })
    }

    /// Writes the run (model, optimizer, settings, epoch, standardisation) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "train".to_string(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        metadata.insert("epoch".to_string(), self.epoch.to_string());
        metadata.insert(
            "data".to_string(),
            serde_json::to_string(&self.data).expect("serialises"),
        );
        metadata.insert(
            "history".to_string(),
            serde_json::to_string(&self.history).expect("metrics serialise"),
        );
        metadata.insert(
            "loss".to_string(),
            serde_json::to_string(&self.config.loss).expect("serialises"),
        );
        let mut extra = BTreeMap::new();
        if let Some(s) = &self.standardizer {
            extra.insert("data.mean".to_string(), s.mean.clone());
            extra.insert("data.std".to_string(), s.std.clone());
        }
        save_checkpoint(path, &self.model, Some(&self.optimizer), &extra, &metadata)
    }
}

/// That `data`'s rows fit a model of `inputs` features and `classes` outputs.
fn check_fits(data: &Dataset, inputs: usize, classes: usize) -> Result<()> {
    if data.dim != inputs {
        return Err(Error::data(
            &data.source,
            format!(
                "{} features, the model takes {inputs}: evaluate on rows laid out like its \
                 training data",
                data.dim
            ),
        ));
    }
    data.check_labels(classes)
}

/// The targets tensor `loss` takes for class `labels`: the labels themselves, one-hot rows
/// (squared error), or ±1 rows (hinge, one class against the rest).
fn targets(gpu: &Gpu, loss: Loss, labels: &[f32], classes: usize) -> Result<Tensor> {
    let off = match loss {
        Loss::CrossEntropy | Loss::MultiMargin => {
            return Tensor::from_slice(gpu, labels, &[labels.len()]);
        }
        Loss::MeanSquaredError => 0.0,
        Loss::Hinge => -1.0,
    };
    let mut encoded = vec![off; labels.len() * classes];
    for (row, &l) in labels.iter().enumerate() {
        encoded[row * classes + l as usize] = 1.0;
    }
    Tensor::from_slice(gpu, &encoded, &[labels.len(), classes])
}

/// The predicted class of a row of outputs: the first of equal maxima, as NumPy's and
/// PyTorch's argmax take (a tie is not credited to the last class).
fn predicted(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Loss and accuracy of `model` on `data`, in chunks; `targets` encodes labels for the loss.
fn evaluate(
    model: &Model,
    loss: Loss,
    data: &Dataset,
    targets: impl Fn(&[f32]) -> Result<Tensor>,
) -> Result<Evaluation> {
    let gpu = model.params().weights().gpu();
    if data.is_empty() {
        return Err(Error::data(&data.source, "no rows to evaluate"));
    }
    // Fewer rows per pass where the widest per-row buffer of a forward pass would pass the
    // adapter's limit at EVAL_CHUNK rows (training, in smaller batches, may fit).
    let limits = gpu.limits();
    let budget = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let per_row = (model.config().row_floats() as u64)
        .saturating_mul(4)
        .max(1);
    let chunk_rows = ((budget / per_row) as usize).clamp(1, EVAL_CHUNK);
    let (mut total, mut correct) = (0.0f64, 0usize);
    let rows: Vec<usize> = (0..data.len()).collect();
    for chunk in rows.chunks(chunk_rows) {
        let (features, labels) = data.gather(chunk);
        let x = Tensor::from_slice(gpu, &features, &[chunk.len(), data.dim])?;
        let (logits, _) = model.forward(&x)?;
        let out = ops::loss(&logits, &targets(&labels)?, loss, Reduction::Sum)?;
        let values = logits.to_vec()?;
        total += out.loss.to_vec()?[0] as f64;
        if let Some(at) = values.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite {
                what: format!(
                    "the network's outputs on {} (its weights are non-finite, or overflow on \
                     these inputs)",
                    data.source
                ),
                index: chunk[0] * model.outputs() + at,
            });
        }
        for (row, &label) in values.chunks(model.outputs()).zip(&labels) {
            correct += (predicted(row) == label as usize) as usize;
        }
    }
    let n = data.len();
    let per_row = if loss.takes_class_indices() {
        n
    } else {
        n * model.outputs()
    };
    Ok(Evaluation {
        loss: (total / per_row as f64) as f32,
        accuracy: correct as f32 / n as f32,
    })
}

/// Which rows of a data set to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Every row.
    All,
    /// The split a training run with the checkpoint's settings held out for testing.
    Test,
    /// Its validation split.
    Validation,
    /// Its training split.
    Train,
}

impl std::str::FromStr for Part {
    type Err = Error;

    /// `all`, `test`, `validation` or `train`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Part::All),
            "test" => Ok(Part::Test),
            "validation" => Ok(Part::Validation),
            "train" => Ok(Part::Train),
            _ => Err(Error::invalid(
                "split",
                format!("`{s}`: use all, test, validation or train"),
            )),
        }
    }
}

/// Evaluates a saved model on `part` of `data`, applying the standardisation stored with it.
pub fn evaluate_checkpoint(
    gpu: &Gpu,
    checkpoint: &Path,
    data: &Dataset,
    part: Part,
) -> Result<Evaluation> {
    let file = checkpoint.display();
    let saved = load_checkpoint(checkpoint)?;
    let data = match part {
        Part::All => data.clone(),
        _ => {
            let config: TrainConfig = saved
                .metadata
                .get("train")
                .and_then(|t| serde_json::from_str(t).ok())
                .ok_or_else(|| {
                    Error::data(
                        &file,
                        "no training settings to re-create the splits from; use --split all",
                    )
                })?;
            let splits = data.split(config.validation, config.test, config.seed)?;
            match part {
                Part::Test => splits.test,
                Part::Validation => splits.validation,
                _ => splits.train,
            }
        }
    };
    if data.is_empty() {
        return Err(Error::data(&data.source, "the requested split has no rows"));
    }
    let loss: Loss = match saved.metadata.get("loss") {
        Some(l) => serde_json::from_str(l)
            .map_err(|e| Error::data(&file, format!("malformed `loss` metadata: {e}")))?,
        None => Loss::CrossEntropy,
    };
    let model = Model::from_checkpoint(gpu, &saved)?;
    let inputs = saved.config.inputs();
    check_fits(&data, inputs, model.outputs())?;
    let mut data = data;
    if let (Some(mean), Some(std)) = (saved.extra.get("data.mean"), saved.extra.get("data.std")) {
        // The file's, not fitted here: a wrong length would index past them.
        if mean.len() != inputs || std.len() != inputs {
            return Err(Error::data(
                &file,
                format!(
                    "the standardisation has {} means and {} standard deviations, the model \
                     takes {inputs} inputs",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if let Some(i) = mean.iter().chain(std).position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("{file}: the standardisation (means, then deviations)"),
                index: i,
            });
        }
        // Training fits deviations of 1 to constant features: a deviation of 0 or less would
        // turn every feature it divides into infinities or NaN.
        if let Some((i, s)) = std.iter().enumerate().find(|(_, s)| **s <= 0.0) {
            return Err(Error::data(
                &file,
                format!(
                    "the standardisation's deviation {i} is {s}; deviations must be positive \
                     (the file was not written by percept train, or is damaged)"
                ),
            ));
        }
        Standardizer {
            mean: mean.clone(),
            std: std.clone(),
        }
        .apply(&mut data)?;
    }
    evaluate(&model, loss, &data, |labels| {
        targets(gpu, loss, labels, model.outputs())
    })
}

/// Files a training run writes as it goes.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Checkpoint rewritten after every epoch whose loss is finite.
    pub checkpoint: Option<PathBuf>,
    /// Metrics as JSON lines, one object per epoch of [`Trainer::history`] (a resumed run's file
    /// starts at its first epoch, not at the resumption).
    pub metrics: Option<PathBuf>,
    /// Loss and accuracy curves (SVG), over the same epochs.
    pub plot: Option<PathBuf>,
}

/// Runs the remaining epochs of `trainer`, writing `outputs` after each, calling `on_step`
/// after every step and `on_epoch` after every epoch. On a non-finite loss it stops with
/// [`Error::Diverged`] and leaves the last checkpoint (from the last good epoch) in place.
/// Returns the metrics of the epochs this call ran.
pub fn fit(
    trainer: &mut Trainer,
    outputs: &Outputs,
    mut on_step: impl FnMut(),
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Vec<EpochMetrics>> {
    let mut ran = Vec::new();
    // A file at the checkpoint's path holds this run's last good epoch only if this call wrote
    // it or the run resumed (from it, as `percept train --resume` does); else it is older.
    let resumed = trainer.epoch() > 0;
    while !trainer.finished() {
        let metrics = match trainer.train_epoch(&mut on_step) {
            Err(Error::Diverged { loss, epoch, .. }) => {
                let ours = resumed || !ran.is_empty();
                let kept = match &outputs.checkpoint {
                    Some(p) if ours && p.exists() => format!(
                        "; the checkpoint {} from epoch {} is kept",
                        p.display(),
                        epoch - 1
                    ),
                    _ => String::new(),
                };
                return Err(Error::Diverged { loss, epoch, kept });
            }
            other => other?,
        };
        on_epoch(&metrics);
        ran.push(metrics);
        if let Some(path) = &outputs.checkpoint {
            trainer.save(path)?;
        }
        if let Some(path) = &outputs.metrics {
            let lines: String = trainer
                .history()
                .iter()
                .map(|m| serde_json::to_string(m).expect("metrics serialise") + "\n")
                .collect();
            crate::files::write_atomically(path, lines.as_bytes())?;
        }
        if let Some(path) = &outputs.plot {
            crate::plot::training_curves(path, trainer.history())?;
        }
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::predicted;

    #[test]
    fn ties_predict_the_first_class() {
        assert_eq!(predicted(&[0.0, 0.0, 0.0]), 0);
        assert_eq!(predicted(&[0.1, 0.7, 0.7]), 1);
        assert_eq!(predicted(&[-1.0, -3.0, 2.0]), 2);
        assert_eq!(predicted(&[f32::NEG_INFINITY, -1e30]), 1);
    }
}
