/// log Σ exp(d) over a row's `x - max`, as log1p of the sum less 1: the entries at the maximum
/// counted apart keep the digits of a sum just above 1 (log of it rounds to 0 below 1e-16).
pub(crate) fn log_sum_shifted(shifted: impl Iterator<Item = f64>) -> f64 {
    let (mut ties, mut rest) = (0.0, 0.0);
    for d in shifted {
        if d == 0.0 {
            ties += 1.0;
        } else {
            rest += d.exp();
        }
    }
    ((ties - 1.0) + rest).ln_1p()
}

/// Twin of [`crate::ops::log_softmax`] for rows of length `cols`.
pub fn log_softmax(x: &[f32], cols: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let m = row
            .iter()
            .map(|&v| v as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let log_sum = log_sum_shifted(row.iter().map(|&v| v as f64 - m));
        out.extend(row.iter().map(|&v| v as f64 - m - log_sum));
    }
    out
}

/// Twin of [`crate::ops::softmax`] for rows of length `cols`.
pub fn softmax(x: &[f32], cols: usize) -> Vec<f64> {
    log_softmax(x, cols).into_iter().map(f64::exp).collect()
}
