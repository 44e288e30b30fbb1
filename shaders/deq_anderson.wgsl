// Anderson acceleration, one row per workgroup, with a ring of the last M iterates x_i and
// residuals g_i = f(x_i) - x_i. Each step stores the new pair in slot k mod M, updates row and
// column of the Gram matrix H = G G^T of the ring, solves
//     [ 0   1^T          ] [ nu    ]   [ 1 ]
//     [ 1   H + lambda I ] [ alpha ] = [ 0 ]
// (the weights alpha summing to 1 that minimise ||G^T alpha||^2 + lambda ||alpha||^2, lambda
// relative to the largest diagonal entry of H so that it never dominates as residuals shrink;
// torchdeq adds it unscaled, which turns late steps into plain averages) by Gaussian
// elimination with partial pivoting in one invocation, and mixes
//     z <- sum_i alpha_i (x_i + beta g_i).
// With one pair stored, and for the first `warmup` iterations, this is the step z <- x + beta g. A pivot below the elimination's
// rounding level, or weights that are not finite, make it a plain step instead, counted in
// stats[STAT_FALLBACKS]. Concatenated after deq_common.wgsl.

@group(0) @binding(6) var<storage, read_write> xs: array<f32>;   // [rows, M, width]
@group(0) @binding(7) var<storage, read_write> gs: array<f32>;   // [rows, M, width]
@group(0) @binding(8) var<storage, read_write> gram: array<f32>; // [rows, M, M]

const COLS: u32 = M + 2u;
var<workgroup> sys: array<f32, (M + 1u) * (M + 2u)>;
var<workgroup> alpha: array<f32, M>;

// Solves the bordered system of `count` pairs into alpha; false when it is singular.
fn solve_weights(gbase: u32, count: u32) -> bool {
    let n = count + 1u;
    var diag = 0.0;
    for (var i = 0u; i < count; i++) {
        diag = max(diag, gram[gbase + i * M + i]);
    }
    // H is scaled to unit largest diagonal: alpha is unchanged, and pivots compare with the
    // border's ones on an equal footing.
    let inv = 1.0 / diag;
    var scale = 1.0;
    for (var r = 0u; r < n; r++) {
        for (var c = 0u; c <= n; c++) {
            var v = 0.0;
            if (r == 0u) {
                v = select(1.0, 0.0, c == 0u || c == n);
                if (c == n) {
                    v = 1.0;
                }
            } else if (c == 0u) {
                v = 1.0;
            } else if (c < n) {
                v = gram[gbase + (r - 1u) * M + c - 1u] * inv + select(0.0, params.lambda, r == c);
            }
            sys[r * COLS + c] = v;
            scale = max(scale, abs(v));
        }
    }
    let tiny = 1.2e-7 * f32(n) * scale;
    for (var p = 0u; p < n; p++) {
        var pivot = p;
        for (var r = p + 1u; r < n; r++) {
            if (abs(sys[r * COLS + p]) > abs(sys[pivot * COLS + p])) {
                pivot = r;
            }
        }
        // Also false for NaN.
        if (!(abs(sys[pivot * COLS + p]) > tiny)) {
            return false;
        }
        for (var c = 0u; c <= n; c++) {
            let t = sys[p * COLS + c];
            sys[p * COLS + c] = sys[pivot * COLS + c];
            sys[pivot * COLS + c] = t;
        }
        for (var r = p + 1u; r < n; r++) {
            let f = sys[r * COLS + p] / sys[p * COLS + p];
            for (var c = p; c <= n; c++) {
                sys[r * COLS + c] -= f * sys[p * COLS + c];
            }
        }
    }
    var sum = 0.0;
    for (var r = n; r > 0u; r--) {
        let i = r - 1u;
        var v = sys[i * COLS + n];
        for (var c = i + 1u; c < n; c++) {
            v -= sys[i * COLS + c] * sys[c * COLS + n];
        }
        v = v / sys[i * COLS + i];
        sys[i * COLS + n] = v;
        if (i > 0u) {
            alpha[i - 1u] = v;
            sum += abs(v);
        }
    }
    // A NaN or infinity anywhere makes the sum non-finite; comparisons with it are false.
    return sum < 3.0e38;
}

@compute @workgroup_size(WG)
fn anderson(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = stepping_row(wg, nwg, lid);
    if (row == NO_ROW) {
        return;
    }
    let w = params.width;
    let base = row * w;
    let hist = row * M * w;
    let slot = params.iter % M;
    let count = min(params.iter + 1u, M);
    var dots: array<f32, M>;
    for (var i = 0u; i < M; i++) {
        dots[i] = 0.0;
    }
    for (var j = lid; j < w; j += WG) {
        let x = z[base + j];
        let g = fz[base + j] - x;
        xs[hist + slot * w + j] = x;
        gs[hist + slot * w + j] = g;
        for (var i = 0u; i < count; i++) {
            let gi = select(gs[hist + i * w + j], g, i == slot);
            dots[i] += g * gi;
        }
    }
    for (var i = 0u; i < count; i++) {
        red[lid * NV + i] = dots[i];
    }
    reduce(count, lid);
    if (lid == 0u) {
        let gbase = row * M * M;
        for (var i = 0u; i < count; i++) {
            gram[gbase + slot * M + i] = red[i];
            gram[gbase + i * M + slot] = red[i];
        }
        let warming = params.iter < params.warmup;
        if (warming || !solve_weights(gbase, count)) {
            for (var i = 0u; i < M; i++) {
                alpha[i] = select(0.0, 1.0, i == slot);
            }
            if (count > 1u && !warming) {
                atomicAdd(&stats[STAT_FALLBACKS], 1u);
            }
        }
    }
    workgroupBarrier();
    for (var j = lid; j < w; j += WG) {
        var v = 0.0;
        for (var i = 0u; i < count; i++) {
            v += alpha[i] * (xs[hist + i * w + j] + params.mix * gs[hist + i * w + j]);
        }
        z[base + j] = v;
    }
}
