//! `percept bench`: runs the benchmark families and prints their records.

use std::process::ExitCode;

use clap::ValueEnum;
use percept::bench::{self, BenchConfig, BenchRecord};
use percept::{Gpu, Result};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Family {
    All,
    Matmul,
    Fft,
    MlpStep,
}

pub fn run_bench(
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
    if matches!(family, Family::All | Family::Fft) {
        let cases = bench::fft_cases(quick);
        for (i, case) in cases.iter().enumerate() {
            eprintln!(
                "[{}/{}] fft {:?} {} x {}",
                i + 1,
                cases.len(),
                case.kind,
                case.batch,
                case.n
            );
            records.push(bench::run_fft(&gpu, case, &config)?);
        }
    }
    if matches!(family, Family::All | Family::MlpStep) {
        let cases = bench::mlp_step_cases(quick);
        for (i, case) in cases.iter().enumerate() {
            eprintln!("[{}/{}] mlp-step {:?}", i + 1, cases.len(), case);
            records.push(bench::run_mlp_step(&gpu, case, &config)?);
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
