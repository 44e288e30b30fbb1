// Batched tridiagonal solves by parallel cyclic reduction, one workgroup per system, the whole
// system in workgroup memory. Equation i of a system reads
//   a[i] x[i-1] + b[i] x[i] + c[i] x[i+1] = d[i]    (a[0] and c[n-1] are ignored).
// Each of the ceil(log2 n) steps eliminates the neighbours at distance s from every equation at
// once, doubling s; afterwards every equation stands alone and x[i] = d[i] / b[i]. Out-of-range
// neighbours act as the identity equation (0, 1, 0 | 0). No pivoting: the systems must be
// diagonally dominant or otherwise safe for Gaussian elimination without pivoting.
// Each invocation owns EQ equations (EQ is defined by the launcher, with 256 * EQ >= n).

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
var<workgroup> sa: array<f32, WG * EQ>;
var<workgroup> sb: array<f32, WG * EQ>;
var<workgroup> sc: array<f32, WG * EQ>;
var<workgroup> sd: array<f32, WG * EQ>;

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
            sa[i] = select(a[base + i], 0.0, i == 0u);
            sb[i] = b[base + i];
            sc[i] = select(c[base + i], 0.0, i + 1u == n);
            sd[i] = d[base + i];
        }
    }
    workgroupBarrier();
    for (var s = 1u; s < n; s = s * 2u) {
        var na: array<f32, EQ>;
        var nb: array<f32, EQ>;
        var nc: array<f32, EQ>;
        var nd: array<f32, EQ>;
        for (var e = 0u; e < EQ; e++) {
            let i = lid + e * WG;
            if (i < n) {
                var am = 0.0; var bm = 1.0; var cm = 0.0; var dm = 0.0;
                if (i >= s) {
                    am = sa[i - s]; bm = sb[i - s]; cm = sc[i - s]; dm = sd[i - s];
                }
                var ap = 0.0; var bp = 1.0; var cp = 0.0; var dp = 0.0;
                if (i + s < n) {
                    ap = sa[i + s]; bp = sb[i + s]; cp = sc[i + s]; dp = sd[i + s];
                }
                let k1 = sa[i] / bm;
                let k2 = sc[i] / bp;
                na[e] = -am * k1;
                nc[e] = -cp * k2;
                nb[e] = sb[i] - cm * k1 - ap * k2;
                nd[e] = sd[i] - dm * k1 - dp * k2;
            }
        }
        workgroupBarrier();
        for (var e = 0u; e < EQ; e++) {
            let i = lid + e * WG;
            if (i < n) {
                sa[i] = na[e]; sb[i] = nb[e]; sc[i] = nc[e]; sd[i] = nd[e];
            }
        }
        workgroupBarrier();
    }
    for (var e = 0u; e < EQ; e++) {
        let i = lid + e * WG;
        if (i < n) {
            x[base + i] = sd[i] / sb[i];
        }
    }
}
