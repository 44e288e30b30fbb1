use crate::deq::{Method, Stop};

/// What [`solve_row`] returns for one row.
#[derive(Clone, Debug)]
pub struct RowSolve {
    /// f(z) at the lowest-residual iterate z.
    pub z: Vec<f64>,
    /// The residual at z.
    pub residual: f64,
    /// Evaluations of f made.
    pub iterations: usize,
    /// Whether the residual reached the tolerance.
    pub converged: bool,
}

/// Twin of [`crate::deq::solve`] for one row in f64: the same iteration, stopping rule and
/// choice of the returned iterate.
pub fn solve_row(
    f: &dyn Fn(&[f64]) -> Vec<f64>,
    z0: &[f64],
    method: &Method,
    tol: f64,
    stop: Stop,
    max_iter: usize,
) -> RowSolve {
    let n = z0.len();
    let mut z = z0.to_vec();
    let mut out = RowSolve {
        z: z.clone(),
        residual: f64::INFINITY,
        iterations: 0,
        converged: false,
    };
    // Anderson's ring and Gram matrix; Broyden's terms and last step.
    let mut xs: Vec<Vec<f64>> = Vec::new();
    let mut gs: Vec<Vec<f64>> = Vec::new();
    let mut us: Vec<Vec<f64>> = Vec::new();
    let mut vs: Vec<Vec<f64>> = Vec::new();
    let (mut prev_dx, mut prev_g) = (vec![0.0; n], vec![0.0; n]);
    for k in 0..max_iter {
        let fz = f(&z);
        let g: Vec<f64> = fz.iter().zip(&z).map(|(a, b)| a - b).collect();
        let mut res = norm(&g);
        if stop == Stop::Relative && res > 0.0 {
            res /= norm(&fz);
        }
        out.iterations = k + 1;
        if res < out.residual {
            out.residual = res;
            out.z = fz.clone();
        }
        if res <= tol {
            out.converged = true;
            return out;
        }
        match *method {
            Method::FixedPoint { damping } => {
                for (zj, gj) in z.iter_mut().zip(&g) {
                    *zj += damping as f64 * gj;
                }
            }
            Method::Anderson {
                memory,
                lambda,
                beta,
                warmup,
            } => {
                let slot = k % memory;
                if xs.len() < memory {
                    xs.push(z.clone());
                    gs.push(g.clone());
                } else {
                    xs[slot] = z.clone();
                    gs[slot] = g.clone();
                }
                let m = xs.len();
                let plain = || {
                    let mut e = vec![0.0; m];
                    e[slot] = 1.0;
                    e
                };
                let alpha = match k < warmup {
                    true => plain(),
                    false => anderson_weights(&gs, lambda as f64).unwrap_or_else(plain),
                };
                for (j, zj) in z.iter_mut().enumerate() {
                    *zj = (0..m)
                        .map(|i| alpha[i] * (xs[i][j] + beta as f64 * gs[i][j]))
                        .sum();
                }
            }
            Method::Broyden { memory } => {
                let step = if k == 0 {
                    g.clone()
                } else {
                    let dx = &prev_dx;
                    let dg: Vec<f64> = g.iter().zip(&prev_g).map(|(a, b)| a - b).collect();
                    // When the ring is full its oldest term makes room (if the update is kept).
                    let skip = usize::from(us.len() == memory);
                    let (ua, va) = (&us[skip..], &vs[skip..]);
                    // v = B^T dx, u = (dx - B dg) / (v . dg), with B = -I + sum u_i v_i^T.
                    let bt_dx = apply_b(va, ua, dx);
                    let b_dg = apply_b(ua, va, &dg);
                    let denom = dot(&bt_dx, &dg);
                    let size = dot(dx, &dg).abs()
                        + (0..ua.len())
                            .map(|i| (dot(dx, &ua[i]) * dot(&va[i], &dg)).abs())
                            .sum::<f64>();
                    // A residual change at f32 rounding level carries no secant information.
                    let informative = dot(&dg, &dg) > 1e-10 * dot(&g, &g);
                    if informative && denom.abs() > 1e-6 * size {
                        if skip == 1 {
                            us.remove(0);
                            vs.remove(0);
                        }
                        us.push(dx.iter().zip(&b_dg).map(|(a, b)| (a - b) / denom).collect());
                        vs.push(bt_dx);
                    }
                    apply_b(&us, &vs, &g).iter().map(|x| -x).collect()
                };
                for (zj, sj) in z.iter_mut().zip(&step) {
                    *zj += sj;
                }
                prev_g = g;
                prev_dx = step;
            }
        }
    }
    out
}

/// (-I + sum_i a_i b_i^T) x.
fn apply_b(a: &[Vec<f64>], b: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    let mut y: Vec<f64> = x.iter().map(|v| -v).collect();
    for (ai, bi) in a.iter().zip(b) {
        let c = dot(bi, x);
        for (yj, aj) in y.iter_mut().zip(ai) {
            *yj += c * aj;
        }
    }
    y
}

/// The weights summing to 1 that minimise ||sum_i alpha_i g_i||^2 + lambda ||alpha||^2 (lambda
/// relative to the largest ||g_i||^2), from the bordered normal equations; `None` when they are
/// singular.
fn anderson_weights(gs: &[Vec<f64>], lambda: f64) -> Option<Vec<f64>> {
    let m = gs.len();
    let diag = gs.iter().map(|g| dot(g, g)).fold(0.0, f64::max);
    let n = m + 1;
    let mut a = vec![vec![0.0; n + 1]; n];
    for i in 0..m {
        a[0][i + 1] = 1.0;
        a[i + 1][0] = 1.0;
        for j in 0..m {
            a[i + 1][j + 1] = dot(&gs[i], &gs[j]) / diag + if i == j { lambda } else { 0.0 };
        }
    }
    a[0][n] = 1.0;
    let scale = a.iter().flatten().fold(1.0f64, |s, v| s.max(v.abs()));
    for p in 0..n {
        let pivot = (p..n).max_by(|&r, &s| a[r][p].abs().total_cmp(&a[s][p].abs()))?;
        // Also None for NaN.
        if a[pivot][p].abs().partial_cmp(&(1e-14 * n as f64 * scale))
            != Some(std::cmp::Ordering::Greater)
        {
            return None;
        }
        a.swap(p, pivot);
        let (top, bottom) = a.split_at_mut(p + 1);
        let pivot_row = &top[p];
        for row in bottom {
            let f = row[p] / pivot_row[p];
            for (x, y) in row[p..].iter_mut().zip(&pivot_row[p..]) {
                *x -= f * y;
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (a[i][n] - (i + 1..n).map(|c| a[i][c] * x[c]).sum::<f64>()) / a[i][i];
    }
    Some(x[1..].to_vec())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
