// Turns the transposed, backward recurrence
//   y[l] = A[l+1]^T y[l+1] + v[l],  l = L-1 .. 0,  y[L] = 0,
// into the forward form affine_scan.wgsl solves, by reversing the order: with k = L-1-l,
//   x[k] = M[k] x[k-1] + u[k],  M[k] = A[L-k]^T,  u[k] = v[L-1-k],  (M[0] unused, set 0).
// One invocation per (k, batch, row i); storage as in affine_scan.wgsl.

struct Params {
    len: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> u_out: array<f32>;

@compute @workgroup_size(256)
fn affine_scan_reverse(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = params.w;
    let rows = params.batch * w;
    if (t >= params.len * rows) {
        return;
    }
    let k = t / rows;
    let r = t % rows;
    let i = r % w;
    let src = params.len - 1u - k;
    u_out[k * rows + r] = v[src * rows + r];
    let out_row = (k * rows + r) * w;
    if (k == 0u) {
        for (var j = 0u; j < w; j++) {
            m_out[out_row + j] = 0.0;
        }
        return;
    }
    // Row i of A[L-k]^T is column i of A[L-k].
    let block = ((params.len - k) * rows + r - i) * w;
    for (var j = 0u; j < w; j++) {
        m_out[out_row + j] = a[block + j * w + i];
    }
}
