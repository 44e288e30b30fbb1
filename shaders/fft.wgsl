// One pass of a batched Stockham FFT, specialised per plan: every column, a sub-transform of
// length R, is transformed by Stockham stages of radix 1, 2, 3, 4, 5, 7, 8 or 16 whose radices,
// strides and twiddle offsets are compile-time constants, so every loop has a constant trip
// count, every register index is a constant after unrolling, and the driver keeps a
// butterfly's values in registers. A transform of length n <= the workgroup capacity is one
// pass (R = n); longer ones are several passes whose lengths multiply to n (the four-step
// algorithm written as a Stockham of large radices), each pass pre-twiddling its inputs.
//
// The signal layout is [outer, n, inner]: element e of signal (o, i) is at o*n*inner + e*inner + i.
// A pass of length R has n/R * inner columns per signal; column j*inner + i reads elements
// j + m*(n/R) (m < R) of signal (o, i) and writes element expand(j) + m*ns, where ns is the
// product of the earlier passes' lengths (Govindaraju et al., "High performance discrete
// Fourier transforms on graphics processors", 2008).
//
// Data flow of a pass (VkFFT-style): the first stage reads its butterflies' inputs straight
// from global memory into registers (applying the four-step pre-twiddle), the middle stages go
// through workgroup memory, and the last stage writes its outputs straight to global memory.
// Stage s of radix r and input stride ns (the product of the earlier radices) reads elements
// j + m*R/r of a column and writes (j - j%ns)*r + j%ns + m*ns: in the first stage (ns = 1) and
// the last (ns = R/r) both are runs of consecutive j, so neighbouring invocations touch
// neighbouring addresses. When a column's elements are strided in memory (LOAD_ROWS or
// STORE_ROWS false), the first or last stage numbers its butterflies column-fastest instead, so
// that neighbouring invocations read neighbouring columns (neighbouring addresses).
//
// Workgroup memory keeps the real and imaginary parts apart, and (PAD) inserts one word after
// every 32 of a column and makes the column stride odd, so that the strided accesses of the
// stages and the column-fastest accesses fall into different banks.
//
// Constants prepended by the launcher (src/ops/fft/stockham.rs):
//   R, COLS, WG         pass length, columns per workgroup, invocations per workgroup
//   STAGES              stages of the pass (1 to 8)
//   RADs, NSs, TWs      for s < 7 and s < STAGES - 1: radix, input stride (product of earlier radices) and offset
//                       of stage s's twiddles W_{ns r}^{m k} (k < ns, 1 <= m < r) in the table;
//                       unused stages have radix 1
//   RADL, NSL, TWL      the same for the last stage
//   REGS                registers per invocation holding a middle stage's outputs
//   LOAD_ROWS, STORE_ROWS  whether a column's input (output) elements are contiguous
//   PAD, CSTRIDE, SMEM  padding on, column stride and size of the workgroup arrays
//   N, INNER, Q         transform length, inner extent, columns per outer slab (n / R * inner)
//   NSG, TWG            product of the earlier passes' lengths, and n / (NSG * R)
//   REAL, RTW           0: a complex pass. 1: a single-pass half-length transform of real rows
//                       (inner extent 1) whose epilogue writes the R+1 bins of the real signal
//                       of length 2R from workgroup memory (fft_real.wgsl's r2c_post, fused).
//                       2: the prologue builds the half-length spectrum from R+1 bins
//                       (c2r_pre, fused). RTW: offset of W_{2R}^k, k <= R, in the table.
//   BLUE, BN, BINNER, CHIRP, SPEC
//                       0: no Bluestein step. 1: the forward FFT of Bluestein's algorithm in one
//                       pass over rows of length R (fft_bluestein.wgsl's chirp_pre and pointwise
//                       fused): element p < BN of signal row (o, i) of the [outer, BN, BINNER]
//                       input times the chirp w_p (at CHIRP in the table) is loaded, zero for
//                       p >= BN, and output p is multiplied by B_p (at SPEC). 2: the inverse FFT
//                       (always conjugated on load) whose store keeps p < BN and writes
//                       w_p conj(y_p) (chirp_post fused), scaled and conjugated as asked.
//
// Twiddles come from one table per plan, computed in f64 on the host: W_n^t for t < n first
// (four-step pre-twiddles, present when the plan has several passes), then each stage's own
// W_{ns r}^{m k}. The forward transform is computed; the inverse is conj(forward(conj(x))).

struct Params {
    columns: u32,  // all columns of the batch: outer * Q
    conj_in: u32,  // conjugate on load (first pass of an inverse)
    conj_out: u32, // conjugate on store (last pass of an inverse)
    scale: f32,    // applied on store (REAL = 0, 1) or on load (REAL = 2)
    weight: f32,   // REAL = 1, 2: factor of the interior bins (see fft_real.wgsl)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> twiddles: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec2<f32>>;

var<workgroup> s_re: array<f32, SMEM>;
var<workgroup> s_im: array<f32, SMEM>;

// A middle stage's outputs of this invocation, from before its barrier to after.
var<private> regs: array<vec2<f32>, REGS>;

const SQRT_HALF: f32 = 0.70710678118654752;
const SIN_3: f32 = 0.86602540378443865;
const C5_1: f32 = 0.30901699437494745;
const C5_2: f32 = -0.80901699437494742;
const S5_1: f32 = 0.95105651629515357;
const S5_2: f32 = 0.58778525229247313;
const C7_1: f32 = 0.62348980185873353;
const C7_2: f32 = -0.22252093395631440;
const C7_3: f32 = -0.90096886790241913;
const S7_1: f32 = 0.78183148246802981;
const S7_2: f32 = 0.97492791218182361;
const S7_3: f32 = 0.43388373911755812;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Multiplication by -i.
fn mul_neg_i(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.y, -a.x);
}

fn conj_if(x: vec2<f32>, c: bool) -> vec2<f32> {
    if (c) {
        return vec2<f32>(x.x, -x.y);
    }
    return x;
}

fn dft4(a0: vec2<f32>, a1: vec2<f32>, a2: vec2<f32>, a3: vec2<f32>) -> array<vec2<f32>, 4> {
    let t0 = a0 + a2;
    let t1 = a0 - a2;
    let t2 = a1 + a3;
    let t3 = mul_neg_i(a1 - a3);
    return array<vec2<f32>, 4>(t0 + t2, t1 + t3, t0 - t2, t1 - t3);
}

// Radix 8 as 2 x 4: x[m] +- x[m+4], the odd half twiddled by W_8^m, then two radix-4 DFTs
// give the even and the odd outputs.
fn dft8(x: ptr<function, array<vec2<f32>, 16>>) {
    let e = dft4((*x)[0] + (*x)[4], (*x)[1] + (*x)[5], (*x)[2] + (*x)[6], (*x)[3] + (*x)[7]);
    let d1 = (*x)[1] - (*x)[5];
    let d2 = (*x)[2] - (*x)[6];
    let d3 = (*x)[3] - (*x)[7];
    let o = dft4(
        (*x)[0] - (*x)[4],
        SQRT_HALF * vec2<f32>(d1.x + d1.y, d1.y - d1.x),
        mul_neg_i(d2),
        SQRT_HALF * vec2<f32>(d3.y - d3.x, -d3.x - d3.y),
    );
    (*x)[0] = e[0];
    (*x)[1] = o[0];
    (*x)[2] = e[1];
    (*x)[3] = o[1];
    (*x)[4] = e[2];
    (*x)[5] = o[2];
    (*x)[6] = e[3];
    (*x)[7] = o[3];
}

// Radix 16 as 4 x 4: DFT4s of x[n1 + 4 n2] over n2, twiddles W_16^(n1 k1), DFT4s over n1;
// output k1 + 4 k2.
const W16_1: vec2<f32> = vec2<f32>(0.92387953251128674, -0.38268343236508977);
const W16_2: vec2<f32> = vec2<f32>(0.70710678118654752, -0.70710678118654752);
const W16_3: vec2<f32> = vec2<f32>(0.38268343236508977, -0.92387953251128674);
const W16_6: vec2<f32> = vec2<f32>(-0.70710678118654752, -0.70710678118654752);
const W16_9: vec2<f32> = vec2<f32>(-0.92387953251128674, 0.38268343236508977);

fn dft16(x: ptr<function, array<vec2<f32>, 16>>) {
    let a0 = dft4((*x)[0], (*x)[4], (*x)[8], (*x)[12]);
    let a1 = dft4((*x)[1], (*x)[5], (*x)[9], (*x)[13]);
    let a2 = dft4((*x)[2], (*x)[6], (*x)[10], (*x)[14]);
    let a3 = dft4((*x)[3], (*x)[7], (*x)[11], (*x)[15]);
    let b0 = dft4(a0[0], a1[0], a2[0], a3[0]);
    let b1 = dft4(a0[1], cmul(a1[1], W16_1), cmul(a2[1], W16_2), cmul(a3[1], W16_3));
    let b2 = dft4(a0[2], cmul(a1[2], W16_2), mul_neg_i(a2[2]), cmul(a3[2], W16_6));
    let b3 = dft4(a0[3], cmul(a1[3], W16_3), cmul(a2[3], W16_6), cmul(a3[3], W16_9));
    (*x)[0] = b0[0];
    (*x)[1] = b1[0];
    (*x)[2] = b2[0];
    (*x)[3] = b3[0];
    (*x)[4] = b0[1];
    (*x)[5] = b1[1];
    (*x)[6] = b2[1];
    (*x)[7] = b3[1];
    (*x)[8] = b0[2];
    (*x)[9] = b1[2];
    (*x)[10] = b2[2];
    (*x)[11] = b3[2];
    (*x)[12] = b0[3];
    (*x)[13] = b1[3];
    (*x)[14] = b2[3];
    (*x)[15] = b3[3];
}

// Odd primes p by pairs: with s_m = x_m + x_{p-m} and d_m = x_m - x_{p-m},
// y_k = x_0 + sum_m cos(2 pi mk/p) s_m - i sum_m sin(2 pi mk/p) d_m and y_{p-k} the same with +i.
fn dft3(x: ptr<function, array<vec2<f32>, 16>>) {
    let s = (*x)[1] + (*x)[2];
    let t = SIN_3 * mul_neg_i((*x)[1] - (*x)[2]);
    let m = (*x)[0] - 0.5 * s;
    (*x)[0] = (*x)[0] + s;
    (*x)[1] = m + t;
    (*x)[2] = m - t;
}

fn dft5(x: ptr<function, array<vec2<f32>, 16>>) {
    let a = (*x)[0];
    let s1 = (*x)[1] + (*x)[4];
    let d1 = (*x)[1] - (*x)[4];
    let s2 = (*x)[2] + (*x)[3];
    let d2 = (*x)[2] - (*x)[3];
    let r1 = a + C5_1 * s1 + C5_2 * s2;
    let i1 = mul_neg_i(S5_1 * d1 + S5_2 * d2);
    let r2 = a + C5_2 * s1 + C5_1 * s2;
    let i2 = mul_neg_i(S5_2 * d1 - S5_1 * d2);
    (*x)[0] = a + s1 + s2;
    (*x)[1] = r1 + i1;
    (*x)[4] = r1 - i1;
    (*x)[2] = r2 + i2;
    (*x)[3] = r2 - i2;
}

fn dft7(x: ptr<function, array<vec2<f32>, 16>>) {
    let a = (*x)[0];
    let s1 = (*x)[1] + (*x)[6];
    let d1 = (*x)[1] - (*x)[6];
    let s2 = (*x)[2] + (*x)[5];
    let d2 = (*x)[2] - (*x)[5];
    let s3 = (*x)[3] + (*x)[4];
    let d3 = (*x)[3] - (*x)[4];
    let r1 = a + C7_1 * s1 + C7_2 * s2 + C7_3 * s3;
    let i1 = mul_neg_i(S7_1 * d1 + S7_2 * d2 + S7_3 * d3);
    let r2 = a + C7_2 * s1 + C7_3 * s2 + C7_1 * s3;
    let i2 = mul_neg_i(S7_2 * d1 - S7_3 * d2 - S7_1 * d3);
    let r3 = a + C7_3 * s1 + C7_1 * s2 + C7_2 * s3;
    let i3 = mul_neg_i(S7_3 * d1 - S7_1 * d2 + S7_2 * d3);
    (*x)[0] = a + s1 + s2 + s3;
    (*x)[1] = r1 + i1;
    (*x)[6] = r1 - i1;
    (*x)[2] = r2 + i2;
    (*x)[5] = r2 - i2;
    (*x)[3] = r3 + i3;
    (*x)[4] = r3 - i3;
}

// The DFT of x[0..r] in place; r is a constant at every call site.
fn butterfly(r: u32, x: ptr<function, array<vec2<f32>, 16>>) {
    switch r {
        case 2u: {
            let a = (*x)[0];
            (*x)[0] = a + (*x)[1];
            (*x)[1] = a - (*x)[1];
        }
        case 3u: {
            dft3(x);
        }
        case 4u: {
            let o = dft4((*x)[0], (*x)[1], (*x)[2], (*x)[3]);
            (*x)[0] = o[0];
            (*x)[1] = o[1];
            (*x)[2] = o[2];
            (*x)[3] = o[3];
        }
        case 5u: {
            dft5(x);
        }
        case 7u: {
            dft7(x);
        }
        case 8u: {
            dft8(x);
        }
        case 16u: {
            dft16(x);
        }
        default: {} // radix 1: the identity
    }
}

// Workgroup memory index of element p of column c.
fn sidx(c: u32, p: u32) -> u32 {
    if (PAD) {
        return c * CSTRIDE + p + (p >> 5u);
    }
    return c * CSTRIDE + p;
}

fn sload(c: u32, p: u32) -> vec2<f32> {
    let i = sidx(c, p);
    return vec2<f32>(s_re[i], s_im[i]);
}

fn sstore(c: u32, p: u32, x: vec2<f32>) {
    let i = sidx(c, p);
    s_re[i] = x.x;
    s_im[i] = x.y;
}

// Column and butterfly index of butterfly b of a stage with `span` butterflies per column.
fn split_butterfly(b: u32, span: u32, column_fastest: bool) -> vec2<u32> {
    if (column_fastest) {
        return vec2<u32>(b % COLS, b / COLS);
    }
    return vec2<u32>(b / span, b % span);
}

// Reads element p of column c (global column col0 + c), pre-twiddled and conjugated.
fn gload(col: u32, p: u32) -> vec2<f32> {
    if (col >= params.columns) {
        return vec2<f32>(0.0);
    }
    if (BLUE == 1u) {
        if (p >= BN) {
            return vec2<f32>(0.0);
        }
        let bo = col / BINNER;
        let bi = col - bo * BINNER;
        let x = conj_if(src[(bo * BN + p) * BINNER + bi], params.conj_in != 0u);
        return cmul(x, twiddles[CHIRP + p]);
    }
    let o = col / Q;
    let qc = col - o * Q;
    var x = conj_if(src[o * N * INNER + qc + p * Q], params.conj_in != 0u);
    if (NSG > 1u) {
        let k = (qc / INNER) % NSG;
        x = cmul(x, twiddles[p * k * TWG]);
    }
    return x;
}

// Writes element p of column col's output, scaled and conjugated.
fn gstore(col: u32, p: u32, y: vec2<f32>) {
    if (col >= params.columns) {
        return;
    }
    var x = y;
    if (BLUE == 1u) {
        x = cmul(x, twiddles[SPEC + p]);
    }
    if (BLUE == 2u) {
        if (p < BN) {
            let bo = col / BINNER;
            let bi = col - bo * BINNER;
            let out = cmul(conj_if(x, true), twiddles[CHIRP + p]) * params.scale;
            dst[(bo * BN + p) * BINNER + bi] = conj_if(out, params.conj_out != 0u);
        }
        return;
    }
    let o = col / Q;
    let qc = col - o * Q;
    let j = qc / INNER;
    let i = qc - j * INNER;
    let k = j % NSG;
    let idx = (j - k) * R + k + p * NSG;
    var scale = params.scale;
    if (REAL == 2u) {
        scale = 1.0; // applied by the prologue
    }
    dst[(o * N + idx) * INNER + i] = conj_if(x * scale, params.conj_out != 0u);
}

// REAL = 1: the R+1 bins X_k = E_k + W_{2R}^k O_k of each row from its half-length spectrum Z
// in workgroup memory, E_k = (Z_k + conj Z_{R-k}) / 2, O_k = (Z_k - conj Z_{R-k}) / 2i.
fn real_epilogue(col0: u32, tid: u32) {
    let outs = COLS * (R + 1u);
    for (var t = 0u; t < (outs + WG - 1u) / WG; t++) {
        let e = tid + t * WG;
        let c = e / (R + 1u);
        let k = e - c * (R + 1u);
        let col = col0 + c;
        if (e < outs && col < params.columns) {
            let zk = sload(c, k % R);
            let zc = conj_if(sload(c, (R - k) % R), true);
            let even = 0.5 * (zk + zc);
            let d = zk - zc;
            let odd = 0.5 * vec2<f32>(d.y, -d.x);
            var x = even + cmul(twiddles[RTW + k], odd);
            if (k != 0u && k != R) {
                x *= params.weight;
            }
            dst[col * (R + 1u) + k] = x * params.scale;
        }
    }
}

// REAL = 2: Z_k = (X_k + conj X_{R-k}) + i W_{2R}^-k (X_k - conj X_{R-k}) for k < R from the
// R+1 bins X of each row (edge bins' imaginary parts dropped, interior bins weighted), scaled
// and conjugated on the way into workgroup memory.
fn real_prologue(col0: u32, tid: u32) {
    for (var t = 0u; t < (COLS * R + WG - 1u) / WG; t++) {
        let e = tid + t * WG;
        let c = e / R;
        let k = e - c * R;
        let col = col0 + c;
        if (e < COLS * R) {
            var z = vec2<f32>(0.0);
            if (col < params.columns) {
                var a = src[col * (R + 1u) + k];
                var b = src[col * (R + 1u) + R - k];
                if (k == 0u) {
                    a.y = 0.0;
                    b.y = 0.0;
                } else {
                    a *= params.weight;
                    b *= params.weight;
                }
                let bc = conj_if(b, true);
                let w = twiddles[RTW + k];
                let u = cmul(vec2<f32>(w.x, -w.y), a - bc);
                z = conj_if(((a + bc) + vec2<f32>(-u.y, u.x)) * params.scale, params.conj_in != 0u);
            }
            sstore(c, k, z);
        }
    }
}

// Inputs of butterfly j (column c) of a stage of radix r and stride ns, twiddled, from global
// memory (first stage) or workgroup memory.
fn stage_inputs(r: u32, ns: u32, tw: u32, first: bool, col0: u32, c: u32, j: u32)
    -> array<vec2<f32>, 16> {
    var x: array<vec2<f32>, 16>;
    let span = R / r;
    for (var m = 0u; m < r; m++) {
        if (first) {
            x[m] = gload(col0 + c, j + m * span);
        } else {
            x[m] = sload(c, j + m * span);
        }
    }
    if (ns > 1u) {
        let t = tw + (j % ns) * (r - 1u);
        for (var m = 1u; m < r; m++) {
            x[m] = cmul(x[m], twiddles[t + m - 1u]);
        }
    }
    butterfly(r, &x);
    return x;
}

// Writes the outputs of butterfly j (column c) to workgroup memory, or to global memory
// (last stage, where j < ns).
fn stage_outputs(r: u32, ns: u32, last: bool, col0: u32, c: u32, j: u32, x: array<vec2<f32>, 16>) {
    let k = j % ns;
    let d = (j - k) * r + k;
    for (var m = 0u; m < r; m++) {
        if (last) {
            gstore(col0 + c, d + m * ns, x[m]);
        } else {
            sstore(c, d + m * ns, x[m]);
        }
    }
}

// A stage that reads and writes without a barrier in between: first (from global memory),
// last (to global memory) or both.
fn stage_direct(r: u32, ns: u32, tw: u32, first: bool, last: bool, col0: u32, tid: u32) {
    let span = R / r;
    let butterflies = COLS * span;
    let fastest = (first && !LOAD_ROWS) || (last && !STORE_ROWS);
    for (var t = 0u; t < (butterflies + WG - 1u) / WG; t++) {
        let b = tid + t * WG;
        if (butterflies % WG == 0u || b < butterflies) {
            let cj = split_butterfly(b, span, fastest);
            let x = stage_inputs(r, ns, tw, first, col0, cj.x, cj.y);
            stage_outputs(r, ns, last, col0, cj.x, cj.y, x);
        }
    }
}

// The first half of a middle stage: its outputs into `regs`.
fn stage_compute(r: u32, ns: u32, tw: u32, tid: u32) {
    let span = R / r;
    let butterflies = COLS * span;
    for (var t = 0u; t < (butterflies + WG - 1u) / WG; t++) {
        let b = tid + t * WG;
        if (butterflies % WG == 0u || b < butterflies) {
            let cj = split_butterfly(b, span, false);
            let x = stage_inputs(r, ns, tw, false, 0u, cj.x, cj.y);
            for (var m = 0u; m < r; m++) {
                regs[t * 16u + m] = x[m];
            }
        }
    }
}

// The second half: `regs` into workgroup memory.
fn stage_store(r: u32, ns: u32, tid: u32) {
    let span = R / r;
    let butterflies = COLS * span;
    for (var t = 0u; t < (butterflies + WG - 1u) / WG; t++) {
        let b = tid + t * WG;
        if (butterflies % WG == 0u || b < butterflies) {
            let cj = split_butterfly(b, span, false);
            var x: array<vec2<f32>, 16>;
            for (var m = 0u; m < r; m++) {
                x[m] = regs[t * 16u + m];
            }
            stage_outputs(r, ns, false, 0u, cj.x, cj.y, x);
        }
    }
}

@compute @workgroup_size(WG)
fn fft_pass(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let col0 = (wg.x + wg.y * nwg.x) * COLS;
    if (REAL == 2u) {
        real_prologue(col0, tid);
        workgroupBarrier();
    }
    if (STAGES == 1u) {
        if (REAL == 0u) {
            stage_direct(RADL, NSL, TWL, true, true, col0, tid);
        } else if (REAL == 1u) {
            stage_direct(RADL, NSL, TWL, true, false, col0, tid);
            workgroupBarrier();
            real_epilogue(col0, tid);
        } else {
            stage_direct(RADL, NSL, TWL, false, true, col0, tid);
        }
        return;
    }
    if (REAL == 2u) {
        stage_compute(RAD0, NS0, TW0, tid);
        workgroupBarrier();
        stage_store(RAD0, NS0, tid);
    } else {
        stage_direct(RAD0, NS0, TW0, true, false, col0, tid);
    }
    workgroupBarrier();
    // Middle stages 1 ..= STAGES - 2, then the last one, each behind a compile-time guard.
    if (STAGES > 2u) {
        stage_compute(RAD1, NS1, TW1, tid);
        workgroupBarrier();
        stage_store(RAD1, NS1, tid);
        workgroupBarrier();
    }
    if (STAGES > 3u) {
        stage_compute(RAD2, NS2, TW2, tid);
        workgroupBarrier();
        stage_store(RAD2, NS2, tid);
        workgroupBarrier();
    }
    if (STAGES > 4u) {
        stage_compute(RAD3, NS3, TW3, tid);
        workgroupBarrier();
        stage_store(RAD3, NS3, tid);
        workgroupBarrier();
    }
    if (STAGES > 5u) {
        stage_compute(RAD4, NS4, TW4, tid);
        workgroupBarrier();
        stage_store(RAD4, NS4, tid);
        workgroupBarrier();
    }
    if (STAGES > 6u) {
        stage_compute(RAD5, NS5, TW5, tid);
        workgroupBarrier();
        stage_store(RAD5, NS5, tid);
        workgroupBarrier();
    }
    if (STAGES > 7u) {
        stage_compute(RAD6, NS6, TW6, tid);
        workgroupBarrier();
        stage_store(RAD6, NS6, tid);
        workgroupBarrier();
    }
    if (REAL == 1u) {
        stage_compute(RADL, NSL, TWL, tid);
        workgroupBarrier();
        stage_store(RADL, NSL, tid);
        workgroupBarrier();
        real_epilogue(col0, tid);
    } else {
        stage_direct(RADL, NSL, TWL, false, true, col0, tid);
    }
}
