// One level of the parallel scan that solves the affine recurrence
//   x[k] = A[k] x[k-1] + v[k],  k = 0 .. L-1,  x[-1] = 0,
// batched over `batch` independent recurrences of w-vectors. Storage is [L, batch, w] for
// vectors and [L, batch, w, w] (row-major blocks) for matrices. After the level with shift s,
// element k holds the composition of the maps k-2s+1 .. k: for k >= s,
//   v'[k] = v[k] + A[k] v[k-s],   A'[k] = A[k] A[k-s];
// elements k < s already reach back to x[-1] = 0, so their v is final and their A no longer
// matters (written as 0). ceil(log2 L) levels solve the recurrence; the last skips A (LAST).
// One invocation per (k, batch, row i); it keeps row i of A[k] in registers.
//
// Constants defined by the launcher: W (block width), LAST.

struct Params {
    len: u32,
    batch: u32,
    w: u32, // W, which the launcher also passes as a constant
    shift: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> v_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> a_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_out: array<f32>;

@compute @workgroup_size(256)
fn affine_scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let t = (wg.x + wg.y * nwg.x) * 256u + lid;
    let w = W;
    let rows = params.batch * w;
    if (t >= params.len * rows) {
        return;
    }
    let k = t / rows;
    let r = t % rows; // batch * w + i
    let i = r % w;
    let vec_base = k * rows + r - i; // start of x[k] of this batch entry
    let mat_row = (k * rows + r) * w; // row i of A[k] of this batch entry
    if (k < params.shift) {
        v_out[vec_base + i] = v_in[vec_base + i];
        if (!LAST) {
            for (var j = 0u; j < w; j++) {
                a_out[mat_row + j] = 0.0;
            }
        }
        return;
    }
    let prev_vec = vec_base - params.shift * rows;
    let prev_mat = (k - params.shift) * rows * w + (r - i) * w; // A[k-s] of this batch entry
    var row: array<f32, W>;
    for (var m = 0u; m < w; m++) {
        row[m] = a_in[mat_row + m];
    }
    var acc = v_in[vec_base + i];
    for (var m = 0u; m < w; m++) {
        acc += row[m] * v_in[prev_vec + m];
    }
    v_out[vec_base + i] = acc;
    if (!LAST) {
        for (var j = 0u; j < w; j++) {
            var s = 0.0;
            for (var m = 0u; m < w; m++) {
                s += row[m] * a_in[prev_mat + m * w + j];
            }
            a_out[mat_row + j] = s;
        }
    }
}
