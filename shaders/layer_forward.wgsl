// One layer of a deep MLP in the sequential chain: z[l] = act(W[l] z[l-1] + b[l]) for every
// batch entry, also keeping dact[l] = act'(u) for the backward. Storage as in
// deeppcr_linearize.wgsl; `layer` selects l. One invocation per (batch, i). Concatenated after
// activation.wgsl.

struct Params {
    layer: u32,
    batch: u32,
    w: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> biases: array<f32>;
@group(0) @binding(3) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read_write> states: array<f32>;
@group(0) @binding(5) var<storage, read_write> dact: array<f32>;

@compute @workgroup_size(256)
fn layer_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let r = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = params.w;
    let rows = params.batch * w;
    if (r >= rows) {
        return;
    }
    let l = params.layer;
    let i = r % w;
    let entry = r - i;
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
    states[l * rows + r] = act_forward(ACT, u);
    dact[l * rows + r] = act_derivative(ACT, u);
}
