// One level of parallel cyclic reduction over whole tridiagonal systems in global memory, one
// invocation per equation: equation i of a system eliminates its neighbours at distance s
// (equations i - s and i + s) and is left coupled to i - 2s and i + 2s, exactly as one PCR step
// of tridiagonal_pcr.wgsl. After k levels (s = 1, 2, ..., 2^(k-1)) each system has come apart
// into 2^k independent systems, the equations i = r (mod 2^k) for each r, which
// tridiagonal_thomas.wgsl then solves one per invocation with STRIDE = 2^k. This is how systems
// too long for workgroup memory, and too few to fill the GPU one per invocation, are solved.
//
// Coefficients that would couple an equation to one outside its system are read as 0 (so the
// caller's a[0] and c[n-1] are ignored, as the other kernels ignore them); every level writes a
// complete system, so the next level reads it the same way.

struct Params {
    n: u32,
    systems: u32,
    s: u32,        // the distance eliminated at this level
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> a_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> c_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> d_out: array<f32>;

@compute @workgroup_size(256)
fn tridiagonal_pcr_level(@builtin(workgroup_id) wg: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let n = params.n;
    let s = params.s;
    let e = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (e >= n * params.systems) {
        return;
    }
    let i = e % n;
    // The neighbours: identity equations (0, 1, 0 | 0) where they fall outside the system.
    var am = 0.0; var bm = 1.0; var cm = 0.0; var dm = 0.0;
    var k1 = 0.0;
    if (i >= s) {
        am = select(0.0, a[e - s], i >= 2u * s);
        bm = b[e - s]; cm = c[e - s]; dm = d[e - s];
        k1 = a[e] / bm;
    }
    var ap = 0.0; var bp = 1.0; var cp = 0.0; var dp = 0.0;
    var k2 = 0.0;
    if (i + s < n) {
        ap = a[e + s]; bp = b[e + s]; dp = d[e + s];
        cp = select(0.0, c[e + s], i + 2u * s < n);
        k2 = c[e] / bp;
    }
    a_out[e] = -am * k1;
    b_out[e] = b[e] - cm * k1 - ap * k2;
    c_out[e] = -cp * k2;
    d_out[e] = d[e] - dm * k1 - dp * k2;
}
