use crate::ops::{Loss, Reduction};

/// Twin of [`crate::ops::loss`] for predictions with rows of length `cols`: (loss, gradient).
pub fn loss(
    pred: &[f32],
    target: &[f32],
    cols: usize,
    kind: Loss,
    reduction: Reduction,
) -> (f64, Vec<f64>) {
    let rows = pred.len() / cols;
    let mut total = 0.0;
    let mut grad = vec![0.0; pred.len()];
    for r in 0..rows {
        let y: Vec<f64> = pred[r * cols..(r + 1) * cols]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let g = &mut grad[r * cols..(r + 1) * cols];
        match kind {
            Loss::CrossEntropy => {
                let t = target[r] as usize;
                let m = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let log_z = super::softmax::log_sum_shifted(y.iter().map(|v| v - m));
                total += log_z + (m - y[t]);
                for j in 0..cols {
                    // exp(y - max - log z) - 1 by exp_m1 for the true class: p - 1 cancels.
                    let log_p = y[j] - m - log_z;
                    g[j] = if j == t { log_p.exp_m1() } else { log_p.exp() };
                }
            }
            Loss::MultiMargin => {
                let t = target[r] as usize;
                for j in (0..cols).filter(|&j| j != t) {
                    let margin = 1.0 - y[t] + y[j];
                    if margin > 0.0 {
                        total += margin / cols as f64;
                        g[j] += 1.0 / cols as f64;
                        g[t] -= 1.0 / cols as f64;
                    }
                }
            }
            Loss::MeanSquaredError => {
                for j in 0..cols {
                    let d = y[j] - target[r * cols + j] as f64;
                    total += d * d;
                    g[j] = 2.0 * d;
                }
            }
            Loss::Hinge => {
                for j in 0..cols {
                    let t = target[r * cols + j] as f64;
                    let margin = 1.0 - t * y[j];
                    if margin > 0.0 {
                        total += margin;
                        g[j] = -t;
                    }
                }
            }
        }
    }
    let count = match reduction {
        Reduction::Mean if kind.takes_class_indices() => rows as f64,
        Reduction::Mean => (rows * cols) as f64,
        _ => 1.0,
    };
    grad.iter_mut().for_each(|g| *g /= count);
    (total / count, grad)
}
