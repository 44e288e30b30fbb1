// Limited-memory Broyden (the "good" inverse update of Bai et al.'s DEQ solver), one row per
// workgroup. It seeks g(x) = f(x) - x = 0 with an inverse-Jacobian estimate
//     B = -I + sum_i u_i v_i^T
// over a ring of at most M rank-one terms (the oldest is dropped to make room), stepping
// x <- x - B g(x). After a step dx that changed the residual by dg it adds
//     v = B^T dx,  u = (dx - B dg) / (v . dg),
// so that the new B maps dg to dx. Every inner product the update needs comes from one pass
// over the row (v . dg and v . g expand into the stored terms' products), and the second pass
// writes u, v and the step together. A denominator lost to cancellation skips the rank-one
// update for that step (counted in stats[STAT_FALLBACKS]), as does a residual change at the
// level of f32 rounding, which carries no secant information. Concatenated after
// deq_common.wgsl.

@group(0) @binding(6) var<storage, read_write> us: array<f32>;      // [rows, M, width]
@group(0) @binding(7) var<storage, read_write> vs: array<f32>;      // [rows, M, width]
@group(0) @binding(8) var<storage, read_write> prev_dx: array<f32>; // [rows, width]
@group(0) @binding(9) var<storage, read_write> prev_g: array<f32>;  // [rows, width]

// a_i = dx . u_i, b_i = v_i . dg, c_i = v_i . g, then denominator, c of the new term, ok.
// a and b run over the terms the new one joins (the ring less its oldest when full); c over
// every stored term, since a skipped update leaves B as it was.
var<workgroup> coef: array<f32, 3u * M + 3u>;
var<workgroup> ring: u32;

// Whether stored term i stays beside a new one (the oldest makes room when the ring is full).
fn in_ring(i: u32, terms: u32, next: u32) -> bool {
    return i < terms && !(terms == M && i == next);
}

@compute @workgroup_size(WG)
fn broyden(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = stepping_row(wg, nwg, lid);
    if (row == NO_ROW) {
        return;
    }
    let w = params.width;
    let base = row * w;
    let hist = row * M * w;
    if (params.iter == 0u) {
        // B = -I: a plain step.
        for (var j = lid; j < w; j += WG) {
            let x = z[base + j];
            let g = fz[base + j] - x;
            prev_g[base + j] = g;
            prev_dx[base + j] = g;
            z[base + j] = x + g;
        }
        return;
    }
    if (lid == 0u) {
        ring = state[row].terms | (state[row].next << 16u);
    }
    let packed = workgroupUniformLoad(&ring);
    let terms = packed & 0xffffu;
    let next = packed >> 16u;

    var a: array<f32, M>;
    var b: array<f32, M>;
    var c: array<f32, M>;
    for (var i = 0u; i < M; i++) {
        a[i] = 0.0;
        b[i] = 0.0;
        c[i] = 0.0;
    }
    var d_dg = 0.0;
    var d_g = 0.0;
    var dg_dg = 0.0;
    var g_g = 0.0;
    for (var j = lid; j < w; j += WG) {
        let g = fz[base + j] - z[base + j];
        let dx = prev_dx[base + j];
        let dg = g - prev_g[base + j];
        d_dg += dx * dg;
        d_g += dx * g;
        dg_dg += dg * dg;
        g_g += g * g;
        for (var i = 0u; i < M; i++) {
            if (i < terms) {
                let u = us[hist + i * w + j];
                let v = vs[hist + i * w + j];
                c[i] += v * g;
                if (in_ring(i, terms, next)) {
                    a[i] += dx * u;
                    b[i] += v * dg;
                }
            }
        }
    }
    for (var i = 0u; i < M; i++) {
        red[lid * NV + i] = a[i];
        red[lid * NV + M + i] = b[i];
        red[lid * NV + 2u * M + i] = c[i];
    }
    red[lid * NV + 3u * M] = d_dg;
    red[lid * NV + 3u * M + 1u] = d_g;
    red[lid * NV + 3u * M + 2u] = dg_dg;
    red[lid * NV + 3u * M + 3u] = g_g;
    reduce(NV, lid);
    if (lid == 0u) {
        var denom = -red[3u * M];
        var c_new = -red[3u * M + 1u];
        var size = abs(red[3u * M]);
        for (var i = 0u; i < M; i++) {
            coef[i] = red[i];
            coef[M + i] = red[M + i];
            coef[2u * M + i] = red[2u * M + i];
            if (in_ring(i, terms, next)) {
                denom += red[i] * red[M + i];
                c_new += red[i] * red[2u * M + i];
                size += abs(red[i] * red[M + i]);
            }
        }
        // False for NaN, and when cancellation left the denominator at rounding level.
        let informative = red[3u * M + 2u] > 1e-10 * red[3u * M + 3u];
        let ok = informative && abs(denom) > 1e-6 * size && abs(c_new / denom) < 3.0e38;
        coef[3u * M] = denom;
        coef[3u * M + 1u] = c_new;
        coef[3u * M + 2u] = select(0.0, 1.0, ok);
        if (ok) {
            state[row].next = (next + 1u) % M;
            state[row].terms = min(terms + 1u, M);
        } else {
            atomicAdd(&stats[STAT_FALLBACKS], 1u);
        }
    }
    workgroupBarrier();
    let denom = coef[3u * M];
    let c_new = coef[3u * M + 1u];
    let ok = coef[3u * M + 2u] != 0.0;
    for (var j = lid; j < w; j += WG) {
        let x = z[base + j];
        let g = fz[base + j] - x;
        let dx = prev_dx[base + j];
        let dg = g - prev_g[base + j];
        var v_new = -dx;
        var u_num = dx + dg;
        var step = g;
        for (var i = 0u; i < M; i++) {
            if (in_ring(i, terms, next)) {
                let u = us[hist + i * w + j];
                v_new += coef[i] * vs[hist + i * w + j];
                u_num -= coef[M + i] * u;
                step -= coef[2u * M + i] * u;
            }
        }
        if (ok) {
            let u_new = u_num / denom;
            us[hist + next * w + j] = u_new;
            vs[hist + next * w + j] = v_new;
            step -= c_new * u_new;
        } else if (terms == M) {
            // No update: B keeps its oldest term too.
            step -= coef[2u * M + next] * us[hist + next * w + j];
        }
        prev_dx[base + j] = step;
        prev_g[base + j] = g;
        z[base + j] = x + step;
    }
}
