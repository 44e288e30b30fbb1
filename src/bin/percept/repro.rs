//! `percept repro`: the papers' experiments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use percept::experiments::deq_nngp::{self, DeqNngpConfig, DeqNngpReport};
use percept::experiments::isometry::{self, IsometryConfig, IsometryCurve};
use percept::experiments::sparse_parity::{
    self, ParityCell, ParityConfig, ParityInit, ParityResult,
};
use percept::plot::{self, Series};
use percept::{Gpu, Result};

#[derive(Subcommand, Debug)]
pub enum Repro {
    /// Isometry of normalised MLPs at initialisation (Joudaki et al., 2023).
    Isometry(IsometryArgs),
    /// Sparse parity: success against width, initialisation and data (Edelman et al., 2023).
    SparseParity(ParityArgs),
    /// Deep equilibrium models as Gaussian processes: empirical output covariance of random
    /// DEQs against the NNGP kernel (Gao et al., 2023).
    DeqNngp(DeqNngpArgs),
}

#[derive(Args, Debug)]
pub struct DeqNngpArgs {
    /// Widths 32 .. 256 and 400 networks (for CPU drivers); else widths 32 .. 4096 and 10,000
    /// networks (fewer past width 1000: at most 10^10 weights per width).
    #[arg(long)]
    quick: bool,
    /// Activations, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "tanh,relu")]
    activations: Vec<percept::ops::Activation>,
    /// Widths, comma-separated.
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Networks per width (before the cap on weights per width).
    #[arg(long)]
    networks: Option<usize>,
    /// Seed of the inputs and of every network.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Log-log plot of the relative squared error against width (SVG).
    #[arg(long, default_value = "deq-nngp.svg")]
    plot: PathBuf,
}

#[derive(Args, Debug)]
pub struct ParityArgs {
    /// n = 20, widths 16, 64, 256, at most 4000 steps (for CPU drivers); else n = 50 and widths
    /// 10 to 10^4.
    #[arg(long)]
    quick: bool,
    /// Input dimension n (default 50; 20 with --quick).
    #[arg(long)]
    n: Option<usize>,
    /// Hidden coordinates k.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Inputs per unit of the sparse initialisation (default n / 5, at least k + 1).
    #[arg(long)]
    sparse_inputs: Option<usize>,
    /// Training-set sizes for the offline runs, comma-separated (online runs always included).
    #[arg(long, value_delimiter = ',')]
    train_sizes: Option<Vec<usize>>,
    /// Networks per cell (default 32; 4 with --quick, which then takes minutes rather than most
    /// of an hour on lavapipe): with fewer than about 32, a cell's 95% interval is too wide to
    /// tell most cells apart.
    #[arg(long)]
    seeds: Option<usize>,
    /// Steps before a network counts as failed.
    #[arg(long)]
    max_steps: Option<usize>,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Rows per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f32,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Plots are written as PREFIX-width.svg and PREFIX-frontier.svg.
    #[arg(long, default_value = "sparse-parity")]
    plot_prefix: String,
}

#[derive(Args, Debug)]
pub struct IsometryArgs {
    /// d = 256 and 15 layers instead of the paper's 1000 and 30 (for CPU drivers).
    #[arg(long)]
    quick: bool,
    /// Independent networks averaged over (default 16; 4 with --quick).
    #[arg(long)]
    seeds: Option<usize>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// -log I against depth, with layer norm, measured and predicted (SVG).
    #[arg(long, default_value = "isometry.svg")]
    plot: PathBuf,
}

pub fn run_repro(repro: Repro) -> Result<ExitCode> {
    match repro {
        Repro::Isometry(args) => run_isometry(args),
        Repro::SparseParity(args) => run_parity(args),
        Repro::DeqNngp(args) => run_deq_nngp(args),
    }
}

fn run_deq_nngp(args: DeqNngpArgs) -> Result<ExitCode> {
    crate::check_output("repro deq-nngp", "--plot", &args.plot)?;
    let gpu = Gpu::new()?;
    let mut config = if args.quick {
        DeqNngpConfig::quick()
    } else {
        DeqNngpConfig::paper()
    };
    config.activations = args.activations.clone();
    config.seed = args.seed;
    if let Some(widths) = &args.widths {
        config.widths = widths.clone();
    }
    if let Some(networks) = args.networks {
        config.networks = networks;
    }
    eprintln!(
        "deq-nngp: {} inputs in {} dimensions, widths {:?}, up to {} networks, sigma_w {} on {}",
        config.points,
        config.d_in,
        config.widths,
        config.networks,
        config.sigma_w,
        gpu.summary().adapter
    );
    let report = deq_nngp::run_deq_nngp(&gpu, &config, |activation, r| {
        eprintln!(
            "{activation:?} width {}: {} networks, rel. sq. error {:.3e}, lambda_min/sigma_w^2 {:.4}, {:.1} iterations ({:.1} s)",
            r.width, r.networks, r.rel_sq_error, r.lambda_min, r.mean_iterations, r.seconds
        );
    })?;
    plot_deq_nngp(&args.plot, &report)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "report": report, "plot": args.plot })
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_deq_nngp(&report);
    eprintln!("wrote {}", args.plot.display());
    Ok(ExitCode::SUCCESS)
}

fn print_deq_nngp(report: &DeqNngpReport) {
    let opt = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "-".into())
    };
    for a in &report.activations {
        let name = format!("{:?}", a.activation).to_lowercase();
        println!(
            "{name}: kernel fixed point in {} iterations; analytic lambda_min(K)/sigma_w^2 = {:.4} (our x); paper's rel. sq. error at width 1000 over 10^4 networks: {}",
            a.kernel.iterations,
            a.analytic_lambda_min,
            a.paper_rel_sq_error_1000
                .map(|e| format!("{e:.1e}"))
                .unwrap_or_else(|| "-".into())
        );
        println!(
            "{:>6} {:>8} {:>21} {:>10} {:>17} {:>8} {:>8} {:>9} {:>7} {:>6}",
            "width",
            "networks",
            "rel. sq. error (se)",
            "sampling",
            "lambda_min (se)",
            "per-net",
            "paper",
            "analytic",
            "gap/se",
            "iters"
        );
        for w in &a.widths {
            // lambda_min(C) - lambda_min(K) in jackknife errors: several is a resolved gap, not
            // agreement.
            let gap = (w.lambda_min - a.analytic_lambda_min) / w.lambda_min_se;
            println!(
                "{:>6} {:>8} {:>21} {:>10.2e} {:>17} {:>8.4} {:>8} {:>9.4} {:>+7.1} {:>6.1}",
                w.width,
                w.networks,
                format!("{:.3e} ({:.1e})", w.rel_sq_error, w.rel_sq_error_se),
                w.sampling_floor,
                format!("{:.4} ({:.4})", w.lambda_min, w.lambda_min_se),
                w.per_network_lambda_min,
                opt(w.paper_lambda_min, 4),
                a.analytic_lambda_min,
                gap,
                w.mean_iterations
            );
        }
        let bias = match a.bias_slope {
            Some(slope) => format!("{slope:.2} over widths {:?}", a.bias_resolved_widths),
            None => format!(
                "not resolved: above {} jackknife errors at {} of {} widths",
                deq_nngp::RESOLVED_SE,
                a.bias_resolved_widths.len(),
                a.widths.len()
            ),
        };
        println!(
            "log-log slope of the error against width: {} (finite-width part, error - sampling: {bias}); paper: about -1",
            opt(a.error_slope, 2),
        );
        println!();
    }
}

/// log10 of the relative squared error (solid) and of its sampling floor (dashed) against
/// log10 width, with a slope -1 guide through the first error.
fn plot_deq_nngp(path: &std::path::Path, report: &DeqNngpReport) -> Result<()> {
    let mut series = Vec::new();
    for a in &report.activations {
        let name = format!("{:?}", a.activation).to_lowercase();
        let log = |w: usize, v: f64| ((w as f64).log10(), v.log10());
        series.push(Series {
            label: format!("{name}: ||C - K||^2 / ||K||^2"),
            points: a
                .widths
                .iter()
                .map(|w| log(w.width, w.rel_sq_error))
                .collect(),
            dashed: false,
        });
        series.push(Series {
            label: format!("{name}: sampling floor"),
            points: a
                .widths
                .iter()
                .map(|w| log(w.width, w.sampling_floor))
                .collect(),
            dashed: true,
        });
        if let Some(first) = a.widths.first() {
            series.push(Series {
                label: format!("{name}: slope -1 guide"),
                points: a
                    .widths
                    .iter()
                    .map(|w| {
                        log(
                            w.width,
                            first.rel_sq_error * first.width as f64 / w.width as f64,
                        )
                    })
                    .collect(),
                dashed: true,
            });
        }
    }
    plot::lines(
        path,
        "DEQ output covariance against the NNGP kernel",
        "log10 width",
        "log10 relative squared error",
        &series,
    )
}

fn run_isometry(args: IsometryArgs) -> Result<ExitCode> {
    crate::check_output("repro isometry", "--plot", &args.plot)?;
    let gpu = Gpu::new()?;
    let mut config = if args.quick {
        IsometryConfig::quick()
    } else {
        IsometryConfig::paper(16)
    };
    if let Some(seeds) = args.seeds {
        config.seeds = seeds;
    }
    eprintln!(
        "isometry: n={} d={} depth={} seeds={} on {}",
        config.batch,
        config.width,
        config.depth,
        config.seeds,
        gpu.summary().adapter
    );
    let curves = isometry::run_isometry(&gpu, &config)?;
    plot_isometry(&args.plot, &curves)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "config": config, "curves": curves, "plot": args.plot })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let d = config.depth;
    let last = isometry::RATE_LAST_LAYER.min(d);
    println!(
        "-log I (mean over {} seeds) after layers 0 (input), 1, 2, 5 and {d}; measured: gap contraction per layer from layer 1 to {last}, (gap[1] / gap[{last}])^(1/{}), mean (standard error) over seeds",
        config.seeds,
        last.saturating_sub(1)
    );
    println!(
        "{:<9} {:>3} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>17} {:>10}",
        "act", "LN", "scale", "0", "1", "2", "5", d, "measured (se)", "2 - beta0"
    );
    for c in &curves {
        let at = |l: usize| c.neg_log_isometry.get(l).copied().unwrap_or(f64::NAN);
        println!(
            "{:<9} {:>3} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>17} {:>10.4}",
            format!("{:?}", c.activation).to_lowercase(),
            if c.layernorm { "yes" } else { "no" },
            c.input_scale,
            at(0),
            at(1),
            at(2),
            at(5),
            at(d),
            format!("{:.4} ({:.4})", c.measured_rate, c.measured_rate_se),
            c.predicted_rate
        );
    }
    eprintln!("wrote {}", args.plot.display());
    Ok(ExitCode::SUCCESS)
}

/// log10(-log I) against depth for the layer-normalised curves of the first input scale, each
/// with its prediction from layer 1 on: gap[1] / (2 - beta0)^(l - 1).
fn plot_isometry(path: &std::path::Path, curves: &[IsometryCurve]) -> Result<()> {
    let scale = curves.first().map(|c| c.input_scale).unwrap_or(10.0);
    let mut series = Vec::new();
    for c in curves
        .iter()
        .filter(|c| c.layernorm && c.input_scale == scale)
    {
        let name = format!("{:?}", c.activation).to_lowercase();
        let points = c
            .neg_log_isometry
            .iter()
            .enumerate()
            .map(|(l, g)| (l as f64, g.log10()))
            .collect();
        series.push(Series {
            label: format!("{name} measured"),
            points,
            dashed: false,
        });
        let start = c.neg_log_isometry.get(1).copied().unwrap_or(f64::NAN);
        let predicted = (1..c.neg_log_isometry.len())
            .map(|l| {
                (
                    l as f64,
                    (start / c.predicted_rate.powi(l as i32 - 1)).log10(),
                )
            })
            .collect();
        series.push(Series {
            label: format!("{name} predicted"),
            points: predicted,
            dashed: true,
        });
    }
    plot::lines(
        path,
        &format!("isometry gap with layer norm, top singular value x{scale}"),
        "layer",
        "log10(-log I)",
        &series,
    )
}

fn run_parity(args: ParityArgs) -> Result<ExitCode> {
    if args.plot_prefix.is_empty() {
        return Err(percept::Error::InvalidArgument {
            op: "repro sparse-parity",
            detail: "--plot-prefix is empty; give a path prefix such as sparse-parity".into(),
        });
    }
    let width_plot = PathBuf::from(format!("{}-width.svg", args.plot_prefix));
    let frontier_plot = PathBuf::from(format!("{}-frontier.svg", args.plot_prefix));
    for path in [&width_plot, &frontier_plot] {
        crate::check_output("repro sparse-parity", "--plot-prefix", path)?;
    }
    let gpu = Gpu::new()?;
    let n = args.n.unwrap_or(if args.quick { 20 } else { 50 });
    let config = ParityConfig {
        n,
        k: args.k,
        seeds: args.seeds.unwrap_or(if args.quick { 4 } else { 32 }),
        lr: args.lr,
        batch: args.batch,
        weight_decay: args.weight_decay,
        max_steps: args
            .max_steps
            .unwrap_or(if args.quick { 4000 } else { 100_000 }),
        eval_every: if args.quick { 100 } else { 500 },
        test_size: if args.quick { 1000 } else { 2000 },
    };
    let widths = args.widths.clone().unwrap_or_else(|| {
        if args.quick {
            vec![16, 64, 256]
        } else {
            vec![10, 100, 1000, 10_000]
        }
    });
    let sizes = args.train_sizes.clone().unwrap_or_else(|| {
        if args.quick {
            vec![250, 1000]
        } else {
            vec![250, 1000, 10_000]
        }
    });
    let sparse = ParityInit::Sparse {
        inputs: args.sparse_inputs.unwrap_or((n / 5).max(args.k + 1).min(n)),
    };
    let data: Vec<Option<usize>> = std::iter::once(None)
        .chain(sizes.iter().map(|&s| Some(s)))
        .collect();
    let mut cells = Vec::new();
    for &train_size in &data {
        for init in [ParityInit::Dense, sparse] {
            for &width in &widths {
                cells.push(ParityCell {
                    width,
                    init,
                    train_size,
                });
            }
        }
    }
    eprintln!(
        "sparse parity n={} k={}: {} cells of {} networks on {}",
        config.n,
        config.k,
        cells.len(),
        config.seeds,
        gpu.summary().adapter
    );
    // Every cell's settings and sizes before the first (long) one runs.
    for cell in &cells {
        sparse_parity::check_cell(&gpu, &config, cell)?;
    }
    let mut results = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let start = std::time::Instant::now();
        // Every cell starts from seed 0: network j of any cell draws its task (and training
        // set) from seed j, so all cells see the same tasks and dense against sparse is a
        // paired comparison, and no two networks of a cell share a stream.
        let r = sparse_parity::run_cell(&gpu, &config, cell, 0)?;
        eprintln!(
            "[{}/{}] {cell:?}: {}/{} succeeded, median steps {:?} ({:.1} s)",
            i + 1,
            cells.len(),
            r.successes,
            r.total,
            r.median_steps,
            start.elapsed().as_secs_f64()
        );
        results.push(r);
    }
    plot_parity(&width_plot, &frontier_plot, &results, &widths)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "config": config, "results": results, "plots": [width_plot, frontier_plot] })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "success = test accuracy >= {} on fresh samples, checked every {} steps; {} networks per cell, \
         network j of every cell on the same task; 95% Clopper-Pearson intervals; censored = still \
         below at the cap of {} steps; median steps over all networks (censored ones beyond the cap), \
         '>cap' when half or more are censored",
        sparse_parity::SUCCESS_ACCURACY,
        config.eval_every,
        config.seeds,
        config.max_steps
    );
    println!(
        "{:<18} {:>8} {:>10} {:>9} {:>15} {:>9} {:>13}",
        "init", "width", "data", "success", "95% interval", "censored", "median steps"
    );
    let init_name = |init: ParityInit| match init {
        ParityInit::Dense => "dense".to_string(),
        ParityInit::Sparse { inputs } => format!("sparse ({inputs} inputs)"),
    };
    let data_name = |size: Option<usize>| {
        size.map(|s| s.to_string())
            .unwrap_or_else(|| "online".into())
    };
    for r in &results {
        let steps = r
            .median_steps
            .map(|s| s.to_string())
            .unwrap_or_else(|| ">cap".into());
        println!(
            "{:<18} {:>8} {:>10} {:>9} {:>15} {:>9} {steps:>13}",
            init_name(r.cell.init),
            r.cell.width,
            data_name(r.cell.train_size),
            format!("{}/{}", r.successes, r.total),
            format!("{:.2}-{:.2}", r.success_interval.0, r.success_interval.1),
            r.censored
        );
    }
    // The same tasks in both cells of a pair: only the tasks where exactly one initialisation
    // succeeded say which is better.
    println!();
    println!("paired by task: sparse against dense at each width and data");
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>12}",
        "width", "data", "sparse only", "dense only", "sign test p"
    );
    for dense in results
        .iter()
        .filter(|r| matches!(r.cell.init, ParityInit::Dense))
    {
        let Some(sparse) = results.iter().find(|r| {
            matches!(r.cell.init, ParityInit::Sparse { .. })
                && r.cell.width == dense.cell.width
                && r.cell.train_size == dense.cell.train_size
        }) else {
            continue;
        };
        let only = |a: &ParityResult, b: &ParityResult| {
            a.steps
                .iter()
                .zip(&b.steps)
                .filter(|(x, y)| x.is_some() && y.is_none())
                .count()
        };
        let (sparse_only, dense_only) = (only(sparse, dense), only(dense, sparse));
        println!(
            "{:>8} {:>10} {sparse_only:>12} {dense_only:>12} {:>12.3}",
            dense.cell.width,
            data_name(dense.cell.train_size),
            sparse_parity::sign_test(sparse_only, dense_only)
        );
    }
    eprintln!(
        "wrote {} and {}",
        width_plot.display(),
        frontier_plot.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Success rate against width (online data) for each initialisation with its 95% interval
/// (dashed), and the data-against-width
/// frontier (success rate per training-set size and width, sparse initialisation) as a heat map.
fn plot_parity(
    width_plot: &std::path::Path,
    frontier_plot: &std::path::Path,
    results: &[ParityResult],
    widths: &[usize],
) -> Result<()> {
    let mut series = Vec::new();
    for init_name in ["dense", "sparse"] {
        let points = results
            .iter()
            .filter(|r| {
                r.cell.train_size.is_none()
                    && matches!(
                        (init_name, r.cell.init),
                        ("dense", ParityInit::Dense) | ("sparse", ParityInit::Sparse { .. })
                    )
            })
            .collect::<Vec<_>>();
        let line = |f: &dyn Fn(&ParityResult) -> f64| {
            points
                .iter()
                .map(|r| ((r.cell.width as f64).log10(), f(r)))
                .collect()
        };
        series.push(Series {
            label: format!("{init_name} init, online"),
            points: line(&|r| r.success_rate),
            dashed: false,
        });
        series.push(Series {
            label: format!("{init_name}: 95% interval, low"),
            points: line(&|r| r.success_interval.0),
            dashed: true,
        });
        series.push(Series {
            label: format!("{init_name}: 95% interval, high"),
            points: line(&|r| r.success_interval.1),
            dashed: true,
        });
    }
    plot::lines(
        width_plot,
        "sparse parity: success rate against width",
        "log10 width",
        "success rate",
        &series,
    )?;
    let mut sizes: Vec<usize> = results.iter().filter_map(|r| r.cell.train_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let grid: Vec<Vec<Option<f64>>> = sizes
        .iter()
        .map(|&size| {
            widths
                .iter()
                .map(|&w| {
                    results
                        .iter()
                        .find(|r| {
                            r.cell.train_size == Some(size)
                                && r.cell.width == w
                                && matches!(r.cell.init, ParityInit::Sparse { .. })
                        })
                        .map(|r| r.success_rate.max(0.001))
                })
                .collect()
        })
        .collect();
    plot::heatmap(
        frontier_plot,
        "success rate (sparse init) by training-set size and width",
        "width",
        "training set",
        widths,
        &sizes,
        &grid,
        "",
    )
}
