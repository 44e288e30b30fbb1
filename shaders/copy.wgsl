// A plain copy, four floats per invocation: the bandwidth baseline that benchmarks compare
// memory-bound kernels with.

struct Params {
    count: u32, // vec4s to copy
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let id = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (id < params.count) {
        dst[id] = src[id];
    }
}
