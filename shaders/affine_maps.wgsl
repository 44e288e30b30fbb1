// Multiplies factored maps out for the scans that need them dense (recursive doubling):
//   A[k, b] = diag(s[k, b]) Wt[k],  Wt [L, w, w] shared by the batch, s [L, batch, w],
// written as [L, batch, w, w]. One invocation per entry of A.

struct Params {
    len: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> a: array<f32>;

@compute @workgroup_size(256)
fn row_scaled_maps(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = params.w;
    if (t >= params.len * params.batch * w * w) {
        return;
    }
    let j = t % w;
    let row = t / w; // (k * batch + b) * w + i
    let i = row % w;
    let k = row / (params.batch * w);
    a[t] = scales[row] * weights[(k * w + i) * w + j];
}
