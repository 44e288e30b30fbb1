/// Twin of [`crate::ops::column_sums`] for rows of length `cols`.
pub fn column_sums(x: &[f32], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for row in x.chunks(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v as f64;
        }
    }
    out
}
