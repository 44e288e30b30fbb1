/// Twin of [`crate::ops::transpose`]: `batch` planes of `rows x cols` become `cols x rows`.
pub fn transpose(x: &[f32], batch: usize, rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for p in 0..batch {
        let base = p * rows * cols;
        for r in 0..rows {
            for c in 0..cols {
                out[base + c * rows + r] = x[base + r * cols + c] as f64;
            }
        }
    }
    out
}
