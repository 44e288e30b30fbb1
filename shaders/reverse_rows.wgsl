// out[k] = src[L-1-k] for [L, row] arrays: puts a reversed recurrence's solution back in order.

struct Params {
    len: u32,
    row: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn reverse_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (t >= params.len * params.row) {
        return;
    }
    let k = t / params.row;
    let j = t % params.row;
    out[t] = src[(params.len - 1u - k) * params.row + j];
}
