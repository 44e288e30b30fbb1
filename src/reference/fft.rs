//! Twin of [`crate::ops::FftPlan`]: the same transforms through rustfft in f64.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;

use crate::ops::{FftKind, FftNorm};

/// `(outer, n, inner)` of a transform along `axis` of `shape`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Calls `f(read, write)` for every line along the axis of `[outer, len_in, inner]` in and
/// `[outer, len_out, inner]` out, with index maps from a position on the line to the flat index.
fn for_each_line(
    outer: usize,
    inner: usize,
    len_in: usize,
    len_out: usize,
    mut f: impl FnMut(&dyn Fn(usize) -> usize, &dyn Fn(usize) -> usize),
) {
    for o in 0..outer {
        for i in 0..inner {
            f(&|e| (o * len_in + e) * inner + i, &|e| {
                (o * len_out + e) * inner + i
            });
        }
    }
}

fn dft(line: &mut [Complex64], inverse: bool) {
    let mut planner = FftPlanner::<f64>::new();
    let plan = if inverse {
        planner.plan_fft_inverse(line.len())
    } else {
        planner.plan_fft_forward(line.len())
    };
    plan.process(line);
}

fn complex(c: [f32; 2]) -> Complex64 {
    Complex64::new(c[0] as f64, c[1] as f64)
}

/// Complex to complex along `axis` of `shape`: the forward DFT (`exp(-2πi jk/n)`) or the
/// inverse, scaled as `norm` says.
pub fn fft_c2c(
    x: &[[f32; 2]],
    shape: &[usize],
    axis: usize,
    inverse: bool,
    norm: FftNorm,
) -> Vec<[f64; 2]> {
    let (outer, n, inner) = split(shape, axis);
    let kind = if inverse {
        FftKind::Inverse
    } else {
        FftKind::Forward
    };
    let scale = norm.scale(kind, n);
    let mut out = vec![[0.0; 2]; x.len()];
    for_each_line(outer, inner, n, n, |at, to| {
        let mut line: Vec<Complex64> = (0..n).map(|e| complex(x[at(e)])).collect();
        dft(&mut line, inverse);
        for (e, c) in line.iter().enumerate() {
            out[to(e)] = [c.re * scale, c.im * scale];
        }
    });
    out
}

/// Real to complex along `axis` of the real `shape`: bins `0 ..= n/2` of the forward DFT,
/// in a tensor of `shape` with `n/2 + 1` at `axis`.
pub fn fft_r2c(x: &[f32], shape: &[usize], axis: usize, norm: FftNorm) -> Vec<[f64; 2]> {
    let (outer, n, inner) = split(shape, axis);
    let bins = n / 2 + 1;
    let scale = norm.scale(FftKind::RealForward, n);
    let mut out = vec![[0.0; 2]; outer * bins * inner];
    for_each_line(outer, inner, n, bins, |at, to| {
        let mut line: Vec<Complex64> = (0..n)
            .map(|e| Complex64::new(x[at(e)] as f64, 0.0))
            .collect();
        dft(&mut line, false);
        for (k, c) in line[..bins].iter().enumerate() {
            out[to(k)] = [c.re * scale, c.im * scale];
        }
    });
    out
}

/// Complex to real along `axis`: `x` holds `n/2 + 1` bins at `axis` of `shape` (the real
/// output's shape); the result is the inverse DFT of their Hermitian extension, the edge bins'
/// imaginary parts ignored.
pub fn fft_c2r(x: &[[f32; 2]], shape: &[usize], axis: usize, norm: FftNorm) -> Vec<f64> {
    let (outer, n, inner) = split(shape, axis);
    let bins = n / 2 + 1;
    let scale = norm.scale(FftKind::RealInverse, n);
    let mut out = vec![0.0; outer * n * inner];
    for_each_line(outer, inner, bins, n, |at, to| {
        let mut line = vec![Complex64::new(0.0, 0.0); n];
        for k in 0..bins {
            let mut c = complex(x[at(k)]);
            if k == 0 || 2 * k == n {
                c.im = 0.0;
            }
            line[k] = c;
            if k > 0 {
                line[n - k] = c.conj();
            }
        }
        dft(&mut line, true);
        for (e, c) in line.iter().enumerate() {
            out[to(e)] = c.re * scale;
        }
    });
    out
}

/// The adjoint of `kind`'s transform along `axis` of the signal's `shape`, applied to `dy`
/// (flattened like the transform's output, complex values interleaved); flattened like its input.
/// With `s` the transform's scale and `<a, b> = Re Σ conj(a_i) b_i`:
/// - complex to complex: `s` times the unnormalised DFT of the opposite sign.
/// - real to complex, `y_k = s Σ_j x_j W^{jk}` for `k = 0 ..= n/2`: `(F* g)_j = s Re Σ_k g_k
///   W^{-jk}`, every kept bin weighted 1.
/// - complex to real, `x_j = s Re Σ_k c_k y_k W^{-jk}` with `c_k` 1 on the edge bins and 2
///   inside (the edge bins' imaginary parts ignored): `(F* g)_k = s c_k Σ_j g_j W^{jk}`, real
///   on the edge bins, as nothing moves their imaginary parts.
pub fn fft_adjoint(
    kind: FftKind,
    norm: FftNorm,
    shape: &[usize],
    axis: usize,
    dy: &[f32],
) -> Vec<f64> {
    let (outer, n, inner) = split(shape, axis);
    let bins = n / 2 + 1;
    let s = norm.scale(kind, n);
    // Lengths along the axis of dy (the output) and of dx (the input).
    let (len_dy, len_dx) = match kind {
        FftKind::Forward | FftKind::Inverse => (n, n),
        FftKind::RealForward => (bins, n),
        FftKind::RealInverse => (n, bins),
    };
    let complex_dy = kind != FftKind::RealInverse;
    let complex_dx = kind != FftKind::RealForward;
    let mut dx = vec![0.0; outer * len_dx * inner * if complex_dx { 2 } else { 1 }];
    for_each_line(outer, inner, len_dy, len_dx, |at, to| {
        let mut line = vec![Complex64::new(0.0, 0.0); n];
        for (e, v) in line.iter_mut().enumerate().take(len_dy) {
            let k = at(e);
            *v = match complex_dy {
                true => Complex64::new(dy[2 * k] as f64, dy[2 * k + 1] as f64),
                false => Complex64::new(dy[k] as f64, 0.0),
            };
        }
        // A forward kind's adjoint runs the inverse DFT, and the other way round.
        dft(&mut line, kind.is_forward());
        for (e, v) in line.iter().enumerate().take(len_dx) {
            let k = to(e);
            match kind {
                FftKind::Forward | FftKind::Inverse => {
                    dx[2 * k] = s * v.re;
                    dx[2 * k + 1] = s * v.im;
                }
                FftKind::RealForward => dx[k] = s * v.re,
                FftKind::RealInverse => {
                    let edge = e == 0 || 2 * e == n;
                    let c = if edge { 1.0 } else { 2.0 };
                    dx[2 * k] = s * c * v.re;
                    dx[2 * k + 1] = if edge { 0.0 } else { s * c * v.im };
                }
            }
        }
    });
    dx
}
