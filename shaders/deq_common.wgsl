// Shared by the DEQ solver steps (deq_fixed_point, deq_anderson, deq_broyden): one workgroup of
// WG invocations per row (sample), launched on a 2-D grid. A step first measures the row's
// residual ||f(z) - z|| (divided by ||f(z)|| when RELATIVE), keeps f(z) at the iterate with the
// lowest residual in `best` (one evaluation further along than z, which is not wasted), raises
// the iteration's entry of the residual trace to it, and freezes the row once it reaches the
// tolerance; only rows still running go on to the method's update.
//
// stats holds, as u32: [0] rows done, [1] fallbacks (singular Anderson mixings replaced by
// plain steps, Broyden updates skipped), [2 + k] the bits of the largest residual measured at iteration k
// (residuals are non-negative, so their bits order as the values do; NaN orders above +inf).
//
// Constants defined by the launcher: NV (values reduced at once), M (memory). Concatenated
// after nan.wgsl.

struct Params {
    rows: u32,
    width: u32,
    iter: u32,
    relative: u32,
    tol: f32,
    // Damping of the fixed-point step, or Anderson's beta.
    mix: f32,
    // Anderson's regulariser and warm-up (plain steps before mixing).
    lambda: f32,
    warmup: u32,
}

struct RowState {
    best: f32,
    done: u32,
    evals: u32,
    // Broyden's ring of rank-one terms: how many are stored, and the slot written next.
    terms: u32,
    next: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 64u;
const STAT_DONE: u32 = 0u;
const STAT_FALLBACKS: u32 = 1u;
const STAT_TRACE: u32 = 2u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> fz: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> best: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<RowState>;
@group(0) @binding(5) var<storage, read_write> stats: array<atomic<u32>>;

var<workgroup> red: array<f32, WG * NV>;
var<workgroup> decision: u32;
var<workgroup> rescale: u32;

// Sums red[lid * NV + v] over the workgroup for every v < count; the totals end in red[v].
fn reduce(count: u32, lid: u32) {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            for (var v = 0u; v < count; v++) {
                red[lid * NV + v] += red[(lid + s) * NV + v];
            }
        }
        workgroupBarrier();
    }
}

// The largest of red[lid * NV] over the workgroup, left in red[0].
fn reduce_max(lid: u32) {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            red[lid * NV] = max(red[lid * NV], red[(lid + s) * NV]);
        }
        workgroupBarrier();
    }
}

// ||f(z) - z||^2 and ||f(z)||^2 of the row, in red[0] and red[1]. Squares of entries past 1.8e19
// overflow and those below 1e-19 vanish, which would make the relative residual 0 for an iterate
// that blew up. For the relative residual such rows are summed again scaled by their largest
// entry (only the ratio counts); an absolute residual past f32's range is rightly infinite.
fn row_sums(base: u32, lid: u32) {
    var dd = 0.0;
    var ff = 0.0;
    for (var j = lid; j < params.width; j += WG) {
        let f = fz[base + j];
        let d = f - z[base + j];
        dd += d * d;
        ff += f * f;
    }
    red[lid * NV] = dd;
    red[lid * NV + 1u] = ff;
    reduce(2u, lid);
    if (lid == 0u) {
        let out_of_range = !is_finite(red[0]) || !is_finite(red[1]) || red[1] < 1e-30
            || red[0] < 1e-30;
        rescale = select(0u, 1u, params.relative != 0u && out_of_range);
    }
    if (workgroupUniformLoad(&rescale) == 0u) {
        return;
    }
    // The largest of |f| and |z|, not |f - z|, which overflows for large values of opposite
    // signs: scaled, |f - z| is then at most 2.
    var top = 0.0;
    for (var j = lid; j < params.width; j += WG) {
        top = max(top, max(abs(fz[base + j]), abs(z[base + j])));
    }
    red[lid * NV] = top;
    reduce_max(lid);
    // A row of zeros stays unscaled (its sums are 0); a NaN or infinite entry makes the sums NaN.
    let scale = select(1.0 / red[0], 1.0, red[0] == 0.0);
    workgroupBarrier();
    dd = 0.0;
    ff = 0.0;
    for (var j = lid; j < params.width; j += WG) {
        let f = fz[base + j] * scale;
        let d = f - z[base + j] * scale;
        dd += d * d;
        ff += f * f;
    }
    red[lid * NV] = dd;
    red[lid * NV + 1u] = ff;
    reduce(2u, lid);
}

// Measures the row's residual and does the bookkeeping above. Returns (uniformly across the
// workgroup) whether the row takes a step.
fn measure(row: u32, lid: u32) -> bool {
    if (lid == 0u) {
        decision = state[row].done;
    }
    if (workgroupUniformLoad(&decision) != 0u) {
        return false;
    }
    let base = row * params.width;
    row_sums(base, lid);
    if (lid == 0u) {
        var res = sqrt(red[0]);
        if (params.relative != 0u) {
            // A fixed point at zero (f(z) = z = 0) has a relative residual of 0.
            res = select(res / sqrt(red[1]), 0.0, red[0] == 0.0);
        }
        // Comparisons with NaN are false: a NaN iterate is never kept, nor counted as done.
        let improved = res < state[row].best;
        let done = res <= params.tol;
        if (improved) {
            state[row].best = res;
        }
        state[row].evals = params.iter + 1u;
        atomicMax(&stats[STAT_TRACE + params.iter], bitcast<u32>(res));
        if (done) {
            state[row].done = 1u;
            atomicAdd(&stats[STAT_DONE], 1u);
        }
        decision = select(0u, 1u, improved) | select(0u, 2u, done);
    }
    let flags = workgroupUniformLoad(&decision);
    if ((flags & 1u) != 0u) {
        for (var j = lid; j < params.width; j += WG) {
            best[base + j] = fz[base + j];
        }
    }
    return (flags & 2u) == 0u;
}

// The workgroup's row (on the 2-D grid), when it exists and takes a step this iteration.
fn stepping_row(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows || !measure(row, lid)) {
        return NO_ROW;
    }
    return row;
}

const NO_ROW: u32 = 0xffffffffu;
