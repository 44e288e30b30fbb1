// Parameter gradients of every layer of a deep MLP at once, from p[l] = act'(u[l]) * g[l] and
// the layers' inputs z[l-1] (both [L, batch, w]):
//   dW[l][i][j] = sum over batch of p[l][i] z[l-1][j],   db[l][i] = sum over batch of p[l][i].
// One invocation per (l, i, j) with j in 0..=w, the last column giving db.

struct Params {
    len: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> previous: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(256)
fn layer_param_grads(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = params.w;
    let per_layer = w * (w + 1u);
    if (t >= params.len * per_layer) {
        return;
    }
    let l = t / per_layer;
    let i = (t % per_layer) / (w + 1u);
    let j = t % (w + 1u);
    let rows = params.batch * w;
    var acc = 0.0;
    for (var b = 0u; b < params.batch; b++) {
        let at = l * rows + b * w;
        // The bias column multiplies by 1 (select would load previous[at + w] as well, one
        // past the end for the last layer's last sample).
        var z = 1.0;
        if (j < w) {
            z = previous[at + j];
        }
        acc += p[at + i] * z;
    }
    if (j == w) {
        db[l * w + i] = acc;
    } else {
        dw[(l * w + i) * w + j] = acc;
    }
}
