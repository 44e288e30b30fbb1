//! The `percept` command line: thin; parses, calls the library, prints.

use std::process::ExitCode;

use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use percept::{Gpu, Result};

mod bench;
mod repro;
mod train;

use bench::{BenchArgs, run_bench};
use repro::{Repro, run_repro};
use train::{EvalArgs, TrainArgs, run_eval, run_train};

#[derive(Parser)]
#[command(
    name = "percept",
    version,
    about = "A GPU compute engine for MLP-family models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the adapter, its features and limits.
    Info {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Time kernels, check their results against the f64 oracles, and print rates.
    Bench(BenchArgs),
    /// Train an MLP classifier (default: the shipped UCI digits), with checkpoints, metrics
    /// and a plot.
    Train(Box<TrainArgs>),
    /// Evaluate a checkpoint's network on a data set.
    Eval(EvalArgs),
    /// Reproduce a paper's experiment.
    #[command(subcommand)]
    Repro(Repro),
}

fn main() -> ExitCode {
    // percept's warnings by default (a tuning file that cannot be written, a kernel variant
    // passed over because its output disagreed), wgpu's errors only (it warns at length about
    // downlevel adapters); RUST_LOG chooses otherwise.
    let filter = "warn,wgpu_core=error,wgpu_hal=error,naga=error";
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter)).init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Info { json } => info(json),
        Command::Bench(args) => run_bench(args),
        Command::Train(mut args) => {
            let train = Cli::command().find_subcommand("train").cloned();
            args.given = given(matches.subcommand_matches("train"), train.as_ref());
            run_train(*args)
        }
        Command::Eval(args) => run_eval(args),
        Command::Repro(repro) => run_repro(repro),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The flags given on the command line (not defaulted), by their ids (`step_epochs`): not the
/// argument groups clap also lists (a flattened struct's, `DataArgs`), which are no flags.
fn given(matches: Option<&ArgMatches>, command: Option<&clap::Command>) -> Vec<String> {
    let (Some(matches), Some(command)) = (matches, command) else {
        return Vec::new();
    };
    let is_group = |id: &str| command.get_groups().any(|g| g.get_id() == id);
    matches
        .ids()
        .filter(|id| !is_group(id.as_str()))
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

/// Checks, before any work, that `path` (given as `flag`) can be written as a file: not a
/// directory, in a directory that exists. The write itself comes after the run.
pub(crate) fn check_output(op: &'static str, flag: &str, path: &Path) -> Result<()> {
    let bad = |detail: String| Err(percept::Error::InvalidArgument { op, detail });
    if path.as_os_str().is_empty() {
        return bad(format!("{flag} is empty; give a file path"));
    }
    if path.is_dir() {
        return bad(format!(
            "{flag} {} is a directory; give a file path, e.g. {}",
            path.display(),
            path.join("out").display()
        ));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => bad(format!(
            "{flag} {}: the directory {} does not exist; create it (mkdir -p {}) or give \
             another path",
            path.display(),
            dir.display(),
            dir.display()
        )),
        _ => Ok(()),
    }
}

fn info(json: bool) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let features: Vec<&str> = gpu
        .device()
        .features()
        .iter_names()
        .map(|(name, _)| name)
        .collect();
    if json {
        let mut object = serde_json::to_value(gpu.summary()).expect("summary serialises");
        object["features"] = serde_json::json!(features);
        object["capabilities"] = serde_json::to_value(gpu.capabilities()).expect("serialises");
        object["limits"] = serde_json::to_value(gpu.limits()).expect("limits serialise");
        object["checked"] = serde_json::json!(gpu.checked());
        object["tuning"] = serde_json::json!({
            "on": gpu.tuning(),
            "file": gpu.tuning_file(),
            "choices": gpu.tuned_choices(),
        });
        println!("{}", serde_json::to_string_pretty(&object).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    let s = gpu.summary();
    println!("adapter      {}", s.adapter);
    println!("backend      {}", s.backend);
    println!("device type  {}", s.device_type);
    println!("driver       {} {}", s.driver, s.driver_info);
    println!("checked      {}", gpu.checked());
    println!("features     {}", features.join(", "));
    let c = gpu.capabilities();
    println!(
        "subgroups    {} (size {}..{})",
        c.subgroups, c.min_subgroup_size, c.max_subgroup_size
    );
    match percept::ops::Precision::SplitF16.available(&gpu) {
        Ok(()) => println!("split-f16    available (matmul on tensor cores)"),
        Err(e) => println!("split-f16    unavailable: {e}"),
    }
    println!("limits");
    println!("  max_buffer_size                    {}", c.max_buffer_size);
    println!(
        "  max_storage_buffer_binding_size    {}",
        c.max_storage_buffer_binding_size
    );
    println!(
        "  max_compute_workgroup_storage_size {}",
        c.max_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_wg     {}",
        c.max_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroups_per_dim     {}",
        c.max_workgroups_per_dimension
    );
    println!(
        "  max_storage_buffers_per_stage      {}",
        c.max_storage_buffers_per_stage
    );
    match c.max_loop_iterations {
        Some(n) => {
            println!("  loop iterations per invocation     {n} (the driver ends loops past it)")
        }
        None => println!("  loop iterations per invocation     no limit known"),
    }
    match (gpu.tuning(), gpu.tuning_file()) {
        (false, _) => println!("tuning       off (PERCEPT_TUNING=off)"),
        (true, None) => println!("tuning       in memory"),
        (true, Some(file)) => println!("tuning       {}", file.display()),
    }
    for (bucket, choice) in gpu.tuned_choices() {
        println!("  {bucket:<48} {choice}");
    }
    Ok(ExitCode::SUCCESS)
}
