// Batched, register-tiled matrix multiply with a fused epilogue:
//   C[b] = act(op(A[b]) op(B[b]) + bias + addend[b]),  op(A) is M x K, op(B) is K x N, C is M x N row-major.
// A is stored M x K (TRANS_A false) or K x M (true); B is stored K x N (TRANS_B false) or
// N x K (true). A batch stride of 0 broadcasts one matrix over the batch.
//
// Each workgroup computes a BM x BN block of C from K-slices of BK staged in workgroup memory;
// each invocation computes PER x PER outputs held in registers. With PER = 8 they are two 4-row
// by two 4-column quarters spaced BM/2 and BN/2 apart, so that its workgroup-memory reads are
// conflict-free vec4s; PER = 4 (one quarter) trades register reuse for four times the
// invocations, for outputs too small to fill a large GPU with 8 x 8 per invocation.
// VEC_A / VEC_B load global memory as vec4 when the launcher has checked that the contiguous
// dimension is a multiple of 4 and the bases are 16-byte aligned. Out-of-range elements load as
// 0, which keeps every shape (1 x 1 x 1, sizes off the tile grid) correct.
//
// SPLIT > 1 splits K into SPLIT parts of k_part (a multiple of BK) for products whose outputs
// are too few to fill a large GPU: block z = batch * SPLIT + part sums its part of K and
// stores the raw sums to c at part * split_stride (a scratch buffer); matmul_split.wgsl adds the
// parts in order and applies the epilogue.
//
// Constants defined by the launcher: BM, BN, BK, PER, SPLIT, TRANS_A, TRANS_B, VEC_A, VEC_B, BIAS,
// ADD, ACT. The addend has C's layout (a DEQ's input injection, a residual stream).
// Concatenated after activation.wgsl and block_grid.wgsl.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    k_part: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    split_stride: u32,
    // Matrices of the batch times SPLIT: the block grid's third axis.
    layers: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> addend: array<f32>;
@group(0) @binding(7) var<storage, read_write> c: array<f32>;

const THREADS_N: u32 = BN / PER;
const WG_SIZE: u32 = (BM / PER) * (BN / PER);

// K-major tiles: as_[kk * BM/4 + m/4] holds op(A)[m0 + m .. m0 + m + 4, k0 + kk].
var<workgroup> as_: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> bs_: array<vec4<f32>, BK * BN / 4u>;

// Each K-slice is staged in two steps so that the global reads of the next slice are in flight
// while the current one is multiplied: fetch_* reads an invocation's share of the slice into
// registers, store_* writes it into the workgroup tile. Shares: A_VECS vec4s (or A_SCALARS
// scalars) of op(A), B_VECS (or B_SCALARS) of op(B); the launcher checks that WG_SIZE divides them.
const A_VECS: u32 = BK * BM / 4u / WG_SIZE;
const A_SCALARS: u32 = BK * BM / WG_SIZE;
const B_VECS: u32 = BK * BN / 4u / WG_SIZE;
const B_SCALARS: u32 = BK * BN / WG_SIZE;
var<private> a_vecs: array<vec4<f32>, A_VECS>;
var<private> a_scalars: array<f32, A_SCALARS>;
var<private> b_vecs: array<vec4<f32>, B_VECS>;
var<private> b_scalars: array<f32, B_SCALARS>;

// Reads this invocation's share of op(A)[m0.., k0..]; elements at m >= M or k >= k_end read as 0.
fn fetch_a(base: u32, m0: u32, k0: u32, k_end: u32, lid: u32) {
    let M = params.m;
    let K = params.k;
    if (VEC_A) {
        for (var i = 0u; i < A_VECS; i++) {
            let idx = lid + i * WG_SIZE;
            var m: u32;
            var k: u32;
            if (TRANS_A) {
                // Stored K x M: a vec4 runs along m, the tile's fast axis.
                m = m0 + (idx % (BM / 4u)) * 4u;
                k = k0 + idx / (BM / 4u);
            } else {
                // Stored M x K: a vec4 runs along k.
                m = m0 + idx / (BK / 4u);
                k = k0 + (idx % (BK / 4u)) * 4u;
            }
            var v = vec4<f32>(0.0);
            if (m < M && k < k_end) {
                v = a4[(base + select(m * K + k, k * M + m, TRANS_A)) / 4u];
            }
            a_vecs[i] = v;
        }
    } else {
        for (var i = 0u; i < A_SCALARS; i++) {
            let idx = lid + i * WG_SIZE;
            var m: u32;
            var k: u32;
            if (TRANS_A) {
                m = m0 + idx % BM;
                k = k0 + idx / BM;
            } else {
                m = m0 + idx / BK;
                k = k0 + idx % BK;
            }
            var v = 0.0;
            if (m < M && k < k_end) {
                v = a[base + select(m * K + k, k * M + m, TRANS_A)];
            }
            a_scalars[i] = v;
        }
    }
}

// Writes the share fetched by fetch_a into the K-major tile as_.
fn store_a(lid: u32) {
    if (VEC_A) {
        for (var i = 0u; i < A_VECS; i++) {
            let idx = lid + i * WG_SIZE;
            let v = a_vecs[i];
            if (TRANS_A) {
                as_[idx] = v;
            } else {
                // Transposed into the tile on the way in.
                let mm = idx / (BK / 4u);
                let kk = (idx % (BK / 4u)) * 4u;
                as_[kk * (BM / 4u) + mm / 4u][mm % 4u] = v.x;
                as_[(kk + 1u) * (BM / 4u) + mm / 4u][mm % 4u] = v.y;
                as_[(kk + 2u) * (BM / 4u) + mm / 4u][mm % 4u] = v.z;
                as_[(kk + 3u) * (BM / 4u) + mm / 4u][mm % 4u] = v.w;
            }
        }
    } else {
        for (var i = 0u; i < A_SCALARS; i++) {
            let idx = lid + i * WG_SIZE;
            var mm: u32;
            var kk: u32;
            if (TRANS_A) {
                mm = idx % BM;
                kk = idx / BM;
            } else {
                mm = idx / BK;
                kk = idx % BK;
            }
            as_[kk * (BM / 4u) + mm / 4u][mm % 4u] = a_scalars[i];
        }
    }
}

// Reads this invocation's share of op(B)[k0.., n0..]; elements at n >= N or k >= k_end read as 0.
fn fetch_b(base: u32, n0: u32, k0: u32, k_end: u32, lid: u32) {
    let N = params.n;
    let K = params.k;
    if (VEC_B) {
        for (var i = 0u; i < B_VECS; i++) {
            let idx = lid + i * WG_SIZE;
            var n: u32;
            var k: u32;
            if (TRANS_B) {
                // Stored N x K: a vec4 runs along k.
                n = n0 + idx / (BK / 4u);
                k = k0 + (idx % (BK / 4u)) * 4u;
            } else {
                // Stored K x N: a vec4 runs along n, the tile's fast axis.
                n = n0 + (idx % (BN / 4u)) * 4u;
                k = k0 + idx / (BN / 4u);
            }
            var v = vec4<f32>(0.0);
            if (n < N && k < k_end) {
                v = b4[(base + select(k * N + n, n * K + k, TRANS_B)) / 4u];
            }
            b_vecs[i] = v;
        }
    } else {
        for (var i = 0u; i < B_SCALARS; i++) {
            let idx = lid + i * WG_SIZE;
            var n: u32;
            var k: u32;
            if (TRANS_B) {
                n = n0 + idx / BK;
                k = k0 + idx % BK;
            } else {
                n = n0 + idx % BN;
                k = k0 + idx / BN;
            }
            var v = 0.0;
            if (n < N && k < k_end) {
                v = b[base + select(k * N + n, n * K + k, TRANS_B)];
            }
            b_scalars[i] = v;
        }
    }
}

// Writes the share fetched by fetch_b into the K-major tile bs_.
fn store_b(lid: u32) {
    if (VEC_B) {
        for (var i = 0u; i < B_VECS; i++) {
            let idx = lid + i * WG_SIZE;
            let v = b_vecs[i];
            if (!TRANS_B) {
                bs_[idx] = v;
            } else {
                let nn = idx / (BK / 4u);
                let kk = (idx % (BK / 4u)) * 4u;
                bs_[kk * (BN / 4u) + nn / 4u][nn % 4u] = v.x;
                bs_[(kk + 1u) * (BN / 4u) + nn / 4u][nn % 4u] = v.y;
                bs_[(kk + 2u) * (BN / 4u) + nn / 4u][nn % 4u] = v.z;
                bs_[(kk + 3u) * (BN / 4u) + nn / 4u][nn % 4u] = v.w;
            }
        }
    } else {
        for (var i = 0u; i < B_SCALARS; i++) {
            let idx = lid + i * WG_SIZE;
            var nn: u32;
            var kk: u32;
            if (TRANS_B) {
                nn = idx / BK;
                kk = idx % BK;
            } else {
                nn = idx % BN;
                kk = idx / BN;
            }
            bs_[kk * (BN / 4u) + nn / 4u][nn % 4u] = b_scalars[i];
        }
    }
}

// Applies bias, addend and activation to four outputs of row m starting at column n, and stores
// them; with SPLIT > 1 it stores the raw partial sums at `base` in the scratch buffer instead.
fn store4(base: u32, m: u32, n: u32, acc: vec4<f32>) {
    if (m >= params.m) {
        return;
    }
    var v = acc;
    for (var j = 0u; j < 4u; j++) {
        let col = n + j;
        if (col < params.n) {
            let at = base + m * params.n + col;
            if (SPLIT > 1u) {
                c[at] = v[j];
                continue;
            }
            var x = v[j];
            if (BIAS) {
                x += bias[col];
            }
            if (ADD) {
                x += addend[at];
            }
            c[at] = act_forward(ACT, x);
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let block = block_of(wg, nwg, (params.n + BN - 1u) / BN, (params.m + BM - 1u) / BM);
    if (block.z >= params.layers) {
        return;
    }
    let batch = block.z / SPLIT;
    let part = block.z % SPLIT;
    let k_begin = part * params.k_part;
    let k_end = min(params.k, k_begin + params.k_part);
    let m0 = block.y * BM;
    let n0 = block.x * BN;
    let tx = lid % THREADS_N;
    let ty = lid / THREADS_N;
    let base_a = batch * params.stride_a;
    let base_b = batch * params.stride_b;

    // PER = 8: acc[2r + h]: row r of the invocation's 8 (r < 4: ty*4 + r; else BM/2 + ty*4 + r - 4),
    // columns of quarter h (h = 0: tx*4..; h = 1: BN/2 + tx*4..). PER = 4: acc[r]: row ty*4 + r,
    // columns tx*4 ...
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = vec4<f32>(0.0);
    }

    fetch_a(base_a, m0, k_begin, k_end, lid);
    fetch_b(base_b, n0, k_begin, k_end, lid);
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        store_a(lid);
        store_b(lid);
        workgroupBarrier();
        if (k0 + BK < k_end) {
            fetch_a(base_a, m0, k0 + BK, k_end, lid);
            fetch_b(base_b, n0, k0 + BK, k_end, lid);
        }
        for (var kk = 0u; kk < BK; kk++) {
            if (PER == 4u) {
                let a0 = as_[kk * (BM / 4u) + ty];
                let b0 = bs_[kk * (BN / 4u) + tx];
                acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
                acc[1] = fma(vec4<f32>(a0.y), b0, acc[1]);
                acc[2] = fma(vec4<f32>(a0.z), b0, acc[2]);
                acc[3] = fma(vec4<f32>(a0.w), b0, acc[3]);
            } else {
                let a0 = as_[kk * (BM / 4u) + ty];
                let a1 = as_[kk * (BM / 4u) + ty + BM / 8u];
                let b0 = bs_[kk * (BN / 4u) + tx];
                let b1 = bs_[kk * (BN / 4u) + tx + BN / 8u];
                acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
                acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
                acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
                acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
                acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
                acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
                acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
                acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
                acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
                acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
                acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
                acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
                acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
                acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
                acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
                acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
            }
        }
        workgroupBarrier();
    }

    let base_c = part * params.split_stride + batch * params.stride_c;
    if (PER == 4u) {
        for (var r = 0u; r < 4u; r++) {
            store4(base_c, m0 + ty * 4u + r, n0 + tx * 4u, acc[r]);
        }
        return;
    }
    for (var r = 0u; r < 8u; r++) {
        let m = m0 + select(BM / 2u + ty * 4u + r - 4u, ty * 4u + r, r < 4u);
        store4(base_c, m, n0 + tx * 4u, acc[2u * r]);
        store4(base_c, m, n0 + BN / 2u + tx * 4u, acc[2u * r + 1u]);
    }
}
