// Counter-based random numbers: element g (a 64-bit index, `offset + i`) of the stream `seed`
// is a pure function of (seed, g), so any slice of a stream can be drawn in any order, on any
// device, and reproduced by `reference::random` bit for bit before the final float transform.
//
// The generator is Philox4x32-10 (Salmon et al., SC 2011, the Random123 generator that cuRAND
// and JAX use): counter (g / 4 as two words, 0, 0), key (seed low and high words). Its four
// output words w[0..4] give the four elements 4b .. 4b+3 of block b:
//   uniform:  u(w) = ((w >> 8) + 0.5) * 2^-24 in (0, 1), element = low + (high - low) * u.
//   normal:   pair (w[0], w[1]) gives elements 4b and 4b+1, pair (w[2], w[3]) 4b+2 and 4b+3, by
//             Box-Muller: r = sqrt(-2 ln u1), theta = pi (2 u2 - 1), u1 = ((w >> 8) + 1) * 2^-24
//             in (0, 1], u2 = u(w); cos for the first of a pair, sin for the second;
//             element = mean + std * value. |value| <= sqrt(48 ln 2) = 5.77.
// Each invocation computes one element (recomputing its block: keeps any offset and length
// correct with no tail handling). Launched on a 2-D grid of 256-wide workgroups.
//
// Constant defined by the launcher: NORMAL (true: normal, false: uniform).

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    offset_lo: u32,
    offset_hi: u32,
    a: f32,      // mean or low
    b: f32,      // std or high
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const PI: f32 = 3.14159265358979323846;

// The high word of the 64-bit product a * b, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_hi(a: u32, b: u32) -> u32 {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        if (r > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let hi0 = mul_hi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mul_hi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// (0, 1), exact in f32.
fn open_unit(w: u32) -> f32 {
    return (f32(w >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// (0, 1], exact in f32.
fn half_open_unit(w: u32) -> f32 {
    return f32((w >> 8u) + 1u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(256)
fn random(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    // g = offset + i as a 64-bit (hi, lo) pair; block = g >> 2, lane = g & 3.
    let lo = params.offset_lo + i;
    let hi = params.offset_hi + select(0u, 1u, lo < i);
    let block = vec2<u32>((lo >> 2u) | (hi << 30u), hi >> 2u);
    let lane = lo & 3u;
    let w = philox4x32_10(vec4<u32>(block.x, block.y, 0u, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    if (NORMAL) {
        let first = select(w.x, w.z, lane >= 2u);
        let second = select(w.y, w.w, lane >= 2u);
        let r = sqrt(-2.0 * log(half_open_unit(first)));
        let theta = PI * (2.0 * open_unit(second) - 1.0);
        let z = select(r * cos(theta), r * sin(theta), (lane & 1u) == 1u);
        out[i] = params.a + params.b * z;
    } else {
        let word = select(select(w.x, w.y, lane == 1u), select(w.z, w.w, lane == 3u), lane >= 2u);
        out[i] = params.a + (params.b - params.a) * open_unit(word);
    }
}
