// Batched tridiagonal solves by cyclic reduction and parallel cyclic reduction (CR+PCR), one
// workgroup per system, the whole system in workgroup memory. Equation i of a system reads
//   a[i] x[i-1] + b[i] x[i] + c[i] x[i+1] = d[i]    (a[0] and c[n-1] are ignored).
// Eliminating the neighbours at distance s from equation i (using equations i - s and i + s)
// leaves it coupled to i - 2s and i + 2s; out-of-range neighbours act as the identity equation
// (0, 1, 0 | 0). The kernel
//   1. halves the system CR_STEPS times by cyclic reduction: at stride s = 1, 2, 4, ... only the
//      equations i = 2s - 1 (mod 2s) eliminate their neighbours, in place (O(n) work in all);
//   2. solves what is left, the equations i = RS - 1 (mod RS), RS = 2^CR_STEPS, by PCR (the
//      launcher picks CR_STEPS so that at most ops::PCR_SIZE = 128 are left, one per invocation): every one of them eliminates its neighbours at distance RS, 2 RS, 4 RS, ...
//      at once until each stands alone, x[i] = d[i] / b[i];
//   3. substitutes back, stride by stride: x[i] = (d[i] - a[i] x[i-s] - c[i] x[i+s]) / b[i] for
//      the equations i = s - 1 (mod 2s) that step 1 set aside at stride s.
// PCR alone does O(n log n) work; CR alone has only one active equation in 2^k at its deeper
// levels. No pivoting: the systems must be diagonally dominant or otherwise safe for Gaussian
// elimination without pivoting. Each invocation stages EQ equations (256 * EQ >= n).
// Constants defined by the launcher: EQ, CR_STEPS, PAD.

struct Params {
    n: u32,
    systems: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

const WG: u32 = 256u;
// With PAD, one unused slot follows every 32: equations at a stride of 2, 4, ... 32 apart (CR's
// levels, PCR on what they leave) then fall in different memory banks, where unpadded 32 lanes
// at a stride of 8 share 4 banks. The launcher sets PAD where the padded arrays fit.
const SLOTS: u32 = WG * EQ + select(0u, WG * EQ / 32u, PAD);
var<workgroup> sa: array<f32, SLOTS>;
var<workgroup> sb: array<f32, SLOTS>;
var<workgroup> sc: array<f32, SLOTS>;
var<workgroup> sd: array<f32, SLOTS>;

// Slot of equation i.
fn p(i: u32) -> u32 {
    return select(i, i + (i >> 5u), PAD);
}

@compute @workgroup_size(256)
fn tridiagonal_pcr(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let system = wg.x + wg.y * nwg.x;
    if (system >= params.systems) {
        return;
    }
    let n = params.n;
    let base = system * n;
    for (var e = 0u; e < EQ; e++) {
        let i = lid + e * WG;
        if (i < n) {
            sa[p(i)] = select(a[base + i], 0.0, i == 0u);
            sb[p(i)] = b[base + i];
            sc[p(i)] = select(c[base + i], 0.0, i + 1u == n);
            sd[p(i)] = d[base + i];
        }
    }
    workgroupBarrier();

    // 1. Cyclic reduction: equations i = 2s - 1 (mod 2s) eliminate i - s and i + s, which no
    // equation writes at this stride, so the update is in place.
    for (var level = 0u; level < CR_STEPS; level++) {
        let s = 1u << level;
        for (var i = lid * 2u * s + 2u * s - 1u; i < n; i += WG * 2u * s) {
            eliminate_in_place(i, s, n);
        }
        workgroupBarrier();
    }

    // 2. PCR on the equations i = RS - 1 (mod RS), one per invocation.
    let rs = 1u << CR_STEPS;
    let i = lid * rs + rs - 1u;
    let mine = i < n;
    for (var s = rs; s < n; s = s * 2u) {
        var e = Equation(0.0, 1.0, 0.0, 0.0);
        if (mine) {
            e = eliminated(i, s, n);
        }
        workgroupBarrier();
        if (mine) {
            sa[p(i)] = e.a; sb[p(i)] = e.b; sc[p(i)] = e.c; sd[p(i)] = e.d;
        }
        workgroupBarrier();
    }
    if (mine) {
        sd[p(i)] = sd[p(i)] / sb[p(i)];
    }
    workgroupBarrier();

    // 3. Back substitution; sd holds x for every equation solved so far.
    for (var level = CR_STEPS; level > 0u; level--) {
        let s = 1u << (level - 1u);
        for (var j = lid * 2u * s + s - 1u; j < n; j += WG * 2u * s) {
            var v = sd[p(j)];
            if (j >= s) {
                v -= sa[p(j)] * sd[p(j - s)];
            }
            if (j + s < n) {
                v -= sc[p(j)] * sd[p(j + s)];
            }
            sd[p(j)] = v / sb[p(j)];
        }
        workgroupBarrier();
    }
    for (var e = 0u; e < EQ; e++) {
        let i = lid + e * WG;
        if (i < n) {
            x[base + i] = sd[p(i)];
        }
    }
}

struct Equation {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
}

// Equation i with its neighbours at distance s eliminated.
fn eliminated(i: u32, s: u32, n: u32) -> Equation {
    var am = 0.0; var bm = 1.0; var cm = 0.0; var dm = 0.0;
    if (i >= s) {
        am = sa[p(i - s)]; bm = sb[p(i - s)]; cm = sc[p(i - s)]; dm = sd[p(i - s)];
    }
    var ap = 0.0; var bp = 1.0; var cp = 0.0; var dp = 0.0;
    if (i + s < n) {
        ap = sa[p(i + s)]; bp = sb[p(i + s)]; cp = sc[p(i + s)]; dp = sd[p(i + s)];
    }
    let k1 = sa[p(i)] / bm;
    let k2 = sc[p(i)] / bp;
    return Equation(-am * k1, sb[p(i)] - cm * k1 - ap * k2, -cp * k2, sd[p(i)] - dm * k1 - dp * k2);
}

fn eliminate_in_place(i: u32, s: u32, n: u32) {
    let e = eliminated(i, s, n);
    sa[p(i)] = e.a; sb[p(i)] = e.b; sc[p(i)] = e.c; sd[p(i)] = e.d;
}
