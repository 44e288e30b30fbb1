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
