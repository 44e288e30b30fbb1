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
