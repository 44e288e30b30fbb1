// Splits an f32 operand of the split-precision product (matmul_coop.wgsl) into two f16 halves:
//   s * x = hi + lo,  hi = f16(s * x),  lo = f16(s * x - hi),
// with one power of two s per operand that brings its largest magnitude into [2^14, 2^15):
// hi then never overflows f16, and lo stays a normal f16 for every element within 2^-17 of the
// largest, so hi + lo carries about 22 bits of each element (f32 has 24). The product kernel
// multiplies by 1 / s again after accumulating.
//
// Two entries. max_abs_partials: GROUPS workgroups each reduce a grid-stride share of |x| to
// partials[group]. split_halves: every workgroup reduces the GROUPS partials itself (no third
// pass), derives s, and writes each matrix of the batch padded with zeros to
// [rows_pad, cols_pad], the highs at halves[0 ..] and the lows at halves[lows ..]; workgroup 0
// also stores -log2(s) at partials[GROUPS] for the product kernel.
//
// Constant defined by the launcher: GROUPS (= WG_REDUCE, 256). Concatenated after
// workgroup_reduce.wgsl, behind `enable f16;`.

struct Params {
    rows: u32,
    cols: u32,
    rows_pad: u32,
    cols_pad: u32,
    count: u32,
    padded_count: u32,
    lows: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> halves: array<f16>;

@compute @workgroup_size(256)
fn max_abs_partials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Non-finite elements stay out of the scale (they stay non-finite in their own halves), so
    // that one inf spoils only the outputs it touches, as in an f32 product.
    var m = 0.0;
    for (var i = wg.x * 256u + lid; i < params.count; i += GROUPS * 256u) {
        let v = abs(x[i]);
        if (v <= F32_MAX) {
            m = max(m, v);
        }
    }
    let total = workgroup_reduce(1u, m, lid);
    if (lid == 0u) {
        partials[wg.x] = total;
    }
}

const F32_MAX: f32 = 3.40282347e38;
// Exponents of s: 2^e and 2^-e stay finite and normal within these.
const MAX_SCALE_EXP: i32 = 126;
const MIN_SCALE_EXP: i32 = -126;

@compute @workgroup_size(256)
fn split_halves(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let largest = workgroup_reduce(1u, partials[lid], lid);
    // largest = f * 2^e with f in [0.5, 1); s = 2^(15 - e) puts it in [2^14, 2^15). An operand of
    // zeros keeps s = 2^15. A non-finite element stays non-finite in its halves (lo = inf - inf
    // is NaN), so the outputs it touches are non-finite, as in an f32 product. The product
    // kernel undoes s by its exponent, stored as an f32.
    let e = clamp(15 - frexp(largest).exp, MIN_SCALE_EXP, MAX_SCALE_EXP);
    let scale = ldexp(1.0, e);
    if (wg.x == 0u && lid == 0u) {
        partials[GROUPS] = f32(-e);
    }
    let per_matrix = params.rows_pad * params.cols_pad;
    let stride = groups.x * 256u;
    for (var i = wg.x * 256u + lid; i < params.padded_count; i += stride) {
        let matrix = i / per_matrix;
        let within = i % per_matrix;
        let r = within / params.cols_pad;
        let c = within % params.cols_pad;
        var v = 0.0;
        if (r < params.rows && c < params.cols) {
            v = scale * x[(matrix * params.rows + r) * params.cols + c];
        }
        let hi = f16(v);
        halves[i] = hi;
        halves[params.lows + i] = f16(v - f32(hi));
    }
}
