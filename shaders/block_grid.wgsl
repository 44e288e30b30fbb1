// Kernels that compute a 3-D grid of blocks [nx, ny, nz] (output tiles, then matrices of the
// batch) are launched with the grid folded over x and y (Gpu::block_grid), so that a long batch
// or a tall matrix never meets the per-dimension limit of a dispatch. The fold rounds up: the
// workgroups past the last block get a z of nz or more, and return.
fn block_of(wg: vec3<u32>, nwg: vec3<u32>, nx: u32, ny: u32) -> vec3<u32> {
    let t = wg.x + wg.y * nwg.x;
    let plane = nx * ny;
    let xy = t % plane;
    return vec3<u32>(xy % nx, xy / nx, t / plane);
}
