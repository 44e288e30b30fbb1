// Batched transpose [batch, rows, cols] -> [batch, cols, rows] through a padded 16x16 tile in
// workgroup memory, so that both the reads and the writes are coalesced.
// Concatenated after block_grid.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    batch: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const T: u32 = 16u;
// One column of padding keeps the transposed reads off a single memory bank.
var<workgroup> tile: array<f32, 272>;

@compute @workgroup_size(16, 16)
fn transpose(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let block = block_of(wg, nwg, (params.cols + T - 1u) / T, (params.rows + T - 1u) / T);
    if (block.z >= params.batch) {
        return;
    }
    let plane = params.rows * params.cols;
    let base = block.z * plane;
    let r = block.y * T + lid.y;
    let c = block.x * T + lid.x;
    if (r < params.rows && c < params.cols) {
        tile[lid.y * (T + 1u) + lid.x] = src[base + r * params.cols + c];
    }
    workgroupBarrier();
    // Out element (c2, r2) of the transposed plane, read from the tile transposed.
    let r2 = block.x * T + lid.y;
    let c2 = block.y * T + lid.x;
    if (r2 < params.cols && c2 < params.rows) {
        out[base + r2 * params.rows + c2] = tile[lid.x * (T + 1u) + lid.y];
    }
}
