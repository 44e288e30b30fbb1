//! A 2-D real FFT over a batch of images, as frequency-domain MLPs and Fourier neural operators
//! use it: two plans (the last axis real-to-complex, then the rows axis complex-to-complex, with
//! no transposes), checked against rustfft in f64, then inverted back to the images.
//!
//! Run with `cargo run --release --example fft2d -- 4 60 90` (batch, height, width).

use percept::ops::{FftKind, FftNorm, FftPlan};
use percept::{Gpu, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected three sizes BATCH HEIGHT WIDTH: {e}"))?;
    let [batch, h, w] = match dims[..] {
        [] => [4, 60, 90],
        [b, h, w] => [b, h, w],
        _ => return Err("usage: fft2d [BATCH HEIGHT WIDTH]".into()),
    };
    if [batch, h, w].contains(&0) {
        return Err("sizes must be at least 1".into());
    }

    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({})",
        gpu.summary().adapter,
        gpu.summary().backend
    );

    let mut rng = StdRng::seed_from_u64(7);
    let images: Vec<f32> = (0..batch * h * w)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x = Tensor::from_slice(&gpu, &images, &[batch, h, w])?;

    // Plans are built once (twiddles, pipelines) and run many times.
    let bins = w / 2 + 1;
    let norm = FftNorm::Ortho;
    let rows = FftPlan::new(&gpu, FftKind::RealForward, &[batch, h, w], 2, norm)?;
    let cols = FftPlan::new(&gpu, FftKind::Forward, &[batch, h, bins], 1, norm)?;
    let cols_inverse = FftPlan::new(&gpu, FftKind::Inverse, &[batch, h, bins], 1, norm)?;
    let rows_inverse = FftPlan::new(&gpu, FftKind::RealInverse, &[batch, h, w], 2, norm)?;
    println!(
        "plans: rows {}, columns {}",
        rows.algorithm(),
        cols.algorithm()
    );

    let (spectrum, timing) = gpu.time(|| cols.execute(&rows.execute(&x)?))?;
    let got = spectrum.to_complex_vec()?;
    let want = rfft2(&images, batch, h, w);
    let scale = want.iter().map(|c| c.norm()).fold(0.0, f64::max);
    let err = got
        .iter()
        .zip(&want)
        .map(|(g, c)| (Complex::new(g[0] as f64, g[1] as f64) - c).norm())
        .fold(0.0, f64::max);
    println!(
        "rfft2 of {batch} x {h} x {w}: [{batch}, {h}, {bins}] bins, largest error {:.2e} of the \
         largest bin (rustfft, f64), GPU time {:?}",
        err / scale,
        timing.elapsed
    );

    let back = rows_inverse
        .execute(&cols_inverse.execute(&spectrum)?)?
        .to_vec()?;
    let round_trip = back
        .iter()
        .zip(&images)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    println!("inverse: largest difference from the images {round_trip:.2e}");
    // f32 transforms are within about 1e-7 log2(n) of the largest value.
    let bound = 1e-6 * ((h * w) as f64).log2().max(1.0);
    if err / scale > bound || round_trip as f64 > bound {
        return Err(format!("the FFT is off by more than {bound:.1e}").into());
    }
    Ok(())
}

/// The orthonormal 2-D real FFT of `[batch, h, w]` images in f64: `[batch, h, w/2 + 1]` bins.
fn rfft2(images: &[f32], batch: usize, h: usize, w: usize) -> Vec<Complex<f64>> {
    let mut planner = FftPlanner::<f64>::new();
    let (along_w, along_h) = (planner.plan_fft_forward(w), planner.plan_fft_forward(h));
    let bins = w / 2 + 1;
    let mut out = Vec::with_capacity(batch * h * bins);
    for image in images.chunks(h * w) {
        // Each row, keeping its first w/2 + 1 bins, then each column of those.
        let mut half: Vec<Complex<f64>> = Vec::with_capacity(h * bins);
        for row in image.chunks(w) {
            let mut row: Vec<Complex<f64>> =
                row.iter().map(|&v| Complex::new(v as f64, 0.0)).collect();
            along_w.process(&mut row);
            half.extend_from_slice(&row[..bins]);
        }
        for k in 0..bins {
            let mut column: Vec<Complex<f64>> = (0..h).map(|r| half[r * bins + k]).collect();
            along_h.process(&mut column);
            for (r, c) in column.into_iter().enumerate() {
                half[r * bins + k] = c;
            }
        }
        let scale = 1.0 / ((h * w) as f64).sqrt();
        out.extend(half.into_iter().map(|c| c * scale));
    }
    out
}
