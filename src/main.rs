//! The `percept` command line: thin; parses, calls the library, prints.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use percept::bench::{self, BenchConfig, BenchRecord};
use percept::{Gpu, Result};

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
    Bench {
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
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Family {
    All,
    Matmul,
}

fn main() -> ExitCode {
    env_logger::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { json } => info(json),
        Command::Bench {
            family,
            sizes,
            quick,
            json,
        } => run_bench(family, sizes, quick, json),
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
    Ok(ExitCode::SUCCESS)
}

fn run_bench(
    family: Family,
    sizes: Option<Vec<usize>>,
    quick: bool,
    json: bool,
) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let software = gpu.summary().device_type == "cpu";
    let quick = quick || software;
    if software {
        eprintln!(
            "note: {} is a CPU adapter; running the --quick sizes",
            gpu.summary().adapter
        );
    }
    let config = if quick {
        BenchConfig::quick()
    } else {
        BenchConfig::full()
    };
    let mut records: Vec<BenchRecord> = Vec::new();
    if matches!(family, Family::All | Family::Matmul) {
        let default_sizes: &[usize] = if quick {
            &[64, 128, 256]
        } else {
            &[256, 1024, 2048, 4096]
        };
        let sizes = sizes.unwrap_or_else(|| default_sizes.to_vec());
        if let Some(bad) = sizes.iter().find(|&&s| s == 0) {
            return Err(percept::Error::InvalidArgument {
                op: "bench matmul",
                detail: format!("size {bad} is not a matrix size; give sizes of at least 1"),
            });
        }
        let cases = bench::matmul_cases(&sizes, quick);
        for (i, case) in cases.iter().enumerate() {
            eprintln!(
                "[{}/{}] matmul {} {}x{}x{}",
                i + 1,
                cases.len(),
                case.kind,
                case.m,
                case.n,
                case.k
            );
            records.push(bench::run_matmul(&gpu, case, &config)?);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).expect("records serialise")
        );
    } else {
        print_table(&gpu, &records);
    }
    let failed: Vec<&BenchRecord> = records.iter().filter(|r| !r.ok).collect();
    for r in &failed {
        eprintln!(
            "error: {} {:?} max_rel_err {:.2e} exceeds {:.0e}",
            r.name,
            r.shape,
            r.max_rel_err,
            bench::MAX_REL_ERR
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
