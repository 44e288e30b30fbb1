// Row-wise softmax (LOG false) or log-softmax (LOG true), one workgroup per row, stable by
// subtracting the row maximum. The sum z of exp(x - max) is kept as its parts, the count of
// entries at the maximum and the rest, so that z - 1 is exact and log z = log1p(z - 1) keeps
// its digits when the maximum dominates the row: log(z) with z = 1 + 2e-8 rounded to 0 (and
// log z of a confident row was off by up to an ulp of 1). Concatenated after
// workgroup_reduce.wgsl and log1p.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    var m = -3.4028235e38;
    for (var j = lid; j < params.cols; j += 256u) {
        m = max(m, src[base + j]);
    }
    m = workgroup_reduce(1u, m, lid);
    var ties = 0.0;
    var rest = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        let shifted = src[base + j] - m;
        ties += select(0.0, 1.0, shifted == 0.0);
        rest += select(exp(shifted), 0.0, shifted == 0.0);
    }
    ties = workgroup_reduce(0u, ties, lid);
    rest = workgroup_reduce(0u, rest, lid);
    let s = ties + rest;
    let log_s = log1p_acc((ties - 1.0) + rest);
    for (var j = lid; j < params.cols; j += 256u) {
        let shifted = src[base + j] - m;
        if (LOG) {
            out[base + j] = shifted - log_s;
        } else {
            out[base + j] = exp(shifted) / s;
        }
    }
}
