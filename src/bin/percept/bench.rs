//! `percept bench`: runs the benchmark families and prints their records.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use percept::bench::{self, BenchConfig, BenchRecord, DeepPcrRecord, DeqSolveRecord};
use percept::{Gpu, GpuOptions, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    All,
    Matmul,
    Fft,
    MlpStep,
    Pcr,
    Deeppcr,
    Deq,
}

impl Family {
    /// The name the command line takes, e.g. `mlp-step`.
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// `percept bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which family to run.
    #[arg(value_enum, default_value_t = Family::All)]
    family: Family,
    /// Square matmul sizes (default 256,1024,2048,4096; with --quick, or on a CPU adapter,
    /// 64,128,256).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Small sizes and few samples: a smoke run, or a software adapter.
    #[arg(long)]
    quick: bool,
    /// A JSON array of records instead of a table.
    #[arg(long)]
    json: bool,
    /// With deeppcr: write the forward-speedup heat map (SVG) here.
    #[arg(long)]
    heatmap: Option<PathBuf>,
    /// Only the cases whose description (as the progress lines print it) contains this, e.g.
    /// "layers: 1024, width: 16".
    #[arg(long)]
    case: Option<String>,
    /// Print each case's GPU time per kernel to stderr (GPU timestamps around every dispatch;
    /// the host waits for each submission, so the cases' own timings run slower).
    #[arg(long)]
    profile: bool,
}

impl BenchArgs {
    fn wants(&self, family: Family) -> bool {
        self.family == Family::All || self.family == family
    }
}

/// Runs the cases of each family that `--case` selects.
struct Runner<'a> {
    gpu: &'a Gpu,
    filter: Option<&'a str>,
    /// With `--json`: each case's record also goes to stderr as one line when the case ends, so
    /// that a run killed part-way (a time limit) still leaves the finished ones.
    json: bool,
    /// Cases run so far, over all families.
    ran: usize,
}

impl Runner<'_> {
    /// Runs each selected case with a progress line on stderr, and its kernel times when the
    /// device profiles.
    fn run_cases<C: std::fmt::Debug, R: serde::Serialize>(
        &mut self,
        label: &str,
        cases: &[C],
        mut run: impl FnMut(&C) -> Result<R>,
    ) -> Result<Vec<R>> {
        let selected: Vec<&C> = cases
            .iter()
            .filter(|c| self.filter.is_none_or(|f| format!("{c:?}").contains(f)))
            .collect();
        let mut out = Vec::with_capacity(selected.len());
        for (i, case) in selected.iter().enumerate() {
            eprintln!("[{}/{}] {label} {case:?}", i + 1, selected.len());
            self.gpu.reset_kernel_times()?;
            let record = run(case)?;
            if self.json {
                let line = serde_json::to_string(&record).expect("records serialise");
                eprintln!("record {label}: {line}");
            }
            out.push(record);
            self.gpu.flush()?;
            if let Some(times) = self.gpu.kernel_times() {
                print_kernel_times(&times);
            }
        }
        self.ran += out.len();
        Ok(out)
    }
}

/// The profile of one case, on stderr: every kernel variant's share of the GPU time.
fn print_kernel_times(times: &[percept::KernelTime]) {
    let all: f64 = times.iter().map(|t| t.total.as_secs_f64()).sum();
    eprintln!(
        "  {:>6} {:>10} {:>7} {:>10}  kernel (GPU time per dispatch, warm-up and tuning included)",
        "share", "total ms", "calls", "mean us"
    );
    for t in times {
        let total = t.total.as_secs_f64();
        eprintln!(
            "  {:>5.1}% {:>10.3} {:>7} {:>10.2}  {}",
            100.0 * total / all.max(f64::MIN_POSITIVE),
            total * 1e3,
            t.calls,
            total * 1e6 / t.calls as f64,
            t.kernel
        );
    }
}

pub fn run_bench(args: BenchArgs) -> Result<ExitCode> {
    if let Some(path) = &args.heatmap {
        if !args.wants(Family::Deeppcr) {
            return Err(percept::Error::InvalidArgument {
                op: "bench",
                detail: format!(
                    "--heatmap plots the deeppcr family's speedups; the {} family has none \
                     (run `percept bench deeppcr --heatmap ...`)",
                    args.family.name()
                ),
            });
        }
        crate::check_output("bench", "--heatmap", path)?;
    }
    let gpu = Gpu::with_options(GpuOptions {
        profile: args.profile.then_some(true),
        ..Default::default()
    })?;
    let software = gpu.summary().device_type == "cpu";
    let quick = args.quick || software;
    if software {
        eprintln!(
            "note: {} is a CPU adapter; running the --quick sizes",
            gpu.summary().adapter
        );
    }
    if args.sizes.is_some() && !args.wants(Family::Matmul) {
        return Err(percept::Error::InvalidArgument {
            op: "bench",
            detail: format!(
                "--sizes sets matmul's sizes; the {} family has fixed cases (use --quick for \
                 smaller ones)",
                args.family.name()
            ),
        });
    }
    let config = if quick {
        BenchConfig::quick()
    } else {
        BenchConfig::full()
    };
    let mut runner = Runner {
        gpu: &gpu,
        filter: args.case.as_deref(),
        json: args.json,
        ran: 0,
    };
    let mut records: Vec<BenchRecord> = Vec::new();
    // Split-precision cases where the adapter has tensor cores.
    let split_f16_refusal = percept::ops::Precision::SplitF16.available(&gpu).err();
    let split_f16 = split_f16_refusal.is_none();
    if args.wants(Family::Matmul) {
        let default_sizes: &[usize] = if quick {
            &[64, 128, 256]
        } else {
            &[256, 1024, 2048, 4096]
        };
        let sizes = args.sizes.clone().unwrap_or_else(|| default_sizes.to_vec());
        let cases = bench::matmul_cases(&sizes, quick, split_f16);
        // All before the first runs, which can take minutes.
        for case in &cases {
            case.check()?;
        }
        records
            .extend(runner.run_cases("matmul", &cases, |c| bench::run_matmul(&gpu, c, &config))?);
    }
    if args.wants(Family::Fft) {
        let cases = bench::fft_cases(quick);
        records.extend(runner.run_cases("fft", &cases, |c| bench::run_fft(&gpu, c, &config))?);
    }
    if args.wants(Family::MlpStep) {
        let cases = bench::mlp_step_cases(quick);
        records.extend(runner.run_cases("mlp-step", &cases, |c| {
            bench::run_mlp_step(&gpu, c, &config)
        })?);
    }
    if args.wants(Family::Pcr) {
        let cases = bench::tridiagonal_cases(quick);
        records
            .extend(runner.run_cases("pcr", &cases, |c| bench::run_tridiagonal(&gpu, c, &config))?);
    }
    let mut deeppcr = Vec::new();
    if args.wants(Family::Deeppcr) {
        let cases = bench::deeppcr_cases(quick);
        deeppcr = runner.run_cases("deeppcr", &cases, |c| bench::run_deeppcr(&gpu, c, &config))?;
        match &args.heatmap {
            Some(_) if deeppcr.is_empty() && runner.ran > 0 => {
                return Err(percept::Error::InvalidArgument {
                    op: "bench",
                    detail: format!(
                        "--case {:?} selects no deeppcr case, so there is no heat map to write; \
                         drop --heatmap or choose a deeppcr case",
                        args.case.clone().unwrap_or_default()
                    ),
                });
            }
            Some(path) if !deeppcr.is_empty() => {
                write_heatmap(path, &deeppcr)?;
                eprintln!("wrote {}", path.display());
            }
            _ => {}
        }
    }
    let mut deq = Vec::new();
    if args.wants(Family::Deq) {
        let cases = bench::deq_cases(quick, split_f16);
        for (record, solves) in
            runner.run_cases("deq", &cases, |c| bench::run_deq(&gpu, c, &config))?
        {
            records.push(record);
            deq.extend(solves);
        }
    }
    if runner.ran == 0 {
        let absent = match split_f16_refusal {
            Some(e) => format!(" (there are no split-precision cases here: {e})"),
            None => String::new(),
        };
        return Err(percept::Error::InvalidArgument {
            op: "bench",
            detail: format!(
                "no case matches --case {:?}; the progress lines of a run without it show each \
                 case's description{absent}",
                args.case.unwrap_or_default()
            ),
        });
    }
    if args.json {
        let mut all: Vec<serde_json::Value> = records
            .iter()
            .map(|r| serde_json::to_value(r).expect("serialises"))
            .collect();
        all.extend(
            deeppcr
                .iter()
                .map(|r| serde_json::to_value(r).expect("serialises")),
        );
        all.extend(
            deq.iter()
                .map(|r| serde_json::to_value(r).expect("serialises")),
        );
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("records serialise")
        );
    } else {
        print_table(&gpu, &records);
        print_deeppcr(&deeppcr);
        print_deq(&deq);
    }
    let mut failed = 0;
    for r in records.iter().filter(|r| !r.ok) {
        eprintln!(
            "error: {} {:?} max_rel_err {:.2e} exceeds {:.0e}",
            r.name,
            r.shape,
            r.max_rel_err,
            bench::MAX_REL_ERR
        );
        failed += 1;
    }
    for r in deeppcr
        .iter()
        .filter(|r| !r.converged || r.max_rel_err > bench::MAX_REL_ERR)
    {
        eprintln!(
            "error: deeppcr {:?}: converged {}, max_rel_err {:.2e}",
            r.shape, r.converged, r.max_rel_err
        );
        failed += 1;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_heatmap(path: &std::path::Path, records: &[DeepPcrRecord]) -> Result<()> {
    let mut layers: Vec<usize> = records.iter().map(|r| r.shape[0]).collect();
    let mut widths: Vec<usize> = records.iter().map(|r| r.shape[1]).collect();
    layers.sort_unstable();
    layers.dedup();
    widths.sort_unstable();
    widths.dedup();
    let speedup = |l: usize, w: usize| {
        records
            .iter()
            .find(|r| r.shape[0] == l && r.shape[1] == w)
            .map(|r| r.rate)
    };
    let grid: Vec<Vec<Option<f64>>> = widths
        .iter()
        .map(|&w| layers.iter().map(|&l| speedup(l, w)).collect())
        .collect();
    percept::plot::heatmap(
        path,
        "DeepPCR forward speedup over the sequential chain",
        "layers L",
        "width w",
        &layers,
        &widths,
        &grid,
        "x",
    )
}

fn print_table(gpu: &Gpu, records: &[BenchRecord]) {
    let s = gpu.summary();
    println!(
        "adapter: {} ({}, {}), checked: {}",
        s.adapter,
        s.backend,
        s.driver_info,
        gpu.checked()
    );
    if records.is_empty() {
        return;
    }
    println!(
        "{:<16} {:<20} {:>10} {:>10} {:<8} {:>10} {:>18} variant",
        "name", "shape", "median_ms", "rate", "unit", "max_rel", "vs baseline"
    );
    for r in records {
        let shape = r
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let baseline = r
            .baseline
            .as_ref()
            .map(|b| format!("{:.2}x {}", b.speedup, b.name))
            .unwrap_or_default();
        println!(
            "{:<16} {:<20} {:>10.4} {:>10.4} {:<8} {:>10.2e} {:>18} {}",
            r.name, shape, r.median_ms, r.rate, r.unit, r.max_rel_err, baseline, r.variant
        );
    }
}

fn print_deeppcr(records: &[DeepPcrRecord]) {
    if records.is_empty() {
        return;
    }
    println!(
        "{:>6} {:>4} {:>6} {:>12} {:>12} {:>8} {:>12} {:>12} {:>8} {:>7} {:>14} {:>10} {:>14}",
        "L",
        "w",
        "batch",
        "seq fwd ms",
        "pcr fwd ms",
        "fwd x",
        "seq bwd ms",
        "pcr bwd ms",
        "bwd x",
        "newton",
        "steps vs L",
        "max_rel",
        "scan (chain); backward scan"
    );
    for r in records {
        println!(
            "{:>6} {:>4} {:>6} {:>12.3} {:>12.3} {:>8.2} {:>12.3} {:>12.3} {:>8.2} {:>7} {:>8} / {:<5} {:>10.2e} {:>9} ({}); {}",
            r.shape[0],
            r.shape[1],
            r.shape[2],
            r.sequential_forward_ms,
            r.median_ms,
            r.rate,
            r.sequential_backward_ms,
            r.deeppcr_backward_ms,
            r.backward_speedup,
            r.newton_iterations,
            r.sequential_steps,
            r.sequential_steps_baseline,
            r.max_rel_err,
            r.scan,
            r.scan_chain,
            r.backward_scan
        );
    }
}

fn print_deq(records: &[DeqSolveRecord]) {
    if records.is_empty() {
        return;
    }
    println!(
        "{:<24} {:>12} {:>6} {:>10} {:>12} {:>10} {:>12} {:>8}",
        "solver to rel 1e-4",
        "shape",
        "iters",
        "converged",
        "residual",
        "fallbacks",
        "median ms",
        "vs fp"
    );
    for r in records {
        println!(
            "{:<24} {:>12} {:>6} {:>10} {:>12.2e} {:>10} {:>12.3} {:>8.2}",
            r.method,
            format!("{:?}", r.shape),
            r.iterations,
            r.converged,
            r.max_residual,
            r.fallbacks,
            r.median_ms,
            r.speedup_vs_fixed_point
        );
    }
}
