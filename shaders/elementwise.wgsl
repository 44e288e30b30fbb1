// Elementwise kernels over flat arrays, one entry point specialised by OP (see
// `ops::elementwise`). Launched on a 2-D grid of 256-wide workgroups. Concatenated after
// activation.wgsl.
//
// OP: 0-6 out = act(x) (activation codes of activation.wgsl); 100 out = alpha * x;
// 101 out = x + y; 102 out = x - y; 103 out = x * y; 104 out += alpha * x (in place);
// 105 out = y * act'(x) with ACT the activation code (x the pre-activation, y the gradient);
// 106 out = y * act'(x) with x the activation's output instead (see act_derivative_from_output).

struct Params {
    n: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn elementwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    switch OP {
        case 100u: { out[i] = params.alpha * x[i]; }
        case 101u: { out[i] = x[i] + y[i]; }
        case 102u: { out[i] = x[i] - y[i]; }
        case 103u: { out[i] = x[i] * y[i]; }
        case 104u: { out[i] = out[i] + params.alpha * x[i]; }
        case 105u: { out[i] = y[i] * act_derivative(ACT, x[i]); }
        case 106u: { out[i] = y[i] * act_derivative_from_output(ACT, x[i]); }
        default: { out[i] = act_forward(OP, x[i]); }
    }
}
