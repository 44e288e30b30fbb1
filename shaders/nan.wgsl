// NaN by its bits: WGSL lets a compiler assume that x != x is false, and a GPU's max, min and
// clamp may return the other operand of a NaN, so kernels that must pass a NaN on test for it
// this way.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// Neither NaN nor an infinity, by the bits of the exponent.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
