use crate::ops::Reduction;

fn reduce(values: &[f32], reduction: Reduction) -> f64 {
    let it = values.iter().map(|&v| v as f64);
    match reduction {
        Reduction::Sum => it.sum(),
        Reduction::Mean => it.sum::<f64>() / values.len() as f64,
        Reduction::Max => it.fold(f64::NEG_INFINITY, f64::max),
        Reduction::SumOfSquares => it.map(|v| v * v).sum(),
        Reduction::MaxAbs => it
            .map(|v| if v.is_nan() { f64::INFINITY } else { v.abs() })
            .fold(0.0, f64::max),
    }
}

/// Twin of [`crate::ops::reduce_rows`] for rows of length `cols`.
pub fn reduce_rows(x: &[f32], cols: usize, reduction: Reduction) -> Vec<f64> {
    x.chunks(cols).map(|row| reduce(row, reduction)).collect()
}

/// Twin of [`crate::ops::reduce_all`].
pub fn reduce_all(x: &[f32], reduction: Reduction) -> f64 {
    reduce(x, reduction)
}
