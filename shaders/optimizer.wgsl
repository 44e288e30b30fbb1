// One optimizer step over a flat parameter buffer, one invocation per parameter. The squared
// global gradient norm comes from a GPU buffer (a reduction recorded just before), so clipping
// needs no readback: g <- g * min(1, max_norm / (norm + 1e-6)) when max_norm > 0.
// KIND 0: SGD with momentum mu, dampening 0, optional Nesterov, L2 weight decay
//         (PyTorch's torch.optim.SGD):  g += wd p; v = mu v + g; step = nesterov ? g + mu v : v.
// KIND 1: Adam (L2 decay g += wd p) or AdamW (DECOUPLED: p -= lr wd p), PyTorch's formulas:
//         m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//         p -= lr (m / bc1) / (sqrt(v / bc2) + eps), bc = 1 - beta^t.

struct Params {
    n: u32,
    lr: f32,
    weight_decay: f32,
    max_norm: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bias_correction1: f32,
    bias_correction2: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read> norm_sq: array<f32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;
@group(0) @binding(5) var<storage, read_write> state2: array<f32>;

@compute @workgroup_size(256)
fn optimizer(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    var g = grads[i];
    if (params.max_norm > 0.0) {
        g *= min(1.0, params.max_norm / (sqrt(norm_sq[0]) + 1e-6));
    }
    var p = weights[i];
    if (KIND == 0u) {
        g += params.weight_decay * p;
        var step = g;
        if (params.momentum != 0.0) {
            let v = params.momentum * state1[i] + g;
            state1[i] = v;
            step = select(v, g + params.momentum * v, NESTEROV);
        }
        weights[i] = p - params.lr * step;
        return;
    }
    if (DECOUPLED) {
        p -= params.lr * params.weight_decay * p;
    } else {
        g += params.weight_decay * p;
    }
    let m = params.beta1 * state1[i] + (1.0 - params.beta1) * g;
    let v = params.beta2 * state2[i] + (1.0 - params.beta2) * g * g;
    state1[i] = m;
    state2[i] = v;
    weights[i] = p - params.lr * (m / params.bias_correction1) / (sqrt(v / params.bias_correction2) + params.eps);
}
