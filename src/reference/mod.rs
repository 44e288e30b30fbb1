//! Plain-Rust f64 twins of every kernel: the oracles the tests and benchmarks compare with.
//! Each takes the same f32 inputs as its GPU op and computes in f64.

mod affine_scan;
mod column_sum;
mod deeppcr;
mod deq;
mod elementwise;
mod fft;
mod layernorm;
mod loss;
mod matmul;
mod optimizer;
mod random;
mod reduce;
mod softmax;
mod transpose;
mod tridiagonal;

pub use affine_scan::{affine_scan, affine_scan_transposed};
pub use column_sum::column_sums;
pub use deeppcr::deep_mlp_states;
pub use deq::{RowSolve, solve_row};
pub use elementwise::{
    activation, activation_backward, activation_backward_from_output, activation_derivative,
    activation_scalar, add, axpy, mul, scale, sub,
};
pub use fft::{fft_adjoint, fft_c2c, fft_c2r, fft_r2c};
pub use layernorm::{layernorm, layernorm_backward};
pub use loss::loss;
pub use matmul::{MatmulInputs, MatmulShape, matmul, matmul_entry};
pub use optimizer::optimizer_step;
pub use random::{philox4x32_10, random, random_block, random_element};
pub use reduce::{reduce_all, reduce_rows};
pub use softmax::{log_softmax, softmax};
pub use transpose::transpose;
pub use tridiagonal::tridiagonal_solve;

/// The error measure of tests and benchmarks: `max |got - want| / max |want|`, the largest
/// deviation relative to the largest reference value (an infinity-norm relative error). It
/// stays meaningful where individual reference values pass through zero. Returns the absolute
/// error when every reference value is zero. A non-finite value on either side must be matched
/// by the same on the other (NaN by NaN, an infinity by itself), or the error is infinite; the
/// scale is that of the finite reference values.
pub fn max_rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "compared slices differ in length");
    let mut scale = 0.0f64;
    let mut err = 0.0f64;
    for (&g, &w) in got.iter().zip(want) {
        let g = g as f64;
        if !(g.is_finite() && w.is_finite()) {
            let same = (g.is_nan() && w.is_nan()) || g == w;
            if !same {
                return f64::INFINITY;
            }
            continue;
        }
        scale = scale.max(w.abs());
        err = err.max((g - w).abs());
    }
    if scale > 0.0 { err / scale } else { err }
}

/// [`max_rel_err`] of each part of `part_len` values (a layer's states, a row) on its own scale,
/// the largest over the parts; a part whose reference values are all below 1e-30, past what
/// f32 holds in full precision (its smallest normal value is 1.2e-38), is measured on a scale
/// of 1e-30. For values whose scale changes from part to part, such as states shrinking
/// through a network's layers, where one scale for all would pass anything in the small parts.
pub fn max_rel_err_per_part(got: &[f32], want: &[f64], part_len: usize) -> f64 {
    const FLOOR: f64 = 1e-30;
    assert_eq!(got.len(), want.len(), "compared slices differ in length");
    got.chunks(part_len.max(1))
        .zip(want.chunks(part_len.max(1)))
        .map(|(g, w)| {
            let scale = w
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |m, v| m.max(v.abs()));
            // max_rel_err divides by the scale where it is positive: the floor replaces it.
            let err = max_rel_err(g, w);
            match scale {
                s if !err.is_finite() || s >= FLOOR => err,
                s if s > 0.0 => err * s / FLOOR,
                _ => err / FLOOR,
            }
        })
        .fold(
            0.0,
            |worst, e| if e.is_nan() || e > worst { e } else { worst },
        )
}

#[cfg(test)]
mod tests {
    use super::{max_rel_err, max_rel_err_per_part};

    #[test]
    fn parts_are_compared_on_their_own_scale() {
        // The second part is 50% off its own scale, 5e-7 off the first's.
        let got = [1.0, -1.0, 1.5e-6, 0.0];
        let want = [1.0, -1.0, 1e-6, 0.0];
        assert!(max_rel_err(&got, &want) < 1e-6);
        assert!((max_rel_err_per_part(&got, &want, 2) - 0.5).abs() < 1e-6);
        // A part of vanishing reference values is measured on a scale of 1e-30.
        let tiny = max_rel_err_per_part(&[1.0, 3e-31], &[1.0, 1e-31], 1);
        assert!((tiny - 0.2).abs() < 1e-6, "{tiny}");
        assert!(max_rel_err_per_part(&[1.0, 1e-8], &[1.0, 0.0], 1) > 1e20);
    }

    #[test]
    fn non_finite_values_must_match() {
        let inf = f64::INFINITY;
        // An infinity matched leaves the finite entries to be compared on their own scale.
        assert_eq!(max_rel_err(&[f32::INFINITY, 0.0], &[inf, 5.0]), 1.0);
        assert_eq!(max_rel_err(&[1.0], &[f64::NAN]), inf);
        assert_eq!(max_rel_err(&[f32::NAN], &[1.0]), inf);
        assert_eq!(max_rel_err(&[f32::NAN, 2.0], &[f64::NAN, 2.0]), 0.0);
        assert_eq!(max_rel_err(&[f32::NEG_INFINITY], &[inf]), inf);
        assert_eq!(max_rel_err(&[1.5, -2.0], &[1.0, -2.0]), 0.25);
    }
}
