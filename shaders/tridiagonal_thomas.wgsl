// Batched tridiagonal solves by the Thomas algorithm, one invocation per system: forward
// elimination into scratch (c') and x (d'), then back substitution. For many short systems,
// where a workgroup per system would leave most invocations idle. Same equations and caveats
// as tridiagonal_pcr.wgsl.

struct Params {
    n: u32,
    systems: u32,
    _pad0: u32,
    _pad1: u32,
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
    let system = (wg.x + wg.y * nwg.x) * 64u + lid;
    if (system >= params.systems) {
        return;
    }
    let n = params.n;
    let base = system * n;
    var cp = select(c[base], 0.0, n == 1u) / b[base];
    var dp = d[base] / b[base];
    scratch[base] = cp;
    x[base] = dp;
    for (var i = 1u; i < n; i++) {
        let ci = select(c[base + i], 0.0, i + 1u == n);
        let m = b[base + i] - a[base + i] * cp;
        dp = (d[base + i] - a[base + i] * dp) / m;
        cp = ci / m;
        scratch[base + i] = cp;
        x[base + i] = dp;
    }
    var next = dp;
    for (var i = n - 1u; i > 0u; i--) {
        next = x[base + i - 1u] - scratch[base + i - 1u] * next;
        x[base + i - 1u] = next;
    }
}
