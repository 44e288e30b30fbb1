/// Twin of [`crate::ops::log_softmax`] for rows of length `cols`.
pub fn log_softmax(x: &[f32], cols: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let m = row
            .iter()
            .map(|&v| v as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let log_sum = row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|&v| v as f64 - m - log_sum));
    }
    out
}

/// Twin of [`crate::ops::softmax`] for rows of length `cols`.
pub fn softmax(x: &[f32], cols: usize) -> Vec<f64> {
    log_softmax(x, cols).into_iter().map(f64::exp).collect()
}
