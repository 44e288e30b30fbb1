// Reduces segments of rows of a flat array: row r covers [r * row_len, (r + 1) * row_len), and
// its part p the segment of seg_len elements from r * row_len + p * seg_len, cut at the row's
// end; segment g = r * parts + p reduces to out[g], times `scale`. A row shorter than a segment
// is one part; longer rows, and whole arrays (one row), are reduced in stages by the launcher.
// MAP: 0 identity, 1 square, 2 absolute value with NaN as +inf; COMBINE: 0 sum, 1 max.
// Concatenated after workgroup_reduce.wgsl.

struct Params {
    row_len: u32,
    seg_len: u32,
    parts: u32,
    segments: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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
    let row_start = (g / params.parts) * params.row_len;
    let start = row_start + (g % params.parts) * params.seg_len;
    let end = min(start + params.seg_len, row_start + params.row_len);
    // -inf, the identity of max (-f32::MAX would be the max of a row of -inf).
    var acc = select(0.0, bitcast<f32>(0xff800000u), COMBINE == 1u);
    for (var i = start + lid; i < end; i += 256u) {
        var v = src[i];
        if (MAP == 1u) {
            v = v * v;
        }
        if (MAP == 2u) {
            // |v| by its bits; a NaN (bits past +inf's) becomes +inf, its bits masked to the
            // exponent's, since max may drop a NaN.
            let bits = bitcast<u32>(v) & 0x7fffffffu;
            v = bitcast<f32>(select(bits, bits & 0x7f800000u, bits > 0x7f800000u));
        }
        acc = combine(COMBINE, acc, v);
    }
    let total = workgroup_reduce(COMBINE, acc, lid);
    if (lid == 0u) {
        out[g] = total * params.scale;
    }
}
