// Split-precision matrix multiply on cooperative matrices (tensor cores), with matmul.wgsl's
// fused epilogue:
//   C[b] = act(op(A[b]) op(B[b]) / (sa sb) + bias + addend[b]),
//   op(A) op(B) * sa sb ~ Ah Bh + Ah Bl + Al Bh,
// where split_f16.wgsl has split sa A = Ah + Al and sb B = Bh + Bl into f16 halves (Al Bl, about
// 2^-22 of the product, is left out). Each f16 x f16 product is exact in the f32 accumulators,
// so the result is about as accurate as an f32 product, at the tensor cores' rate.
//
// The halves are stored as the operands are (A as M x K, or K x M when TRANS_A; B as K x N, or
// N x K when TRANS_B), each matrix padded with zeros to multiples of the block tile (BM, BN) and
// of BK along K, so that no fragment load needs a bounds check; highs first, lows at lows_a /
// lows_b. Row-major storage loads with coopLoadT, its transpose with coopLoad (column-major).
//
// Each workgroup computes a BM x BN block of C; each subgroup of 32 invocations (the launcher
// requires that size) a 32 x 32 part of it as 2 x 2 fragments of 16 x 16. With STAGE, each K-slice
// of BK is first copied to workgroup memory (eight halves per vec4<u32> read) and the fragments
// load from there (the next slice's global reads in flight meanwhile); without, they load
// straight from the storage buffers. The accumulators go
// through a 16 x 16 scratch per subgroup to apply the epilogue and write only in-range outputs.
//
// naga 30 panics on coopLoad/coopStore pointers with indices computed inline: every index is
// bound with `let` first.
//
// Constants defined by the launcher: BM, BN, BK, STAGE, TRANS_A, TRANS_B, BIAS, ADD, ACT.
// Concatenated after activation.wgsl and block_grid.wgsl, behind `enable f16; enable wgpu_cooperative_matrix;`.

struct Params {
    m: u32,
    n: u32,
    m_pad: u32,
    n_pad: u32,
    k_pad: u32,
    // Halves per padded matrix of A and of B (0 broadcasts one matrix over the batch).
    stride_a: u32,
    stride_b: u32,
    lows_a: u32,
    lows_b: u32,
    // Elements per matrix of C.
    stride_c: u32,
    // Index of -log2(scale) that split_f16.wgsl left in each operand's partials.
    unscale: u32,
    // Matrices of C: the block grid's third axis.
    batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ah: array<f16>;
@group(0) @binding(2) var<storage, read> ah8: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bh: array<f16>;
@group(0) @binding(4) var<storage, read> bh8: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales_a: array<f32>;
@group(0) @binding(6) var<storage, read> scales_b: array<f32>;
@group(0) @binding(7) var<storage, read> bias: array<f32>;
@group(0) @binding(8) var<storage, read> addend: array<f32>;
@group(0) @binding(9) var<storage, read_write> c: array<f32>;

const SUBGROUPS_N: u32 = BN / 32u;
const WG_SIZE: u32 = (BM / 32u) * SUBGROUPS_N * 32u;

// One K-slice of each operand's halves, in the operand's own orientation: A as BM rows of BK
// (or BK rows of BM when TRANS_A), B as BK rows of BN (or BN rows of BK when TRANS_B); highs
// first, lows after them. Rows are padded by eight halves (16 bytes) so that the 16 rows a
// fragment load reads start in different memory banks (unpadded, rows of 32 or 64 halves would
// share a few banks).
const A_ROW: u32 = select(BK, BM, TRANS_A);
const A_ROWS: u32 = select(BM, BK, TRANS_A);
const B_ROW: u32 = select(BN, BK, TRANS_B);
const B_ROWS: u32 = select(BK, BN, TRANS_B);
const A_STRIDE: u32 = A_ROW + 8u;
const B_STRIDE: u32 = B_ROW + 8u;
const A_SLICE: u32 = A_ROWS * A_STRIDE;
const B_SLICE: u32 = B_ROWS * B_STRIDE;
var<workgroup> a_tile: array<f16, 2u * A_SLICE>;
var<workgroup> b_tile: array<f16, 2u * B_SLICE>;
// Each subgroup's 16 x 16 fragment on its way to the epilogue.
var<workgroup> out_frag: array<f32, WG_SIZE * 8u>;

// Writes the eight halves packed in v to a_tile (is_a) or b_tile from index at.
fn store8(is_a: bool, at: u32, v: vec4<u32>) {
    // f16 -> f32 -> f16 is exact.
    let h0 = vec2<f16>(unpack2x16float(v.x));
    let h1 = vec2<f16>(unpack2x16float(v.y));
    let h2 = vec2<f16>(unpack2x16float(v.z));
    let h3 = vec2<f16>(unpack2x16float(v.w));
    let e = array<f16, 8>(h0.x, h0.y, h1.x, h1.y, h2.x, h2.y, h3.x, h3.y);
    for (var i = 0u; i < 8u; i++) {
        if (is_a) {
            a_tile[at + i] = e[i];
        } else {
            b_tile[at + i] = e[i];
        }
    }
}

// Each K-slice is staged in two steps, so that the global reads of the next slice are in flight
// while the current one is multiplied: fetch reads an invocation's share of the slice (A_VECS
// and B_VECS rows of eight halves, one vec4<u32> each, highs then lows) into registers, and
// store_slice writes it to workgroup memory. WG_SIZE divides the rows of every kernel variant
// (tested in src/ops/matmul/coop.rs).
const A_VECS: u32 = A_ROWS * A_ROW / 8u / WG_SIZE;
const B_VECS: u32 = B_ROWS * B_ROW / 8u / WG_SIZE;
var<private> a_next: array<vec4<u32>, 2u * A_VECS>;
var<private> b_next: array<vec4<u32>, 2u * B_VECS>;

// Row and column (in halves) of the slice's i-th row of eight for this invocation.
fn a_piece(i: u32, lid: u32) -> vec2<u32> {
    let v = lid + i * WG_SIZE;
    return vec2<u32>(v / (A_ROW / 8u), (v % (A_ROW / 8u)) * 8u);
}

fn b_piece(i: u32, lid: u32) -> vec2<u32> {
    let v = lid + i * WG_SIZE;
    return vec2<u32>(v / (B_ROW / 8u), (v % (B_ROW / 8u)) * 8u);
}

fn fetch(base_a: u32, base_b: u32, m0: u32, n0: u32, k0: u32, lid: u32) {
    for (var i = 0u; i < A_VECS; i++) {
        let rc = a_piece(i, lid);
        // Stored M x K, or K x M: a slice row is an m (of BK k's), or a k (of BM m's).
        var g = base_a + (m0 + rc.x) * params.k_pad + k0 + rc.y;
        if (TRANS_A) {
            g = base_a + (k0 + rc.x) * params.m_pad + m0 + rc.y;
        }
        a_next[i] = ah8[g / 8u];
        a_next[A_VECS + i] = ah8[(params.lows_a + g) / 8u];
    }
    for (var i = 0u; i < B_VECS; i++) {
        let rc = b_piece(i, lid);
        // Stored K x N, or N x K.
        var g = base_b + (k0 + rc.x) * params.n_pad + n0 + rc.y;
        if (TRANS_B) {
            g = base_b + (n0 + rc.x) * params.k_pad + k0 + rc.y;
        }
        b_next[i] = bh8[g / 8u];
        b_next[B_VECS + i] = bh8[(params.lows_b + g) / 8u];
    }
}

fn store_slice(lid: u32) {
    for (var i = 0u; i < A_VECS; i++) {
        let rc = a_piece(i, lid);
        let at = rc.x * A_STRIDE + rc.y;
        store8(true, at, a_next[i]);
        store8(true, A_SLICE + at, a_next[A_VECS + i]);
    }
    for (var i = 0u; i < B_VECS; i++) {
        let rc = b_piece(i, lid);
        let at = rc.x * B_STRIDE + rc.y;
        store8(false, at, b_next[i]);
        store8(false, B_SLICE + at, b_next[B_VECS + i]);
    }
}

// The A fragment at rows m, columns k of the slice (STAGE) or of the matrix at base, from the
// highs (half = 0) or the lows (half = the lows' offset). Branches only on constants: coopLoad
// needs uniform control flow.
fn load_a(half: u32, base: u32, m: u32, k: u32) -> coop_mat16x16<f16, A> {
    if (STAGE) {
        let stride = A_STRIDE;
        if (TRANS_A) {
            let at = half + k * A_STRIDE + m;
            return coopLoad<coop_mat16x16<f16, A>>(&a_tile[at], stride);
        }
        let at = half + m * A_STRIDE + k;
        return coopLoadT<coop_mat16x16<f16, A>>(&a_tile[at], stride);
    }
    if (TRANS_A) {
        let at = half + base + k * params.m_pad + m;
        let stride = params.m_pad;
        return coopLoad<coop_mat16x16<f16, A>>(&ah[at], stride);
    }
    let at = half + base + m * params.k_pad + k;
    let stride = params.k_pad;
    return coopLoadT<coop_mat16x16<f16, A>>(&ah[at], stride);
}

// The B fragment at rows k, columns n, as load_a.
fn load_b(half: u32, base: u32, k: u32, n: u32) -> coop_mat16x16<f16, B> {
    if (STAGE) {
        let stride = B_STRIDE;
        if (TRANS_B) {
            let at = half + n * B_STRIDE + k;
            return coopLoad<coop_mat16x16<f16, B>>(&b_tile[at], stride);
        }
        let at = half + k * B_STRIDE + n;
        return coopLoadT<coop_mat16x16<f16, B>>(&b_tile[at], stride);
    }
    if (TRANS_B) {
        let at = half + base + n * params.k_pad + k;
        let stride = params.k_pad;
        return coopLoad<coop_mat16x16<f16, B>>(&bh[at], stride);
    }
    let at = half + base + k * params.n_pad + n;
    let stride = params.n_pad;
    return coopLoadT<coop_mat16x16<f16, B>>(&bh[at], stride);
}

// Applies the epilogue to one accumulated fragment at C rows m, columns n and writes the
// in-range outputs. Every invocation of the workgroup calls it (it has barriers).
fn emit(
    frag: coop_mat16x16<f32, C>,
    sg: u32,
    lane: u32,
    base_c: u32,
    m: u32,
    n: u32,
    unscale: i32,
) {
    let at = sg * 256u;
    let stride = 16u;
    coopStoreT(frag, &out_frag[at], stride);
    workgroupBarrier();
    for (var e = lane; e < 256u; e += 32u) {
        let row = m + e / 16u;
        let col = n + e % 16u;
        if (row < params.m && col < params.n) {
            // 2^unscale in two steps, each within f32's exponent range: the partial result
            // lies between the sum and the output, so neither step overflows or underflows
            // where the output does not.
            let half_exp = unscale / 2;
            var v = ldexp(ldexp(out_frag[at + e], half_exp), unscale - half_exp);
            let i = base_c + row * params.n + col;
            if (BIAS) {
                v += bias[col];
            }
            if (ADD) {
                v += addend[i];
            }
            c[i] = act_forward(ACT, v);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG_SIZE)
fn matmul_coop(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let block = block_of(wg, nwg, (params.n + BN - 1u) / BN, (params.m + BM - 1u) / BM);
    // The workgroups past the last block compute the last matrix's and store nothing: naga
    // takes cooperative-matrix operations after a return for non-uniform.
    let batch = min(block.z, params.batch - 1u);
    let base_a = batch * params.stride_a;
    let base_b = batch * params.stride_b;
    let m0 = block.y * BM;
    let n0 = block.x * BN;
    // This subgroup's 32 x 32 part: rows sm .. sm + 32, columns sn .. sn + 32 of the block.
    let sm = (sg / SUBGROUPS_N) * 32u;
    let sn = (sg % SUBGROUPS_N) * 32u;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    // Where the lows start: in the staged slice, or in the operand's buffer.
    let lows_a = select(params.lows_a, A_SLICE, STAGE);
    let lows_b = select(params.lows_b, B_SLICE, STAGE);
    if (STAGE) {
        fetch(base_a, base_b, m0, n0, 0u, lid);
    }
    for (var k0 = 0u; k0 < params.k_pad; k0 += BK) {
        // Fragment coordinates: within the slice when staged, within the matrix otherwise.
        var fm = m0 + sm;
        var fn_ = n0 + sn;
        var fk = k0;
        if (STAGE) {
            // The previous slice's fragments are loaded before the tiles are overwritten.
            workgroupBarrier();
            store_slice(lid);
            workgroupBarrier();
            if (k0 + BK < params.k_pad) {
                fetch(base_a, base_b, m0, n0, k0 + BK, lid);
            }
            fm = sm;
            fn_ = sn;
            fk = 0u;
        }
        for (var kk = 0u; kk < BK; kk += 16u) {
            let k = fk + kk;
            let m1 = fm + 16u;
            let n1 = fn_ + 16u;
            let a0h = load_a(0u, base_a, fm, k);
            let a0l = load_a(lows_a, base_a, fm, k);
            let a1h = load_a(0u, base_a, m1, k);
            let a1l = load_a(lows_a, base_a, m1, k);
            let b0h = load_b(0u, base_b, k, fn_);
            let b0l = load_b(lows_b, base_b, k, fn_);
            let b1h = load_b(0u, base_b, k, n1);
            let b1l = load_b(lows_b, base_b, k, n1);
            // The small terms first, into each accumulator.
            c00 = coopMultiplyAdd(a0l, b0h, c00);
            c00 = coopMultiplyAdd(a0h, b0l, c00);
            c00 = coopMultiplyAdd(a0h, b0h, c00);
            c01 = coopMultiplyAdd(a0l, b1h, c01);
            c01 = coopMultiplyAdd(a0h, b1l, c01);
            c01 = coopMultiplyAdd(a0h, b1h, c01);
            c10 = coopMultiplyAdd(a1l, b0h, c10);
            c10 = coopMultiplyAdd(a1h, b0l, c10);
            c10 = coopMultiplyAdd(a1h, b0h, c10);
            c11 = coopMultiplyAdd(a1l, b1h, c11);
            c11 = coopMultiplyAdd(a1h, b1l, c11);
            c11 = coopMultiplyAdd(a1h, b1h, c11);
        }
    }
    // The exponents that undo both operands' scales (see split_f16.wgsl).
    let unscale = i32(scales_a[params.unscale]) + i32(scales_b[params.unscale]);
    let base_c = batch * params.stride_c;
    let m = m0 + sm;
    let n = n0 + sn;
    if (block.z < params.batch) {
        emit(c00, sg, lane, base_c, m, n, unscale);
        emit(c01, sg, lane, base_c, m, n + 16u, unscale);
        emit(c10, sg, lane, base_c, m + 16u, n, unscale);
        emit(c11, sg, lane, base_c, m + 16u, n + 16u, unscale);
    }
}
