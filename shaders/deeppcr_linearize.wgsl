// Linearises every layer of a deep MLP z[l] = act(W[l] z[l-1] + b[l]) around the current
// trajectory at once (DeepPCR's Newton step): for each layer l, batch entry and row i,
//   u = W[l] z[l-1] + b[l],  residual[l] = act(u) - z[l],  dact[l] = act'(u);
// the layer's Jacobian is diag(dact[l]) W[l], which the scans read in that factored form.
// z[-1] is the input; states hold z[0..L-1] (the layers' outputs), all [L, batch, w]. One
// invocation per (l, batch, i). Concatenated after activation.wgsl;
// constants defined by the launcher: W (the width) and ACT (the activation code).

struct Params {
    len: u32,
    batch: u32,
    w: u32, // W, which the launcher also passes as a constant
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> biases: array<f32>;
@group(0) @binding(3) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read> states: array<f32>;
@group(0) @binding(5) var<storage, read_write> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> dact: array<f32>;

@compute @workgroup_size(256)
fn deeppcr_linearize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = W;
    let rows = params.batch * w;
    if (t >= params.len * rows) {
        return;
    }
    let l = t / rows;
    let r = t % rows;
    let i = r % w;
    let entry = r - i; // batch * w
    let w_row = (l * w + i) * w;
    var u = biases[l * w + i];
    if (l == 0u) {
        for (var j = 0u; j < w; j++) {
            u += weights[w_row + j] * input[entry + j];
        }
    } else {
        let prev = (l - 1u) * rows + entry;
        for (var j = 0u; j < w; j++) {
            u += weights[w_row + j] * states[prev + j];
        }
    }
    residual[t] = act_forward(ACT, u) - states[t];
    dact[t] = act_derivative(ACT, u);
}
