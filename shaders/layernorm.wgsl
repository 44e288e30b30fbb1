// Row-wise layer normalisation, one workgroup per row:
// y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), var the biased variance.
// The mean and rstd of each row are written too, for the backward pass. The variance is taken
// as the mean of squared deviations (two passes), and both passes work on x - x[0], the row's
// first element as a pivot: a row like 1e4 + N(0, 1e-2) is summed without the rounding of
// partial sums near n * 1e4, whose error in the mean (2e-4 there, a few percent of the spread)
// went into the variance and shifted every output (by 0.02 for a constant row of 1000.1).
// x - x[0] is exact for elements within a factor 2 of the pivot. AFFINE false skips gamma and
// beta. Concatenated after workgroup_reduce.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;

@compute @workgroup_size(256)
fn layernorm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    let inv_n = 1.0 / f32(params.cols);
    let pivot = src[base];
    var s = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        s += src[base + j] - pivot;
    }
    // The mean less the pivot.
    let shift = workgroup_reduce(0u, s, lid) * inv_n;
    var q = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        let d = (src[base + j] - pivot) - shift;
        q += d * d;
    }
    let rstd = inverseSqrt(workgroup_reduce(0u, q, lid) * inv_n + params.eps);
    for (var j = lid; j < params.cols; j += 256u) {
        var v = ((src[base + j] - pivot) - shift) * rstd;
        if (AFFINE) {
            v = v * gamma[j] + beta[j];
        }
        out[base + j] = v;
    }
    if (lid == 0u) {
        mean_out[row] = pivot + shift;
        rstd_out[row] = rstd;
    }
}
