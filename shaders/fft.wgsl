// One pass of a batched Stockham FFT: every column, a sub-transform of length R, is loaded
// into workgroup memory, transformed there by Stockham stages of radix 2, 3, 4, 5, 7 or 8, and
// written back once. A transform of length n <= the workgroup capacity is one pass (R = n);
// longer ones are several passes whose lengths multiply to n (the four-step algorithm written
// as a Stockham of large radices), each pass pre-twiddling its inputs.
//
// The signal layout is [outer, n, inner]: element e of signal (o, i) is at o*n*inner + e*inner + i.
// A pass of length R has n/R * inner columns per signal; column j*inner + i reads elements
// j + m*(n/R) (m < R) of signal (o, i) and writes element expand(j) + m*ns, where ns is the
// product of the earlier passes' lengths (Govindaraju et al., "High performance discrete
// Fourier transforms on graphics processors", 2008). Neighbouring columns are neighbouring
// addresses, so a workgroup of COLS columns reads and writes coalesced runs whenever rows are
// not contiguous themselves.
//
// Constants prepended by the launcher (src/ops/fft/stockham.rs):
//   R: u32           length of this pass's sub-transform
//   COLS: u32        columns per workgroup
//   WG: u32          invocations per workgroup
//   STAGES: u32      Stockham stages inside the workgroup
//   RADICES: u32     their radices, 4 bits each, first stage in the low bits
//   REGS: u32        registers per invocation to hold one stage's outputs
//   LOAD_ROWS: bool  whether a column's elements are contiguous (load along columns otherwise)
//   STORE_ROWS: bool the same for the output
//
// Twiddles are one table per plan, W_n^t = exp(-2 pi i t / n) for t < n, computed in f64 on the
// host: every root this pass needs is W_n^t for some t < n. The forward transform is computed;
// the inverse is conj(forward(conj(x))), so conjugating on load and store gives it.

struct Params {
    n: u32,        // transform length
    inner: u32,    // distance between neighbouring elements of a signal
    q: u32,        // columns per outer slab: n / R * inner
    columns: u32,  // all columns of the batch: outer * q
    ns: u32,       // product of the lengths of the earlier passes
    conj_in: u32,  // conjugate on load (first pass of an inverse)
    conj_out: u32, // conjugate on store (last pass of an inverse)
    scale: f32,    // applied on store
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> twiddles: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec2<f32>>;

const E: u32 = COLS * R;
// Real and imaginary parts apart: strided accesses then meet fewer bank conflicts than with
// interleaved pairs.
var<workgroup> s_re: array<f32, E>;
var<workgroup> s_im: array<f32, E>;

// One butterfly's values, and one stage's outputs of this invocation until the barrier.
var<private> v: array<vec2<f32>, 8>;
var<private> regs: array<vec2<f32>, REGS>;

const SQRT_HALF: f32 = 0.70710678118654752;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Multiplication by -i.
fn mul_neg_i(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.y, -a.x);
}

fn dft4(a0: vec2<f32>, a1: vec2<f32>, a2: vec2<f32>, a3: vec2<f32>) -> array<vec2<f32>, 4> {
    let t0 = a0 + a2;
    let t1 = a0 - a2;
    let t2 = a1 + a3;
    let t3 = mul_neg_i(a1 - a3);
    return array<vec2<f32>, 4>(t0 + t2, t1 + t3, t0 - t2, t1 - t3);
}

// Radix 8 as 2 x 4: v[m] +- v[m+4], the odd half twiddled by W_8^m, then two radix-4 DFTs
// give the even and the odd outputs.
fn dft8() {
    var e = dft4(v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]);
    let d1 = v[1] - v[5];
    let d2 = v[2] - v[6];
    let d3 = v[3] - v[7];
    var o = dft4(
        v[0] - v[4],
        SQRT_HALF * vec2<f32>(d1.x + d1.y, d1.y - d1.x),
        mul_neg_i(d2),
        SQRT_HALF * vec2<f32>(d3.y - d3.x, -d3.x - d3.y),
    );
    for (var k = 0u; k < 4u; k++) {
        v[2u * k] = e[k];
        v[2u * k + 1u] = o[k];
    }
}

// Radices 3, 5 and 7 by the definition, with roots from the plan's table (r divides n).
fn dft_odd(r: u32) {
    var out: array<vec2<f32>, 7>;
    let step = params.n / r;
    for (var l = 0u; l < r; l++) {
        var acc = v[0];
        for (var m = 1u; m < r; m++) {
            acc += cmul(v[m], twiddles[((m * l) % r) * step]);
        }
        out[l] = acc;
    }
    for (var l = 0u; l < r; l++) {
        v[l] = out[l];
    }
}

fn dft(r: u32) {
    switch r {
        case 2u: {
            let a = v[0];
            v[0] = a + v[1];
            v[1] = a - v[1];
        }
        case 4u: {
            var o = dft4(v[0], v[1], v[2], v[3]);
            for (var k = 0u; k < 4u; k++) {
                v[k] = o[k];
            }
        }
        case 8u: {
            dft8();
        }
        default: {
            dft_odd(r);
        }
    }
}

// Address of element 0 of a column; element m is params.q further per step.
fn column_base(col: u32) -> u32 {
    let o = col / params.q;
    return o * params.n * params.inner + (col - o * params.q);
}

@compute @workgroup_size(WG)
fn fft_pass(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let col0 = (wg.x + wg.y * nwg.x) * COLS;
    let ns_g = params.ns;
    // The global pass's twiddle W_{ns R}^{m k} is W_n^{m k n/(ns R)}.
    let tw_global = params.n / (ns_g * R);

    for (var e = tid; e < E; e += WG) {
        var c: u32;
        var m: u32;
        if (LOAD_ROWS) {
            c = e / R;
            m = e % R;
        } else {
            c = e % COLS;
            m = e / COLS;
        }
        let col = col0 + c;
        var x = vec2<f32>(0.0);
        if (col < params.columns) {
            x = src[column_base(col) + m * params.q];
            if (params.conj_in != 0u) {
                x.y = -x.y;
            }
            if (ns_g > 1u) {
                let k = ((col % params.q) / params.inner) % ns_g;
                x = cmul(x, twiddles[m * k * tw_global]);
            }
        }
        s_re[c * R + m] = x.x;
        s_im[c * R + m] = x.y;
    }
    workgroupBarrier();

    var ns = 1u;
    for (var s = 0u; s < STAGES; s++) {
        let r = (RADICES >> (4u * s)) & 15u;
        let span = R / r;
        let butterflies = COLS * span;
        let tw_local = params.n / (ns * r);
        var t = 0u;
        for (var b = tid; b < butterflies; b += WG) {
            let c = b / span;
            let j = b - c * span;
            let k = j % ns;
            let base = c * R + j;
            for (var m = 0u; m < r; m++) {
                let x = vec2<f32>(s_re[base + m * span], s_im[base + m * span]);
                v[m] = cmul(x, twiddles[m * k * tw_local]);
            }
            dft(r);
            for (var m = 0u; m < r; m++) {
                regs[t * r + m] = v[m];
            }
            t++;
        }
        workgroupBarrier();
        t = 0u;
        for (var b = tid; b < butterflies; b += WG) {
            let c = b / span;
            let j = b - c * span;
            let k = j % ns;
            let d = c * R + (j - k) * r + k;
            for (var m = 0u; m < r; m++) {
                let x = regs[t * r + m];
                s_re[d + m * ns] = x.x;
                s_im[d + m * ns] = x.y;
            }
            t++;
        }
        workgroupBarrier();
        ns *= r;
    }

    for (var e = tid; e < E; e += WG) {
        var c: u32;
        var m: u32;
        if (STORE_ROWS) {
            c = e / R;
            m = e % R;
        } else {
            c = e % COLS;
            m = e / COLS;
        }
        let col = col0 + c;
        if (col < params.columns) {
            let o = col / params.q;
            let qc = col - o * params.q;
            let j = qc / params.inner;
            let i = qc - j * params.inner;
            let k = j % ns_g;
            let idx = (j - k) * R + k + m * ns_g;
            var x = vec2<f32>(s_re[c * R + m], s_im[c * R + m]) * params.scale;
            if (params.conj_out != 0u) {
                x.y = -x.y;
            }
            dst[(o * params.n + idx) * params.inner + i] = x;
        }
    }
}
