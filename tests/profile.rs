//! Per-kernel GPU time: a profiled device times every dispatch and adds it to its kernel's
//! total, across submissions, until reset.

mod common;

use common::{open_with, random};
use percept::ops::{self, MatmulKernel, MatmulSpec, Tile};
use percept::{GpuOptions, Tensor, Tuning};

/// A profiling device, or `None` where the adapter has no timestamps (after checking that
/// opening one fails and says why).
fn profiling_device() -> Option<percept::Gpu> {
    let options = GpuOptions {
        profile: Some(true),
        tuning: Some(Tuning::Off),
        ..Default::default()
    };
    if common::unchecked().capabilities().timestamps {
        return Some(open_with(options));
    }
    let err = percept::Gpu::with_options(options).err().expect("refused");
    assert!(err.to_string().contains("needs GPU timestamps"), "{err}");
    None
}

#[test]
fn a_profiled_device_times_every_dispatch_by_kernel() {
    let Some(gpu) = profiling_device() else {
        return;
    };
    let a = Tensor::from_slice(&gpu, &random(1, 70 * 50, -1.0, 1.0), &[70, 50]).unwrap();
    let b = Tensor::from_slice(&gpu, &random(2, 50 * 30, -1.0, 1.0), &[50, 30]).unwrap();
    let split = MatmulSpec {
        kernel: Some(MatmulKernel {
            tile: Tile::Large,
            split_k: 2,
        }),
        ..Default::default()
    };
    for _ in 0..3 {
        ops::matmul(&a, &b, &split).unwrap();
    }
    // More dispatches than one submission holds.
    let runs = 2 * percept::gpu::MAX_DISPATCHES_PER_SUBMIT + 5;
    for _ in 0..runs {
        ops::scale(&a, 0.5).unwrap();
    }
    gpu.flush().unwrap();
    let times = gpu.kernel_times().expect("the device profiles");
    let find = |part: &str| {
        times
            .iter()
            .find(|t| t.kernel.contains(part))
            .unwrap_or_else(|| panic!("no {part} in {times:?}"))
    };
    let parts = find("matmul::matmul BM128 BN128");
    assert!(parts.kernel.contains("SPLIT2"), "{}", parts.kernel);
    assert_eq!(parts.calls, 3);
    assert!(parts.total.as_nanos() > 0, "{parts:?}");
    assert_eq!(find("matmul::matmul_split_sum").calls, 3);
    assert_eq!(find("elementwise::elementwise").calls, runs as u64);
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0].total >= w[1].total),
        "{times:?}"
    );

    gpu.reset_kernel_times().unwrap();
    assert_eq!(gpu.kernel_times(), Some(Vec::new()));
}

#[test]
fn an_unprofiled_device_keeps_no_kernel_times() {
    assert_eq!(common::unchecked().kernel_times(), None);
}
