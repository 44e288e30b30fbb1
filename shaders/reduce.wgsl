// Reduces consecutive segments of a flat array: segment g covers [g * seg_len,
// min((g + 1) * seg_len, n)) and its result, times `scale`, goes to out[g]. Rows of a matrix are
// segments of length cols; a whole array is reduced in stages of segments. MAP: 0 identity,
// 1 square; COMBINE: 0 sum, 1 max. Concatenated after workgroup_reduce.wgsl.

struct Params {
    n: u32,
    seg_len: u32,
    segments: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let g = wg.x + wg.y * nwg.x;
    // Uniform across the workgroup, so returning keeps the barriers uniform.
    if (g >= params.segments) {
        return;
    }
    let start = g * params.seg_len;
    let end = min(start + params.seg_len, params.n);
    var acc = select(0.0, -3.4028235e38, COMBINE == 1u);
    for (var i = start + lid; i < end; i += 256u) {
        var v = src[i];
        if (MAP == 1u) {
            v = v * v;
        }
        acc = combine(COMBINE, acc, v);
    }
    let total = workgroup_reduce(COMBINE, acc, lid);
    if (lid == 0u) {
        out[g] = total * params.scale;
    }
}
