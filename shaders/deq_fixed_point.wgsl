// Damped fixed-point iteration, z <- z + mix (f(z) - z), one row per workgroup.
// Concatenated after deq_common.wgsl.

@compute @workgroup_size(WG)
fn fixed_point(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let row = stepping_row(wg, nwg, lid);
    if (row == NO_ROW) {
        return;
    }
    let base = row * params.width;
    for (var j = lid; j < params.width; j += WG) {
        let x = z[base + j];
        z[base + j] = x + params.mix * (fz[base + j] - x);
    }
}
