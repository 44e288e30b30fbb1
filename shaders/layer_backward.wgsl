// One layer of the sequential backward chain of a deep MLP:
//   g[l-1] = W[l]^T (dact[l] * g[l]),  l >= 1,
// from grads slot l to slot l-1. Storage as in deeppcr_linearize.wgsl; `layer` selects l. One
// invocation per (batch, j).

struct Params {
    layer: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> dact: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(256)
fn layer_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = params.w;
    let rows = params.batch * w;
    if (r >= rows) {
        return;
    }
    let l = params.layer;
    let j = r % w;
    let entry = r - j;
    let at = l * rows + entry;
    var acc = 0.0;
    for (var i = 0u; i < w; i++) {
        acc += weights[(l * w + i) * w + j] * dact[at + i] * grads[at + i];
    }
    grads[(l - 1u) * rows + r] = acc;
}
