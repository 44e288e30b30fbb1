// A tree reduction over the 256 invocations of a workgroup, shared by the row-wise kernels.
// Combine codes: 0 sum, 1 max. Every invocation must call it (it contains barriers) and every
// invocation receives the result. Concatenated after nan.wgsl.

const WG_REDUCE: u32 = 256u;
var<workgroup> reduce_scratch: array<f32, WG_REDUCE>;

// max passes a NaN on by hand (a + b is NaN then): a GPU's max may return the other operand.
fn combine(op: u32, a: f32, b: f32) -> f32 {
    return select(a + b, max(a, b), op == 1u && !is_nan(a) && !is_nan(b));
}

fn workgroup_reduce(op: u32, value: f32, lid: u32) -> f32 {
    reduce_scratch[lid] = value;
    workgroupBarrier();
    for (var width = WG_REDUCE / 2u; width > 0u; width = width / 2u) {
        if (lid < width) {
            reduce_scratch[lid] = combine(op, reduce_scratch[lid], reduce_scratch[lid + width]);
        }
        workgroupBarrier();
    }
    let result = reduce_scratch[0];
    // Keep the next call's first write from racing with this call's reads of slot 0.
    workgroupBarrier();
    return result;
}
