//! The `percept` command line: thin; parses, calls the library, prints.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    env_logger::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { json } => info(json),
        Command::Bench(args) => run_bench(args),
        Command::Train(args) => run_train(*args),
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
