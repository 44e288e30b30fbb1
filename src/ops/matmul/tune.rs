//! Choosing a matmul tile by measurement ([`crate::Gpu::tune`]): which tile is fastest depends on
//! the adapter (compute units, registers, workgroup memory) in ways no fixed rule captures: on
//! lavapipe the 128 x 64 tiles beat the rule's choice by up to 1.8x, and on a large GPU
//! mid-sized products want more, smaller blocks than the rule gives.

use super::{MatmulSpec, Problem, Tile, record, rule_tile};
use crate::error::Result;
use crate::tensor::Tensor;

/// Products smaller than this (a 100^3 product) take the rule's tile: on a GPU launch overhead
/// hides the tile's effect, and on lavapipe a layer of the digits MLP would spend longer being
/// measured than it ever runs. From 128^3 on, lavapipe's tiles already differ by 1.8x.
const MIN_TUNED_FLOPS: f64 = (1u64 << 21) as f64;

/// Powers of two from here up name a bucket; smaller sizes share the smallest.
const MIN_BUCKET: usize = 16;

/// The tile for `problem`: the bucket's tuned choice, measured on these operands (writing `c`)
/// if the bucket is new, or the rule's where tuning is off or the product is small.
pub(super) fn choose(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    problem: &Problem,
) -> Result<Tile> {
    let rule = rule_tile(problem.m, problem.n, problem.batch);
    if problem.flops() < MIN_TUNED_FLOPS {
        return Ok(rule);
    }
    let mut candidates = vec![rule];
    candidates.extend(Tile::ALL.into_iter().filter(|&t| t != rule));
    a.gpu()
        .tune(bucket_key(spec, problem), &candidates, Tile::name, |tile| {
            record(a, b, spec, c, problem, tile)
        })
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
