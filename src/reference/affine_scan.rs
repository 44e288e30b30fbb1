/// Twin of [`crate::ops::affine_scan`]: the sequential recurrence `x[k] = A[k] x[k-1] + v[k]`,
/// `x[-1] = 0`, in f64, for `a` `[len, batch, w, w]` and `v` `[len, batch, w]`.
pub fn affine_scan(a: &[f32], v: &[f32], len: usize, batch: usize, w: usize) -> Vec<f64> {
    let mut x = vec![0.0f64; len * batch * w];
    for k in 0..len {
        for bat in 0..batch {
            for i in 0..w {
                let at = (k * batch + bat) * w + i;
                let mut acc = v[at] as f64;
                if k > 0 {
                    for j in 0..w {
                        acc += a[at * w + j] as f64 * x[((k - 1) * batch + bat) * w + j];
                    }
                }
                x[at] = acc;
            }
        }
    }
    x
}

/// Twin of [`crate::ops::affine_scan_transposed`]: `y[l] = A[l+1]^T y[l+1] + v[l]`,
/// `y[len] = 0`, sequentially from the end, in f64.
pub fn affine_scan_transposed(
    a: &[f32],
    v: &[f32],
    len: usize,
    batch: usize,
    w: usize,
) -> Vec<f64> {
    let mut y = vec![0.0f64; len * batch * w];
    for l in (0..len).rev() {
        for bat in 0..batch {
            for i in 0..w {
                let at = (l * batch + bat) * w + i;
                let mut acc = v[at] as f64;
                if l + 1 < len {
                    for j in 0..w {
                        // (A[l+1]^T)[i][j] = A[l+1][j][i]
                        let a_ji = a[(((l + 1) * batch + bat) * w + j) * w + i] as f64;
                        acc += a_ji * y[((l + 1) * batch + bat) * w + j];
                    }
                }
                y[at] = acc;
            }
        }
    }
    y
}
