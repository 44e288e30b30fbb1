// Bluestein's algorithm for lengths with prime factors above 7 (src/ops/fft/bluestein.rs):
// with the chirp w_j = exp(-i pi j^2 / n), jk = (j^2 + k^2 - (k-j)^2) / 2 turns the DFT into a
// convolution, X_k = w_k sum_j (x_j w_j) conj(w_{k-j}), computed as a circular convolution of
// a 7-smooth length m >= 2n - 1 (a power of two where that costs little) by FFTs of length m:
//   chirp_pre:  a = (x w, zero-padded to m)            [outer, n, inner] -> [rows, m]
//   (FFT_m of a, by fft.wgsl)
//   pointwise:  a *= B, B = FFT_m(conj w, wrapped) / m  (precomputed in f64 per plan)
//   (inverse FFT_m, unnormalised, by fft.wgsl)
//   chirp_post: X_k = w_k c_k, scaled                  [rows, m] -> [outer, n, inner]
// Rows are the signals (o, i), numbered o * inner + i. The inverse DFT is
// conj(DFT(conj(x))): `conj_in` and `conj_out` conjugate on the way in and out.

// Constants prepended by the launcher, so that every division is by a compile-time constant:
// N (the transform length), M (the convolution length) and INNER (the inner extent).
struct Params {
    n: u32,     // also N
    m: u32,     // also M
    inner: u32, // also INNER
    total: u32, // invocations that write
    conj_in: u32,
    conj_out: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
// The chirp w (chirp_pre, chirp_post) or the kernel's spectrum B (pointwise).
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec2<f32>>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn invocation(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn chirp_pre(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let row = id / M;
    let j = id % M;
    var a = vec2<f32>(0.0);
    if (j < N) {
        let o = row / INNER;
        let i = row % INNER;
        var x = src[(o * N + j) * INNER + i];
        if (params.conj_in != 0u) {
            x.y = -x.y;
        }
        a = cmul(x, table[j]);
    }
    dst[id] = a;
}

// In place: the spectrum is bound as `table` (and, unused, as `src`).
@compute @workgroup_size(64)
fn pointwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    dst[id] = cmul(dst[id], table[id % M]);
}

@compute @workgroup_size(64)
fn chirp_post(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    // Output element (o, k, i) of [outer, n, inner], read from row o * inner + i.
    let i = id % INNER;
    let t = id / INNER;
    let k = t % N;
    let o = t / N;
    var x = cmul(src[(o * INNER + i) * M + k], table[k]) * params.scale;
    if (params.conj_out != 0u) {
        x.y = -x.y;
    }
    dst[id] = x;
}
