/// Twin of [`crate::ops::tridiagonal_solve`]: the Thomas algorithm in f64, rows of length `n`.
pub fn tridiagonal_solve(a: &[f32], b: &[f32], c: &[f32], d: &[f32], n: usize) -> Vec<f64> {
    let mut x = Vec::with_capacity(d.len());
    for s in (0..d.len()).step_by(n) {
        let (mut cp, mut dp) = (vec![0.0f64; n], vec![0.0f64; n]);
        for i in 0..n {
            let ai = if i == 0 { 0.0 } else { a[s + i] as f64 };
            let ci = if i + 1 == n { 0.0 } else { c[s + i] as f64 };
            let m = b[s + i] as f64 - ai * if i == 0 { 0.0 } else { cp[i - 1] };
            cp[i] = ci / m;
            dp[i] = (d[s + i] as f64 - ai * if i == 0 { 0.0 } else { dp[i - 1] }) / m;
        }
        let mut row = vec![0.0; n];
        for i in (0..n).rev() {
            row[i] = dp[i] - if i + 1 < n { cp[i] * row[i + 1] } else { 0.0 };
        }
        x.extend(row);
    }
    x
}
