// Row-wise layer normalisation, one workgroup per row:
// y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), var the biased variance.
// The mean and rstd of each row are written too, for the backward pass. The variance is taken
// as the mean of squared deviations (two passes), which stays accurate when |mean| >> std.
// AFFINE false skips gamma and beta. Concatenated after workgroup_reduce.wgsl.

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
    var s = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        s += src[base + j];
    }
    let mean = workgroup_reduce(0u, s, lid) * inv_n;
    var q = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        let d = src[base + j] - mean;
        q += d * d;
    }
    let rstd = inverseSqrt(workgroup_reduce(0u, q, lid) * inv_n + params.eps);
    for (var j = lid; j < params.cols; j += 256u) {
        var v = (src[base + j] - mean) * rstd;
        if (AFFINE) {
            v = v * gamma[j] + beta[j];
        }
        out[base + j] = v;
    }
    if (lid == 0u) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}
