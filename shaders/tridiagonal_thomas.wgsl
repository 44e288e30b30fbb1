// Batched tridiagonal solves by the Thomas algorithm, one invocation per system: forward
// elimination into scratch (c') and x (d'), then back substitution. For many short systems,
// where a workgroup per system would leave most invocations idle. Same equations and caveats
// as tridiagonal_pcr.wgsl.
//
// With STRIDE > 1 each system is STRIDE independent interleaved ones, the equations
// i = r (mod STRIDE) for each r < STRIDE, as tridiagonal_pcr_level.wgsl leaves it: invocation r
// of a system solves the r-th, and neighbouring invocations read neighbouring addresses.

struct Params {
    n: u32,
    systems: u32,
    stride: u32,   // interleaved systems per system (1: the systems are as given)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(64)
fn tridiagonal_thomas(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 64u + lid;
    let stride = params.stride;
    if (t >= params.systems * stride) {
        return;
    }
    let r = t % stride;
    let n = params.n;
    if (r >= n) {
        return;
    }
    // Equation j of this invocation's system is at base + j * stride.
    let base = (t / stride) * n + r;
    let len = (n - r + stride - 1u) / stride;
    var cp = select(c[base], 0.0, len == 1u) / b[base];
    var dp = d[base] / b[base];
    scratch[base] = cp;
    x[base] = dp;
    for (var j = 1u; j < len; j++) {
        let e = base + j * stride;
        let ci = select(c[e], 0.0, j + 1u == len);
        let m = b[e] - a[e] * cp;
        dp = (d[e] - a[e] * dp) / m;
        cp = ci / m;
        scratch[e] = cp;
        x[e] = dp;
    }
    var next = dp;
    for (var j = len - 1u; j > 0u; j--) {
        let e = base + (j - 1u) * stride;
        next = x[e] - scratch[e] * next;
        x[e] = next;
    }
}
