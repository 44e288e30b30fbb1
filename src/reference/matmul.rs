use super::elementwise::activation_scalar;
use crate::ops::Activation;

/// The shape of a batched product `C[b] = op(A[b]) op(B[b])`, as [`crate::ops::matmul`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct MatmulShape {
    /// Number of products.
    pub batch: usize,
    /// Rows of op(A) and C.
    pub m: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
    /// A is stored `[K, M]`.
    pub trans_a: bool,
    /// B is stored `[N, K]`.
    pub trans_b: bool,
    /// One A for the whole batch.
    pub broadcast_a: bool,
    /// One B for the whole batch.
    pub broadcast_b: bool,
}

/// Inputs of a product and its epilogue, borrowed.
pub struct MatmulInputs<'a> {
    /// A's elements.
    pub a: &'a [f32],
    /// B's elements.
    pub b: &'a [f32],
    /// Bias of length N.
    pub bias: Option<&'a [f32]>,
    /// Addend of C's layout `[batch, M, N]`.
    pub add: Option<&'a [f32]>,
    /// Applied after the bias and the addend.
    pub activation: Activation,
}

/// One entry `C[batch][i][j]` in f64.
pub fn matmul_entry(
    s: &MatmulShape,
    x: &MatmulInputs<'_>,
    batch: usize,
    i: usize,
    j: usize,
) -> f64 {
    let a0 = if s.broadcast_a { 0 } else { batch * s.m * s.k };
    let b0 = if s.broadcast_b { 0 } else { batch * s.k * s.n };
    let mut acc = 0.0f64;
    for p in 0..s.k {
        let a = if s.trans_a {
            x.a[a0 + p * s.m + i]
        } else {
            x.a[a0 + i * s.k + p]
        };
        let b = if s.trans_b {
            x.b[b0 + j * s.k + p]
        } else {
            x.b[b0 + p * s.n + j]
        };
        acc += a as f64 * b as f64;
    }
    if let Some(bias) = x.bias {
        acc += bias[j] as f64;
    }
    if let Some(add) = x.add {
        acc += add[(batch * s.m + i) * s.n + j] as f64;
    }
    activation_scalar(x.activation, acc)
}

/// Twin of [`crate::ops::matmul`]: the whole `[batch, M, N]` result.
pub fn matmul(s: &MatmulShape, x: &MatmulInputs<'_>) -> Vec<f64> {
    let mut out = Vec::with_capacity(s.batch * s.m * s.n);
    for batch in 0..s.batch {
        for i in 0..s.m {
            for j in 0..s.n {
                out.push(matmul_entry(s, x, batch, i, j));
            }
        }
    }
    out
}
