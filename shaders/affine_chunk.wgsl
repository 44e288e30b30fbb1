// The chunked (work-efficient) scan of the affine recurrence of affine_scan.wgsl,
//   x[k] = A[k] x[k-1] + v[k],  k = 0 .. L-1,  x[-1] = 0  (A[0] unused: read as 0),
// batched over `batch` recurrences of W-vectors; storage [L, batch, W] for vectors.
// The L steps are cut into chunks of CHUNK; `chunk_compose` composes each chunk's maps into one,
//   x[end] = P x[start-1] + q,
// a doubling scan over the chunks (affine_scan.wgsl) gives every chunk's carry-in, and
// `chunk_apply` replays each chunk from its carry. Work is O(L W^3) instead of the doubling
// scan's O(L W^3 log L), at the price of CHUNK-long chains inside each invocation.
//
// Two ways to run the chains. `chunk_compose` and `chunk_apply` share each step among a
// workgroup (an invocation per entry of the map, or per row of the vector) and synchronise it
// with barriers. `chunk_compose_registers` and `chunk_apply_registers` keep a whole column of
// the map, or the whole vector, in one invocation's registers: the columns of [P | q] evolve
// independently (each is multiplied by A[k]), so the chain needs no barrier, at W + 1 (compose)
// and 1 (apply) invocations per (chunk, batch entry) instead of W (W + 1) and W.
//
// The maps come dense (ROW_SCALED false: A [L, batch, W, W] in `a`) or as a deep MLP's layer
// Jacobians (ROW_SCALED true: A[k] = diag(s[k]) Wt[k], the weights Wt [L, W, W] in `a`, shared by
// the batch, and s [L, batch, W] in `scales`), which saves writing and reading L batch W^2 floats.
// With REVERSE the kernels solve the transposed recurrence that runs backward,
//   y[l] = A[l+1]^T y[l+1] + v[l],  l = L-1 .. 0,  y[L] = 0,
// as the forward one of step k = L-1-l, whose map is A[L-k]^T, reading v and writing x at l: the
// chunks' maps and carries are in k's order, the inputs and the result in l's.
//
// Constants defined by the launcher: W (block width), CHUNK, ROW_SCALED, REVERSE, GROUPS
// (chunk-batch pairs per workgroup), PER (entries of the augmented maps per invocation, compose;
// 1 for apply) and SHARED (floats of workgroup memory: GROUPS maps for compose, GROUPS vectors for
// apply; the register kernels use none of the three, which are 1 for them).

struct Params {
    len: u32,
    batch: u32,
    chunks: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
// compose: P per (chunk, batch) entry; apply: the chunk scan's solution (carries).
@group(0) @binding(4) var<storage, read_write> p_or_carry: array<f32>;
// compose: q per (chunk, batch) entry; apply: x.
@group(0) @binding(5) var<storage, read_write> q_or_x: array<f32>;

// Where step k's vectors live: step k itself, or l = L-1-k when reversed.
fn vector_at(k: u32, b: u32, i: u32) -> u32 {
    let step = select(k, params.len - 1u - k, REVERSE);
    return (step * params.batch + b) * W + i;
}

// Step k's map (k >= 1) is A[src] or A[src]^T with src = k or L-k. Entry (i, m) of it is
// row_scale * base * column_scale:
fn map_source(k: u32) -> u32 {
    return select(k, params.len - k, REVERSE);
}

// ... the dense entry, or the weight, at (i, m) of the (possibly transposed) map,
fn map_base(src: u32, b: u32, i: u32, m: u32) -> f32 {
    let r = select(i, m, REVERSE);
    let c = select(m, i, REVERSE);
    if (ROW_SCALED) {
        return a[(src * W + r) * W + c];
    }
    return a[((src * params.batch + b) * W + r) * W + c];
}

// ... s[src] at row i of a forward map (1 otherwise),
fn row_scale(src: u32, b: u32, i: u32) -> f32 {
    if (ROW_SCALED && !REVERSE) {
        return scales[(src * params.batch + b) * W + i];
    }
    return 1.0;
}

// ... and s[src] at column m of a transposed one (1 otherwise).
fn column_scale(src: u32, b: u32, m: u32) -> f32 {
    if (ROW_SCALED && REVERSE) {
        return scales[(src * params.batch + b) * W + m];
    }
    return 1.0;
}

const E: u32 = W * (W + 1u); // entries of one augmented map [P | q]

// compose: GROUPS augmented maps [P | q], row-major W x (W + 1); apply: GROUPS current vectors.
var<workgroup> maps: array<f32, SHARED>;

// The (chunk, batch entry) a group works on; consecutive groups take consecutive batch entries
// so that their reads of A[k] are contiguous.
fn pair(wg: vec3<u32>, nwg: vec3<u32>, g: u32) -> vec2<u32> {
    let id = (wg.x + wg.y * nwg.x) * GROUPS + g;
    return vec2<u32>(id / params.batch, id % params.batch);
}

var<private> next: array<f32, PER>;

// Entry t of the workgroup's maps: group g's row i, column j (j == W is q), and its pair.
struct Entry {
    g: u32,
    i: u32,
    j: u32,
    cb: vec2<u32>,
}

fn entry(wg: vec3<u32>, nwg: vec3<u32>, t: u32) -> Entry {
    let g = t / E;
    let e = t % E;
    return Entry(g, e / (W + 1u), e % (W + 1u), pair(wg, nwg, g));
}

@compute @workgroup_size(256)
fn chunk_compose(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    // Start from the identity map [I | 0].
    for (var r = 0u; r < PER; r++) {
        let t = lid + r * 256u;
        if (t < GROUPS * E) {
            let e = t % E;
            maps[t] = select(0.0, 1.0, e / (W + 1u) == e % (W + 1u));
        }
    }
    workgroupBarrier();
    for (var step = 0u; step < CHUNK; step++) {
        // new [P | q] = A[k] [P | q] + [0 | v[k]] for the entries this invocation owns.
        for (var r = 0u; r < PER; r++) {
            let t = lid + r * 256u;
            var value = 0.0;
            if (t < GROUPS * E) {
                let en = entry(wg, nwg, t);
                let k = en.cb.x * CHUNK + step;
                if (en.cb.x < params.chunks && k < params.len) {
                    let b = en.cb.y;
                    if (en.j == W) {
                        value = v[vector_at(k, b, en.i)];
                    }
                    if (k > 0u) {
                        let src = map_source(k);
                        var sum = 0.0;
                        for (var m = 0u; m < W; m++) {
                            sum += map_base(src, b, en.i, m) * column_scale(src, b, m)
                                * maps[en.g * E + m * (W + 1u) + en.j];
                        }
                        value += row_scale(src, b, en.i) * sum;
                    }
                } else {
                    value = maps[t]; // past the end: the map stays as it is
                }
            }
            next[r] = value;
        }
        workgroupBarrier();
        for (var r = 0u; r < PER; r++) {
            let t = lid + r * 256u;
            if (t < GROUPS * E) {
                maps[t] = next[r];
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < PER; r++) {
        let t = lid + r * 256u;
        if (t < GROUPS * E) {
            let en = entry(wg, nwg, t);
            if (en.cb.x < params.chunks) {
                let row = en.cb.x * params.batch + en.cb.y;
                if (en.j == W) {
                    q_or_x[row * W + en.i] = maps[t];
                } else {
                    p_or_carry[(row * W + en.i) * W + en.j] = maps[t];
                }
            }
        }
    }
}

@compute @workgroup_size(256)
fn chunk_apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    // One invocation per row i of each group's vector.
    let g = lid / W;
    let i = lid % W;
    let in_group = g < GROUPS;
    let cb = pair(wg, nwg, min(g, GROUPS - 1u));
    let live = in_group && cb.x < params.chunks;
    if (live) {
        // Carry-in: the solution at the end of the previous chunk, 0 before the first.
        var carry = 0.0;
        if (cb.x > 0u) {
            carry = p_or_carry[((cb.x - 1u) * params.batch + cb.y) * W + i];
        }
        maps[g * W + i] = carry;
    }
    workgroupBarrier();
    for (var step = 0u; step < CHUNK; step++) {
        let k = cb.x * CHUNK + step;
        var value = 0.0;
        let run = live && k < params.len;
        if (run) {
            let b = cb.y;
            value = v[vector_at(k, b, i)];
            if (k > 0u) {
                let src = map_source(k);
                var sum = 0.0;
                for (var m = 0u; m < W; m++) {
                    sum += map_base(src, b, i, m) * column_scale(src, b, m) * maps[g * W + m];
                }
                value += row_scale(src, b, i) * sum;
            }
            q_or_x[vector_at(k, b, i)] = value;
        }
        workgroupBarrier();
        if (run) {
            maps[g * W + i] = value;
        }
        workgroupBarrier();
    }
}

// The invocation's (chunk, batch entry) pair and its index within the pair's `per_pair`
// invocations (the column j, for compose), for the register kernels (64 invocations per
// workgroup).
fn register_pair(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, per_pair: u32) -> vec3<u32> {
    let id = (wg.x + wg.y * nwg.x) * 64u + lid;
    let index = id / per_pair;
    return vec3<u32>(index / params.batch, index % params.batch, id % per_pair);
}

// One step of a chain held in registers: y = A[k] y, plus v[k] when `add_v` (step 0 has no
// map: y = v[0], or 0). The map's column scales are applied to y first, so that each row's sum
// is scaled once.
fn register_step(k: u32, b: u32, y: ptr<function, array<f32, W>>, add_v: bool) {
    let src = map_source(k);
    if (k > 0u) {
        for (var m = 0u; m < W; m++) {
            (*y)[m] *= column_scale(src, b, m);
        }
    }
    var stepped: array<f32, W>;
    for (var i = 0u; i < W; i++) {
        var value = select(0.0, v[vector_at(k, b, i)], add_v);
        if (k > 0u) {
            var sum = 0.0;
            for (var m = 0u; m < W; m++) {
                sum += map_base(src, b, i, m) * (*y)[m];
            }
            value += row_scale(src, b, i) * sum;
        }
        stepped[i] = value;
    }
    *y = stepped;
}

@compute @workgroup_size(64)
fn chunk_compose_registers(@builtin(workgroup_id) wg: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    // Column j of the chunk's augmented map [P | q] (j == W is q), from the identity's.
    let pair = register_pair(wg, nwg, lid, W + 1u);
    let chunk = pair.x;
    let j = pair.z;
    if (chunk >= params.chunks) {
        return;
    }
    var column: array<f32, W>;
    for (var i = 0u; i < W; i++) {
        column[i] = select(0.0, 1.0, i == j);
    }
    for (var step = 0u; step < CHUNK; step++) {
        let k = chunk * CHUNK + step;
        if (k >= params.len) {
            break;
        }
        register_step(k, pair.y, &column, j == W);
    }
    let row = chunk * params.batch + pair.y;
    for (var i = 0u; i < W; i++) {
        if (j == W) {
            q_or_x[row * W + i] = column[i];
        } else {
            p_or_carry[(row * W + i) * W + j] = column[i];
        }
    }
}

@compute @workgroup_size(64)
fn chunk_apply_registers(@builtin(workgroup_id) wg: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    // The chunk's vector, from its carry-in: the solution at the end of the previous chunk.
    let pair = register_pair(wg, nwg, lid, 1u);
    let chunk = pair.x;
    if (chunk >= params.chunks) {
        return;
    }
    var x: array<f32, W>;
    for (var i = 0u; i < W; i++) {
        x[i] = 0.0;
        if (chunk > 0u) {
            x[i] = p_or_carry[((chunk - 1u) * params.batch + pair.y) * W + i];
        }
    }
    for (var step = 0u; step < CHUNK; step++) {
        let k = chunk * CHUNK + step;
        if (k >= params.len) {
            break;
        }
        register_step(k, pair.y, &x, true);
        for (var i = 0u; i < W; i++) {
            q_or_x[vector_at(k, pair.y, i)] = x[i];
        }
    }
}
