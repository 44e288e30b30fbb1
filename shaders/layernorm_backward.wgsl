// Backward of row-wise layer normalisation, one workgroup per row. With xhat = (x - mean) rstd
// and g = dy * gamma (dy when AFFINE is false):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// and dy * xhat is written out so the launcher can sum it over rows into dgamma.
// The mean comes rounded to f32, which for a row like 1e4 + N(0, 1e-2) is off by up to 5e-4, a
// few percent of the spread: xhat = (x - mean) rstd is then off by a constant delta, exact but
// for that (x - mean is exact near the mean). A true xhat has mean 0, so delta is the mean of
// the computed xhat and is taken out (dx was 0.1% off, normwise, on such rows).
// Concatenated after workgroup_reduce.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dy_xhat: array<f32>;

@compute @workgroup_size(256)
fn layernorm_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    let mu = mean[row];
    let r = rstd[row];
    var sum_x = 0.0;
    var sum_g = 0.0;
    var sum_gx = 0.0;
    for (var j = lid; j < params.cols; j += 256u) {
        let xhat = (x[base + j] - mu) * r;
        var g = dy[base + j];
        if (AFFINE) {
            g = g * gamma[j];
        }
        sum_x += xhat;
        sum_g += g;
        sum_gx += g * xhat;
    }
    let inv_n = 1.0 / f32(params.cols);
    let delta = workgroup_reduce(0u, sum_x, lid) * inv_n;
    let mean_g = workgroup_reduce(0u, sum_g, lid) * inv_n;
    // mean(g * (xhat - delta)).
    let mean_gx = workgroup_reduce(0u, sum_gx, lid) * inv_n - delta * mean_g;
    for (var j = lid; j < params.cols; j += 256u) {
        let xhat = (x[base + j] - mu) * r - delta;
        var g = dy[base + j];
        dy_xhat[base + j] = g * xhat;
        if (AFFINE) {
            g = g * gamma[j];
        }
        dx[base + j] = r * (g - mean_g - xhat * mean_gx);
    }
}
