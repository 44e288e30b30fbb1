/// Twin of [`crate::ops::layernorm`] for rows of length `cols`: returns (y, mean, rstd).
pub fn layernorm(
    x: &[f32],
    cols: usize,
    affine: Option<(&[f32], &[f32])>,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut y, mut means, mut rstds) = (Vec::new(), Vec::new(), Vec::new());
    for row in x.chunks(cols) {
        let n = row.len() as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        for (j, &v) in row.iter().enumerate() {
            let z = (v as f64 - mean) * rstd;
            y.push(match affine {
                Some((g, b)) => z * g[j] as f64 + b[j] as f64,
                None => z,
            });
        }
        means.push(mean);
        rstds.push(rstd);
    }
    (y, means, rstds)
}

/// Twin of [`crate::ops::layernorm_backward`]: returns (dx, dgamma, dbeta); the parameter
/// gradients are those of an affine layer norm with `gamma` (all ones when `None`).
pub fn layernorm_backward(
    x: &[f32],
    cols: usize,
    gamma: Option<&[f32]>,
    dy: &[f32],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = Vec::with_capacity(x.len());
    let (mut dgamma, mut dbeta) = (vec![0.0; cols], vec![0.0; cols]);
    for (row, dy_row) in x.chunks(cols).zip(dy.chunks(cols)) {
        let n = cols as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        let xhat: Vec<f64> = row.iter().map(|&v| (v as f64 - mean) * rstd).collect();
        let g: Vec<f64> = (0..cols)
            .map(|j| dy_row[j] as f64 * gamma.map_or(1.0, |g| g[j] as f64))
            .collect();
        let mean_g = g.iter().sum::<f64>() / n;
        let mean_gx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / n;
        for j in 0..cols {
            dx.push(rstd * (g[j] - mean_g - xhat[j] * mean_gx));
            dgamma[j] += dy_row[j] as f64 * xhat[j];
            dbeta[j] += dy_row[j] as f64;
        }
    }
    (dx, dgamma, dbeta)
}
