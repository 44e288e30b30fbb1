//! `percept train` and `percept eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use percept::data::{self, Format, LabelColumn, Source};
use percept::deq::{Backward, DeqConfig, Method, SolverConfig, Stop};
use percept::model::ModelConfig;
use percept::nn::{Init, MlpConfig, Norm, OptimizerChoice, OptimizerConfig, Schedule};
use percept::ops::{Activation, Loss};
use percept::train::{self, EpochMetrics, Outputs, Part, TrainConfig, Trainer};
use percept::{Gpu, Result};

/// Where the data comes from.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Features file, or the whole CSV (default: the shipped UCI digits, data/digits.csv.gz).
    #[arg(long)]
    data: Option<PathBuf>,
    /// File format (default: from the file name).
    #[arg(long, value_parser = ["csv", "npy", "idx"])]
    format: Option<String>,
    /// Labels file, for NPY and IDX features.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// CSV label column: `last`, a 0-based index, or a header name [default: last].
    #[arg(long)]
    label_column: Option<LabelColumn>,
    /// The CSV's first line is a header.
    #[arg(long)]
    header: bool,
}

impl DataArgs {
    fn load(&self) -> Result<data::Dataset> {
        let format = self.format.as_deref().map(|f| match f {
            "csv" => Format::Csv,
            "npy" => Format::Npy,
            _ => Format::Idx,
        });
        data::load(&Source {
            path: self.data.clone().unwrap_or_else(data::digits_path),
            format,
            labels: self.labels.clone(),
            label_column: self.label_column.clone(),
            header: self.header,
        })
    }
}

/// `percept train`.
#[derive(Args, Debug)]
// `--lr -1` reaches the settings' own checks, which say what range they take.
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The model: `mlp`, or `deq` (a deep equilibrium layer z* = act(W z + U x + b), or a
    /// deeper cell with --cell-hidden, then a linear head).
    #[arg(long, default_value = "mlp", value_parser = ["mlp", "deq"])]
    model: String,
    /// MLP: hidden widths, comma-separated (input and output widths come from the data)
    /// [default: 64].
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Activation of hidden layers (a DEQ's cell): identity, relu, gelu, tanh, sigmoid, elu,
    /// softplus [default: relu for an MLP, tanh for a DEQ].
    #[arg(long)]
    activation: Option<Activation>,
    /// Layer norm in hidden layers: none, before or after the activation (a DEQ: any value but
    /// none normalises the cell's output, without gain and bias).
    #[arg(long, default_value = "none")]
    norm: Norm,
    /// DEQ: width of the equilibrium state z [default: 128].
    #[arg(long)]
    width: Option<usize>,
    /// DEQ: hidden widths inside the cell, comma-separated [default: none, the one-layer cell].
    #[arg(long, value_delimiter = ',')]
    cell_hidden: Option<Vec<usize>>,
    /// DEQ: cell weights ~ N(0, sigma_w^2 / fan_in); the input injection takes 1 / inputs
    /// [default: 0.6].
    #[arg(long)]
    sigma_w: Option<f32>,
    /// DEQ: the fixed-point solver, forward and (implicit) backward: fixed-point, anderson,
    /// broyden [default: anderson].
    #[arg(long)]
    solver: Option<Method>,
    /// DEQ: relative residual ||f(z) - z|| / ||f(z)|| at which a sample stops [default: 1e-3].
    #[arg(long)]
    tol: Option<f32>,
    /// DEQ: most cell evaluations per solve; samples still above --tol then keep the cell's
    /// output at their lowest-residual iterate, and the epoch's log counts them [default: 40].
    #[arg(long)]
    max_iter: Option<usize>,
    /// DEQ: gradients by `implicit` differentiation or the `phantom` gradient [default:
    /// implicit].
    #[arg(long, value_parser = ["implicit", "phantom"])]
    backward: Option<String>,
    /// DEQ: unrolled steps of the phantom gradient, 1 to 1000 [default: 5].
    #[arg(long)]
    phantom_steps: Option<usize>,
    /// DEQ: damping of the phantom gradient's steps [default: 0.5].
    #[arg(long)]
    phantom_damping: Option<f32>,
    /// MLP: layer norms without learnable gain and bias.
    #[arg(long)]
    no_norm_affine: bool,
    /// Linear layers without bias.
    #[arg(long)]
    no_bias: bool,
    /// MLP: weight initialisation: pytorch, kaiming-normal, kaiming-uniform, xavier-normal,
    /// xavier-uniform, normal:STD, sparse:INPUTS [default: pytorch].
    #[arg(long)]
    init: Option<Init>,
    /// Loss: cross-entropy, mse, hinge, multi-margin.
    #[arg(long, default_value = "cross-entropy")]
    loss: Loss,
    /// Optimizer: sgd, adam, adamw.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerChoice,
    /// Learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// SGD Nesterov momentum.
    #[arg(long)]
    nesterov: bool,
    /// Weight decay (L2 for sgd and adam, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 0.0)]
    max_grad_norm: f32,
    /// Learning-rate schedule: constant, step (x gamma every --step-epochs), cosine (with
    /// --warmup-epochs of linear warm-up).
    #[arg(long, default_value = "constant", value_parser = ["constant", "step", "cosine"])]
    schedule: String,
    /// Epochs between decays of the step schedule.
    #[arg(long, default_value_t = 10)]
    step_epochs: usize,
    /// Decay factor of the step schedule.
    #[arg(long, default_value_t = 0.1)]
    gamma: f32,
    /// Warm-up epochs of the cosine schedule.
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// Rows per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Epochs (with --resume: the total to reach; without it there, the checkpoint's own).
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Seed of the initialisation, split and batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction held out for validation.
    #[arg(long, default_value_t = 0.1)]
    validation: f64,
    /// Fraction held out for testing.
    #[arg(long, default_value_t = 0.2)]
    test: f64,
    /// Do not standardise features.
    #[arg(long)]
    no_standardize: bool,
    /// Checkpoint written after every epoch (safetensors).
    #[arg(long, default_value = "percept-checkpoint.safetensors")]
    checkpoint: PathBuf,
    /// Continue the run saved in --checkpoint (its settings win over the flags, except --epochs).
    #[arg(long)]
    resume: bool,
    /// Per-epoch metrics as JSON lines.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Loss and accuracy curves (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print JSON lines instead of text and progress bars.
    #[arg(long)]
    json: bool,
    /// The ids of the flags given on the command line (set by `main`).
    #[arg(skip)]
    pub given: Vec<String>,
}

/// `--step-epochs` for the id `step_epochs`.
fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

impl TrainArgs {
    fn gave(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }

    /// Flags that would be silently ignored, or that contradict each other, are errors (with
    /// --resume, a note); and every output path must be writable before training starts.
    fn check_flags(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(percept::Error::InvalidArgument {
                op: "train",
                detail,
            })
        };
        if self.resume {
            const APPLY: [&str; 11] = [
                "data",
                "format",
                "labels",
                "label_column",
                "header",
                "epochs",
                "checkpoint",
                "resume",
                "metrics",
                "plot",
                "json",
            ];
            // Repeating the run's own flags is harmless, so a note rather than an error.
            let ignored: Vec<String> = self
                .given
                .iter()
                .filter(|id| !APPLY.contains(&id.as_str()))
                .map(|id| flag(id))
                .collect();
            if !ignored.is_empty() {
                eprintln!(
                    "note: {} ignored with --resume: a resumed run keeps the checkpoint's \
                     settings (only --epochs, the data flags and the outputs apply)",
                    ignored.join(", ")
                );
            }
            return self.check_outputs();
        }
        if self.optimizer != OptimizerChoice::Sgd {
            if let Some(id) = ["momentum", "nesterov"]
                .into_iter()
                .find(|id| self.gave(id))
            {
                return bad(format!(
                    "{} is SGD's setting (add --optimizer sgd)",
                    flag(id)
                ));
            }
        }
        for (ids, schedule) in [
            (&["step_epochs", "gamma"][..], "step"),
            (&["warmup_epochs"], "cosine"),
        ] {
            if self.schedule != schedule {
                if let Some(id) = ids.iter().find(|id| self.gave(id)) {
                    return bad(format!(
                        "{} sets the {schedule} schedule (add --schedule {schedule})",
                        flag(id)
                    ));
                }
            }
        }
        if self.schedule == "cosine" && self.warmup_epochs > self.epochs {
            return bad(format!(
                "--warmup-epochs {} is longer than the run's --epochs {}: the rate would never \
                 reach --lr; give fewer warm-up epochs",
                self.warmup_epochs, self.epochs
            ));
        }
        self.check_outputs()
    }

    fn check_outputs(&self) -> Result<()> {
        crate::check_output("train", "--checkpoint", &self.checkpoint)?;
        for (name, path) in [("--metrics", &self.metrics), ("--plot", &self.plot)] {
            if let Some(path) = path {
                crate::check_output("train", name, path)?;
            }
        }
        Ok(())
    }

    /// The model the flags describe; flags of the other kind of model are an error, not
    /// silently ignored.
    fn model(&self) -> Result<ModelConfig> {
        let deq = self.model == "deq";
        let (mlp_only, deq_only) = (
            [
                ("--hidden", self.hidden.is_some()),
                ("--init", self.init.is_some()),
                ("--no-norm-affine", self.no_norm_affine),
            ],
            [
                ("--width", self.width.is_some()),
                ("--cell-hidden", self.cell_hidden.is_some()),
                ("--sigma-w", self.sigma_w.is_some()),
                ("--solver", self.solver.is_some()),
                ("--tol", self.tol.is_some()),
                ("--max-iter", self.max_iter.is_some()),
                ("--backward", self.backward.is_some()),
                ("--phantom-steps", self.phantom_steps.is_some()),
                ("--phantom-damping", self.phantom_damping.is_some()),
            ],
        );
        let (foreign, kind, hint): (&[(&str, bool)], _, _) = match deq {
            true => (&mlp_only, "an MLP's", "a DEQ's cell takes --cell-hidden"),
            false => (&deq_only, "a DEQ's", "add --model deq"),
        };
        if let Some((flag, _)) = foreign.iter().find(|(_, given)| *given) {
            return Err(percept::Error::InvalidArgument {
                op: "train",
                detail: format!("{flag} is {kind} setting ({hint})"),
            });
        }
        let phantom = self.backward.as_deref() == Some("phantom");
        let phantom_flag = [
            ("--phantom-steps", self.phantom_steps.is_some()),
            ("--phantom-damping", self.phantom_damping.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given);
        if let (Some((flag, _)), false) = (phantom_flag, phantom) {
            return Err(percept::Error::InvalidArgument {
                op: "train",
                detail: format!(
                    "{flag} is a setting of the phantom gradient (add --backward phantom)"
                ),
            });
        }
        if deq {
            let solver = SolverConfig {
                method: self.solver.unwrap_or(Method::ANDERSON),
                tol: self.tol.unwrap_or(1e-3),
                stop: Stop::Relative,
                max_iter: self.max_iter.unwrap_or(40),
                check_every: 5,
                accept_unconverged: true,
            };
            let backward = match phantom {
                true => Backward::Phantom {
                    steps: self.phantom_steps.unwrap_or(5),
                    damping: self.phantom_damping.unwrap_or(0.5),
                },
                false => Backward::Implicit {
                    solver: solver.clone(),
                },
            };
            return Ok(ModelConfig::Deq(DeqConfig {
                hidden: self.cell_hidden.clone().unwrap_or_default(),
                activation: self.activation.unwrap_or(Activation::Tanh),
                norm: self.norm != Norm::None,
                bias: !self.no_bias,
                sigma_w: self.sigma_w.unwrap_or(0.6),
                seed: self.seed,
                solver,
                backward,
                ..DeqConfig::new(0, self.width.unwrap_or(128))
            }));
        }
        let mut widths = vec![0];
        widths.extend(self.hidden.as_deref().unwrap_or(&[64]));
        widths.push(0);
        Ok(ModelConfig::Mlp(MlpConfig {
            widths,
            activation: self.activation.unwrap_or(Activation::Relu),
            norm: self.norm,
            norm_affine: !self.no_norm_affine,
            bias: !self.no_bias,
            init: self.init.unwrap_or(Init::PyTorch),
            seed: self.seed,
        }))
    }

    fn config(&self, steps_per_epoch: u64) -> Result<TrainConfig> {
        let schedule = match self.schedule.as_str() {
            "step" => Schedule::Step {
                every: (self.step_epochs as u64).saturating_mul(steps_per_epoch),
                gamma: self.gamma,
            },
            "cosine" => Schedule::Cosine {
                warmup: (self.warmup_epochs as u64).saturating_mul(steps_per_epoch),
                total: (self.epochs as u64).saturating_mul(steps_per_epoch),
            },
            _ => Schedule::Constant,
        };
        Ok(TrainConfig {
            model: self.model()?,
            loss: self.loss,
            optimizer: OptimizerConfig {
                kind: self.optimizer,
                lr: self.lr,
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay,
                max_grad_norm: self.max_grad_norm,
                schedule,
                ..OptimizerConfig::default()
            },
            batch_size: self.batch_size,
            epochs: self.epochs,
            seed: self.seed,
            validation: self.validation,
            test: self.test,
            standardize: !self.no_standardize,
        })
    }
}

fn print_epoch(m: &EpochMetrics, json: bool) {
    if json {
        println!("{}", serde_json::to_string(m).expect("metrics serialise"));
        return;
    }
    let validation = m
        .validation
        .map(|v| format!("  val loss {:.4}  val acc {:.4}", v.loss, v.accuracy))
        .unwrap_or_default();
    let solver = m
        .solver
        .as_ref()
        .map(|s| {
            let backward = s
                .backward_iterations
                .map(|b| format!(", backward {b:.1}"))
                .unwrap_or_default();
            format!(
                "  solver: forward {:.1} it (max {}, {} unconverged){backward}",
                s.forward_iterations, s.forward_iterations_max, s.forward_unconverged
            )
        })
        .unwrap_or_default();
    println!(
        "epoch {:>3}  loss {:.4}  train acc {:.4}{validation}  lr {:.2e}  {:.2} s{solver}",
        m.epoch, m.train_loss, m.train_accuracy, m.lr, m.seconds
    );
}

pub fn run_train(args: TrainArgs) -> Result<ExitCode> {
    args.check_flags()?;
    let gpu = Gpu::new()?;
    let data = args.data.load()?;
    let mut trainer = if args.resume {
        let epochs = args.gave("epochs").then_some(args.epochs);
        let trainer = Trainer::resume(&gpu, &args.checkpoint, &data, epochs)?;
        if trainer.finished() {
            eprintln!(
                "note: {} has already trained its {} epochs; give a larger --epochs to train on",
                args.checkpoint.display(),
                trainer.epoch()
            );
        }
        trainer
    } else {
        // The schedule counts steps: those of the split the trainer will make.
        let train_rows = data.training_rows(args.validation, args.test).max(1) as u64;
        let steps = train_rows.div_ceil(args.batch_size.max(1) as u64);
        Trainer::new(&gpu, args.config(steps)?, &data)?
    };
    if !args.json {
        eprintln!(
            "training {} on {} ({} rows: {} train, {} validation, {} test) with {} on {}",
            trainer.config().model.describe(),
            data.source,
            data.len(),
            trainer.splits().train.len(),
            trainer.splits().validation.len(),
            trainer.splits().test.len(),
            format!("{:?}", trainer.config().optimizer.kind).to_lowercase(),
            gpu.summary().adapter,
        );
    }
    let outputs = Outputs {
        checkpoint: Some(args.checkpoint.clone()),
        metrics: args.metrics.clone(),
        plot: args.plot.clone(),
    };
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(trainer.steps_per_epoch() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} steps {elapsed}")
            .expect("template"),
    );
    let mut epoch = trainer.epoch();
    bar.set_prefix(format!("epoch {}", epoch + 1));
    let history = train::fit(
        &mut trainer,
        &outputs,
        || bar.inc(1),
        |m| {
            bar.suspend(|| print_epoch(m, args.json));
            epoch = m.epoch;
            bar.reset();
            bar.set_prefix(format!("epoch {}", epoch + 1));
        },
    );
    bar.finish_and_clear();
    history?;
    let test = trainer.evaluate(&trainer.splits().test);
    match (test, args.json) {
        (Ok(t), true) => println!(
            "{}",
            serde_json::json!({ "test": t, "checkpoint": args.checkpoint })
        ),
        (Ok(t), false) => println!(
            "test loss {:.4}  test accuracy {:.4}  ({} rows); checkpoint {}",
            t.loss,
            t.accuracy,
            trainer.splits().test.len(),
            args.checkpoint.display()
        ),
        (Err(_), true) if trainer.splits().test.is_empty() => println!(
            "{}",
            serde_json::json!({ "test": null, "checkpoint": args.checkpoint })
        ),
        (Err(_), false) if trainer.splits().test.is_empty() => println!(
            "no test split to report (--test 0); checkpoint {}",
            args.checkpoint.display()
        ),
        (Err(e), _) => return Err(e),
    }
    Ok(ExitCode::SUCCESS)
}

/// `percept eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The checkpoint to evaluate.
    #[arg(long, default_value = "percept-checkpoint.safetensors")]
    checkpoint: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Rows to evaluate: all, or the test, validation or train split of the checkpoint's run.
    #[arg(long, default_value = "test")]
    split: Part,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run_eval(args: EvalArgs) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let data = args.data.load()?;
    let e = train::evaluate_checkpoint(&gpu, &args.checkpoint, &data, args.split)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "loss": e.loss, "accuracy": e.accuracy, "split": format!("{:?}", args.split).to_lowercase() })
        );
    } else {
        println!(
            "{:?} split: loss {:.4}  accuracy {:.4}",
            args.split, e.loss, e.accuracy
        );
    }
    Ok(ExitCode::SUCCESS)
}
