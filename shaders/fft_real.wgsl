// Real-input and real-output transforms around a complex FFT (src/ops/fft/real.rs).
//
// Even n = 2h: the real signal x is read as h complex values z_j = x_2j + i x_2j+1 (a free
// reinterpretation along a contiguous axis, `pack_real` along a strided one), Z = FFT_h(z), and
// `r2c_post` recovers the n/2+1 bins X_k = E_k + W_n^k O_k from E_k = (Z_k + conj Z_{h-k}) / 2
// and O_k = (Z_k - conj Z_{h-k}) / 2i. `c2r_pre` inverts that step, building
// Z_k = (X_k + conj X_{h-k}) + i W_n^-k (X_k - conj X_{h-k}) so that the unnormalised inverse
// FFT_h of Z holds (x_2j, x_2j+1) times n.
// Odd n: the real signal is promoted to complex (`promote_real`), transformed at full length,
// and the first (n+1)/2 bins kept (`r2c_post_odd`); the inverse extends the bins to the full
// Hermitian spectrum (`c2r_pre_odd`) and keeps the real part (`real_part`).
//
// Every kernel runs one invocation per element it writes, in the order of the written tensor,
// so writes are coalesced. The layout is [outer, length, inner] as in fft.wgsl; complex values
// are interleaved pairs of the f32 arrays. `weight` multiplies the interior bins (neither the
// zero bin nor, for even n, the Nyquist bin): 1 for the transforms themselves, 1/2 or 2 in
// their adjoints. The imaginary parts of the edge bins are ignored on input, as the real
// inverse transform of numpy and pocketfft does.

// Constants prepended by the launcher, so that every division is by a compile-time constant:
// NREAL (the real length n), HALF (n / 2, rounded down) and INNER (the inner extent).
struct Params {
    outer: u32,
    n: u32,     // real length (also NREAL)
    inner: u32, // also INNER
    half: u32,  // n / 2, rounded down (also HALF)
    total: u32, // invocations that write
    scale: f32,
    weight: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// W_n^k for k <= n/2, computed in f64 on the host (used by the even-n kernels).
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn load(c: u32) -> vec2<f32> {
    return vec2<f32>(src[2u * c], src[2u * c + 1u]);
}

fn store(c: u32, x: vec2<f32>) {
    dst[2u * c] = x.x;
    dst[2u * c + 1u] = x.y;
}

fn conj(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x, -a.y);
}

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// (outer index, index along the axis, inner index) of element `id` of [outer, len, inner].
fn split(id: u32, len: u32) -> vec3<u32> {
    let i = id % INNER;
    let t = id / INNER;
    return vec3<u32>(t / len, t % len, i);
}

fn at(o: u32, e: u32, len: u32, i: u32) -> u32 {
    return (o * len + e) * INNER + i;
}

fn invocation(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 64u + lid;
}

// [outer, n, inner] real -> [outer, h, inner] complex pairs (x_2j, x_2j+1).
@compute @workgroup_size(64)
fn pack_real(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let p = split(id, HALF);
    store(id, vec2<f32>(src[at(p.x, 2u * p.y, NREAL, p.z)], src[at(p.x, 2u * p.y + 1u, NREAL, p.z)]));
}

// The inverse of pack_real: [outer, h, inner] pairs -> [outer, n, inner] real.
@compute @workgroup_size(64)
fn unpack_real(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let p = split(id, NREAL);
    dst[id] = src[2u * at(p.x, p.y / 2u, HALF, p.z) + (p.y & 1u)];
}

// Z = FFT_h(z) [outer, h, inner] -> X [outer, h+1, inner].
@compute @workgroup_size(64)
fn r2c_post(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    // HALF >= 1 for the even n this kernel serves; the max keeps n = 1 (which compiles the
    // module too) from a constant division by zero.
    let h = max(HALF, 1u);
    let p = split(id, h + 1u);
    let k = p.y;
    let zk = load(at(p.x, k % h, h, p.z));
    let zc = conj(load(at(p.x, (h - k) % h, h, p.z)));
    let even = 0.5 * (zk + zc);
    let d = zk - zc;
    let odd = 0.5 * vec2<f32>(d.y, -d.x); // (zk - zc) / 2i
    var x = even + cmul(table[k], odd);
    if (k != 0u && k != h) {
        x *= params.weight;
    }
    store(id, x * params.scale);
}

// X [outer, h+1, inner] -> Z [outer, h, inner], whose unnormalised inverse FFT_h holds
// n times (x_2j, x_2j+1).
@compute @workgroup_size(64)
fn c2r_pre(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let h = HALF;
    let p = split(id, h);
    let k = p.y;
    var a = load(at(p.x, k, h + 1u, p.z));
    var b = load(at(p.x, h - k, h + 1u, p.z));
    if (k == 0u) {
        // X_0 and X_h: the edge bins, whose imaginary parts a real signal cannot have.
        a.y = 0.0;
        b.y = 0.0;
    } else {
        a *= params.weight;
        b *= params.weight;
    }
    let bc = conj(b);
    let t = cmul(conj(table[k]), a - bc);
    let z = (a + bc) + vec2<f32>(-t.y, t.x); // + i t
    store(id, z * params.scale);
}

// [outer, n, inner] real -> complex with zero imaginary parts.
@compute @workgroup_size(64)
fn promote_real(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    store(id, vec2<f32>(src[id], 0.0));
}

// Complex [outer, n, inner] -> its real parts.
@compute @workgroup_size(64)
fn real_part(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    dst[id] = src[2u * id];
}

// Full spectrum [outer, n, inner] -> its first h+1 bins [outer, h+1, inner] (odd n).
@compute @workgroup_size(64)
fn r2c_post_odd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let p = split(id, HALF + 1u);
    var x = load(at(p.x, p.y, NREAL, p.z));
    if (p.y != 0u) {
        x *= params.weight;
    }
    store(id, x * params.scale);
}

// Bins [outer, h+1, inner] -> the Hermitian spectrum [outer, n, inner] (odd n).
@compute @workgroup_size(64)
fn c2r_pre_odd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let id = invocation(wg, nwg, lid);
    if (id >= params.total) {
        return;
    }
    let h = HALF;
    let p = split(id, NREAL);
    let k = p.y;
    var x: vec2<f32>;
    if (k == 0u) {
        x = vec2<f32>(load(at(p.x, 0u, h + 1u, p.z)).x, 0.0);
    } else if (k <= h) {
        x = params.weight * load(at(p.x, k, h + 1u, p.z));
    } else {
        x = params.weight * conj(load(at(p.x, NREAL - k, h + 1u, p.z)));
    }
    store(id, x * params.scale);
}
