//! Choosing a matmul tile by measurement ([`crate::Gpu::tune`]): which tile is fastest depends on
//! the adapter (compute units, registers, workgroup memory) in ways no fixed rule captures: on
//! lavapipe the 128 x 64 tiles beat the rule's choice by up to 1.8x, and on a large GPU
//! mid-sized products want more, smaller blocks than the rule gives.

use super::coop::{self, CoopKernel};
use super::{MatmulKernel, MatmulSpec, Problem, Tile, record, rule_tile, within_loop_limit};
use crate::error::Result;
use crate::tensor::Tensor;

/// Products smaller than this (a 100^3 product) take the rule's tile: on a GPU launch overhead
/// hides the tile's effect, and on lavapipe a layer of the digits MLP would spend longer being
/// measured than it ever runs. From 128^3 on, lavapipe's tiles already differ by 1.8x.
const MIN_TUNED_FLOPS: f64 = (1u64 << 21) as f64;

/// Powers of two from here up name a bucket; smaller sizes share the smallest.
const MIN_BUCKET: usize = 16;

/// Parts of K the tuner tries, with the large tile.
const SPLITS: [u32; 2] = [2, 4];

/// A split is tried while the large tile's blocks times the parts stay within this: beyond it
/// the unsplit blocks already fill the largest GPUs several times over.
const MAX_SPLIT_BLOCKS: usize = 512;

/// ... and while each part keeps at least this much of K, so that a part's sums outweigh the
/// partial outputs it writes and the sum reads.
const MIN_PART_K: usize = 256;

/// The kernel for `problem`: the bucket's tuned choice, measured on these operands (writing
/// `c`) if the bucket is new, or the rule's where tuning is off or the product is small.
pub(super) fn choose(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    problem: &Problem,
) -> Result<MatmulKernel> {
    // Most products in a small model's step land here: no candidate list, no bucket key.
    if problem.flops() < MIN_TUNED_FLOPS {
        return Ok(rule_tile(problem.m, problem.n, problem.batch).into());
    }
    let candidates = runnable_candidates(a.gpu(), problem)?;
    a.gpu().tune(
        bucket_key(spec, problem),
        &candidates,
        MatmulKernel::name,
        |kernel| record(a, b, spec, c, problem, kernel).map(|()| c.clone()),
    )
}

/// The split-precision kernel for `problem`, chosen as [`choose`] chooses an f32 one, among
/// the kernels that fit the adapter (the caller has checked that one does: `available`).
pub(super) fn choose_split_f16(
    a: &Tensor,
    b: &Tensor,
    spec: &MatmulSpec<'_>,
    c: &Tensor,
    problem: &Problem,
) -> Result<CoopKernel> {
    let mut fitting = coop::fitting_kernels(a.gpu());
    if problem.flops() < MIN_TUNED_FLOPS {
        return Ok(fitting
            .next()
            .expect("Precision::available found a kernel that fits"));
    }
    let candidates: Vec<CoopKernel> = fitting.collect();
    a.gpu().tune(
        split_f16_key(spec, problem),
        &candidates,
        CoopKernel::name,
        |kernel| coop::record(a, b, spec, c, problem, kernel).map(|()| c.clone()),
    )
}

/// [`candidates`] as they run on `gpu`: with K split further where the adapter limits loops
/// (see [`within_loop_limit`]), so that what tuning times is what runs, and without the repeats
/// that makes.
pub(crate) fn runnable_candidates(gpu: &crate::Gpu, p: &Problem) -> Result<Vec<MatmulKernel>> {
    let mut runnable = Vec::new();
    for kernel in candidates(p) {
        let kernel = within_loop_limit(gpu, kernel, p)?;
        if !runnable.contains(&kernel) {
            runnable.push(kernel);
        }
    }
    Ok(runnable)
}

/// The kernels tuning times for `problem`, the rule's first: every tile, then the large tile
/// with K split where the bucket's outputs are few and its K long. Which splits are candidates
/// depends on the bucket alone, so that a kernel kept for the bucket is a candidate for every
/// product in it.
fn candidates(p: &Problem) -> Vec<MatmulKernel> {
    let rule = rule_tile(p.m, p.n, p.batch);
    let mut kernels = vec![MatmulKernel::from(rule)];
    kernels.extend(
        Tile::ALL
            .into_iter()
            .filter(|&t| t != rule)
            .map(MatmulKernel::from),
    );
    let b = Bucket::of(p);
    let blocks = b.m.div_ceil(128) * b.n.div_ceil(128) * b.batch;
    kernels.extend(
        SPLITS
            .into_iter()
            .filter(|&parts| {
                blocks * parts as usize <= MAX_SPLIT_BLOCKS && b.k / parts as usize >= MIN_PART_K
            })
            .map(|split_k| MatmulKernel {
                tile: Tile::Large,
                split_k,
            }),
    );
    kernels
}

/// The bucket of a split-precision product: the sizes and transposes, and whether B comes
/// already split (the product then makes two passes fewer).
fn split_f16_key(spec: &MatmulSpec<'_>, p: &Problem) -> String {
    let b = Bucket::of(p);
    let layout = |transposed: bool| if transposed { "t" } else { "n" };
    format!(
        "matmul split_f16 m{} n{} k{} batch{} a{} b{}{}",
        b.m,
        b.n,
        b.k,
        b.batch,
        layout(spec.trans_a),
        layout(spec.trans_b),
        if spec.split_b.is_some() {
            " presplit"
        } else {
            ""
        }
    )
}

/// A product's sizes rounded up to powers of two.
struct Bucket {
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
}

impl Bucket {
    fn of(p: &Problem) -> Bucket {
        let round = |x: usize| x.max(MIN_BUCKET).next_power_of_two();
        Bucket {
            m: round(p.m),
            n: round(p.n),
            k: round(p.k),
            batch: p.batch.next_power_of_two(),
        }
    }
}

/// The bucket: sizes rounded up to powers of two, the transposes and the vector loads (which
/// change the kernel). Bias, addend and activation only touch the epilogue and share buckets.
fn bucket_key(spec: &MatmulSpec<'_>, p: &Problem) -> String {
    let layout = |transposed: bool, vec4: bool| {
        format!(
            "{}{}",
            if transposed { "t" } else { "n" },
            if vec4 { "4" } else { "1" }
        )
    };
    let b = Bucket::of(p);
    format!(
        "matmul m{} n{} k{} batch{} a{} b{}",
        b.m,
        b.n,
        b.k,
        b.batch,
        layout(spec.trans_a, p.vec_a),
        layout(spec.trans_b, p.vec_b)
    )
}
