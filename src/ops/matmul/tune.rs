//! Choosing a matmul tile by measurement: the first product in a shape bucket times every tile
//! on the caller's own operands and the device remembers the fastest for the bucket (in the
//! tuning file, so later processes start tuned). Which tile wins depends on the adapter (compute
//! units, registers, workgroup memory) in ways no fixed rule captures: on lavapipe the 128 x 64
//! tiles beat the rule's choice by up to 1.8x, and on a large GPU mid-sized products want more,
//! smaller blocks than the rule gives.

use std::time::Duration;

use super::{MatmulSpec, Problem, Tile, record, rule_tile};
use crate::error::Result;
use crate::tensor::Tensor;

/// Products smaller than this (a 100^3 product) take the rule's tile: on a GPU launch overhead
/// hides the tile's effect, and on lavapipe a layer of the digits MLP would spend longer being
/// measured than it ever runs. From 128^3 on, lavapipe's tiles already differ by 1.8x.
const MIN_TUNED_FLOPS: f64 = (1u64 << 21) as f64;

/// Timed runs per tile; the fastest counts (the minimum is what the tile can do, noise only
/// adds to it).
const SAMPLES: usize = 3;

/// A tile stops being sampled once its runs have taken this long (slow software adapters) ...
const SAMPLE_BUDGET: Duration = Duration::from_millis(250);

/// ... or once one run is this many times slower than the best tile so far.
const HOPELESS: f64 = 1.5;

/// Powers of two from here up name a bucket; smaller sizes share the smallest.
const MIN_BUCKET: usize = 16;

/// The tile for `problem`: the bucket's tuned choice, measured now if the bucket is new, or
/// the rule's where tuning is off or the product is small.
pub(super) fn choose(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    problem: &Problem,
) -> Result<Tile> {
    let gpu = a.gpu();
    let rule = rule_tile(problem.m, problem.n, problem.batch);
    if !gpu.tuning() || problem.flops() < MIN_TUNED_FLOPS {
        return Ok(rule);
    }
    let key = bucket_key(spec, problem);
    if let Some(tile) = gpu.tuned(&key).and_then(|name| Tile::from_name(&name)) {
        return Ok(tile);
    }
    // Work recorded before this product must not run inside the timings.
    gpu.synchronize()?;
    let mut best = (rule, time_tile(a, b, spec, c, problem, rule, None)?);
    for tile in Tile::ALL.into_iter().filter(|&t| t != rule) {
        let elapsed = time_tile(a, b, spec, c, problem, tile, Some(best.1))?;
        if elapsed < best.1 {
            best = (tile, elapsed);
        }
    }
    gpu.remember_tuned(key, best.0.name().to_string());
    Ok(best.0)
}

/// The bucket: sizes rounded up to powers of two, the transposes and the vector loads (which
/// change the kernel). Bias, addend and activation only touch the epilogue and share buckets.
fn bucket_key(spec: &MatmulSpec<'_>, p: &Problem) -> String {
    let bucket = |x: usize| x.max(MIN_BUCKET).next_power_of_two();
    let layout = |transposed: bool, vec4: bool| {
        format!(
            "{}{}",
            if transposed { "t" } else { "n" },
            if vec4 { "4" } else { "1" }
        )
    };
    format!(
        "matmul m{} n{} k{} batch{} a{} b{}",
        bucket(p.m),
        bucket(p.n),
        bucket(p.k),
        p.batch.next_power_of_two(),
        layout(spec.trans_a, p.vec_a),
        layout(spec.trans_b, p.vec_b)
    )
}

/// The fastest of up to [`SAMPLES`] runs of `tile`, after one untimed run that compiles it.
/// Runs write `c`, which the caller's product overwrites afterwards.
fn time_tile(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    problem: &Problem,
    tile: Tile,
    best_so_far: Option<Duration>,
) -> Result<Duration> {
    let gpu = a.gpu();
    record(a, b, spec, c, problem, tile)?;
    gpu.synchronize()?;
    let mut fastest = Duration::MAX;
    let mut spent = Duration::ZERO;
    for _ in 0..SAMPLES {
        let ((), timing) = gpu.time(|| record(a, b, spec, c, problem, tile))?;
        fastest = fastest.min(timing.elapsed);
        spent += timing.elapsed;
        let hopeless =
            best_so_far.is_some_and(|best| fastest.as_secs_f64() > HOPELESS * best.as_secs_f64());
        if spent > SAMPLE_BUDGET || hopeless {
            break;
        }
    }
    log::debug!("matmul tile {tile:?}: {fastest:?}");
    Ok(fastest)
}
