// The second half of a split-K matmul (matmul.wgsl with SPLIT > 1): adds the parts' partial
// sums of each output in part order, then applies the epilogue as the unsplit kernel does:
//   c[i] = act(sum_p partial[p * total + i] + bias[i % n] + addend[i]).
// One invocation per output; the grid is split over x and y (index wg.x + wg.y * num_wg.x).
//
// Constants defined by the launcher: BIAS, ADD, ACT. Concatenated after activation.wgsl.

struct Params {
    total: u32,
    n: u32,
    parts: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> addend: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(256)
fn matmul_split_sum(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wg.x + wg.y * groups.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    var x = 0.0;
    for (var p = 0u; p < params.parts; p++) {
        x += partial[p * params.total + i];
    }
    if (BIAS) {
        x += bias[i % params.n];
    }
    if (ADD) {
        x += addend[i];
    }
    c[i] = act_forward(ACT, x);
}
