// Sums a [rows, cols] matrix over its rows: out[chunk, col] = scale * sum of rows
// [chunk * CHUNK, (chunk + 1) * CHUNK) of column col. A workgroup covers 64 columns with 4
// invocations per column, so every row is read as 64 consecutive floats (coalesced). One
// launch with a single chunk gives the column sums; more chunks give partial sums for the next
// launch to add, which keeps tall matrices parallel. Concatenated after block_grid.wgsl: the
// grid of [column groups, chunks] is folded.

const COLS_PER_WG: u32 = 64u;
const LANES: u32 = 4u;

struct Params {
    rows: u32,
    cols: u32,
    chunk_rows: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn column_sum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let chunks = (params.rows + params.chunk_rows - 1u) / params.chunk_rows;
    let block = block_of(wg, nwg, (params.cols + COLS_PER_WG - 1u) / COLS_PER_WG, max(chunks, 1u));
    if (block.z > 0u) {
        return;
    }
    let col = block.x * COLS_PER_WG + lid.x;
    let start = block.y * params.chunk_rows;
    let end = min(start + params.chunk_rows, params.rows);
    var acc = 0.0;
    if (col < params.cols) {
        for (var r = start + lid.y; r < end; r += LANES) {
            acc += src[r * params.cols + col];
        }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = acc;
    workgroupBarrier();
    if (lid.y == 0u && col < params.cols) {
        let total = partial[lid.x] + partial[COLS_PER_WG + lid.x] + partial[2u * COLS_PER_WG + lid.x]
            + partial[3u * COLS_PER_WG + lid.x];
        out[block.y * params.cols + col] = total * params.scale;
    }
}
