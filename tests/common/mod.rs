//! Shared by the integration tests: one device per shader mode, seeded random inputs, and the
//! comparison with the oracles.

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;

use percept::{Gpu, GpuOptions, Tuning};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn open(checked: bool) -> Gpu {
    open_with(GpuOptions {
        checked: Some(checked),
        // Every tile gives the same bits; tests/tuning.rs covers choosing one by measurement.
        tuning: Some(Tuning::Off),
        // Whatever PERCEPT_PROFILE says; tests/profile.rs covers profiling.
        profile: Some(false),
        ..Default::default()
    })
}

/// A device of the test's own, with `options`.
pub fn open_with(options: GpuOptions) -> Gpu {
    Gpu::with_options(options).unwrap_or_else(|e| {
        panic!(
            "the tests need a GPU adapter and found none: {e}\n\
             (on a machine without a GPU: `apt-get install -y mesa-vulkan-drivers` and run with \
             WGPU_BACKEND=vulkan, as .ci/run does)"
        )
    })
}

/// The device with runtime-unchecked shader modules (the fast default).
pub fn unchecked() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| open(false))
}

/// The device with bounds-checked shader modules (`PERCEPT_CHECKED=1`).
pub fn checked() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| open(true))
}

/// Both modes: every kernel test runs on each.
pub fn both() -> [&'static Gpu; 2] {
    [unchecked(), checked()]
}

/// Uniform values in [lo, hi), never all zero, from a seed.
pub fn random(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Asserts `max_rel_err(got, want) <= tol`, naming the case.
#[track_caller]
pub fn assert_close(case: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    let err = percept::reference::max_rel_err(got, want);
    assert!(err <= tol, "{case}: max_rel_err {err:.3e} > {tol:.0e}");
}
