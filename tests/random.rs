//! The counter-based GPU random numbers against their twin, element by element, and their
//! moments at sizes off the 256-wide workgroup grid.

mod common;

use common::{assert_close, both, unchecked};
use percept::ops::{self, Distribution};
use percept::{Tensor, reference};

const NORMAL: Distribution = Distribution::Normal {
    mean: 0.25,
    std: 1.5,
};
const UNIFORM: Distribution = Distribution::Uniform {
    low: -2.0,
    high: 3.0,
};

#[test]
fn elements_match_the_twin_at_any_offset() {
    // Offsets that are not multiples of 4 (a Philox block) and one whose low word wraps, so the
    // kernel's 64-bit carry is exercised.
    let offsets = [0u64, 3, 1_000_001, (1 << 32) - 5, (7 << 40) + 2];
    for gpu in both() {
        for dist in [NORMAL, UNIFORM] {
            for (seed, &offset) in offsets.iter().enumerate() {
                let n = 1029;
                let seed = 0x5eed_0000_0000_0001u64.wrapping_mul(seed as u64 + 1);
                let t = Tensor::zeros(gpu, &[n]).unwrap();
                ops::random_fill(&t, dist, seed, offset).unwrap();
                let got = t.to_vec().unwrap();
                let want = reference::random(dist, seed, offset, n);
                // f32 log, sqrt and cos/sin of exact 24-bit uniforms: a few ulps of the result.
                assert_close(
                    &format!(
                        "{dist:?} seed {seed:#x} offset {offset} checked={}",
                        gpu.checked()
                    ),
                    &got,
                    &want,
                    2e-6,
                );
            }
        }
    }
}

#[test]
fn a_slice_of_a_stream_is_the_same_wherever_it_is_drawn() {
    let gpu = unchecked();
    let whole = ops::random_normal(gpu, &[3, 337], 0.0, 1.0, 42)
        .unwrap()
        .to_vec()
        .unwrap();
    let part = Tensor::zeros(gpu, &[500]).unwrap();
    ops::random_fill(
        &part,
        Distribution::Normal {
            mean: 0.0,
            std: 1.0,
        },
        42,
        211,
    )
    .unwrap();
    assert_eq!(part.to_vec().unwrap(), whole[211..711].to_vec());
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Pearson correlation of a[i] and b[i].
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Tolerances are 5 standard errors of each statistic at n samples, so a correct generator
/// fails one of these checks with probability well under 1e-4.
#[test]
fn normal_moments_and_independence() {
    let gpu = unchecked();
    let n = 1_000_003;
    let se = 1.0 / (n as f64).sqrt();
    let draw = |seed: u64| -> Vec<f64> {
        ops::random_normal(gpu, &[n], 0.0, 1.0, seed)
            .unwrap()
            .to_vec()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let z = draw(7);
    let m = mean(&z);
    let var = z.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let kurtosis = z.iter().map(|x| (x - m).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!(m.abs() < 5.0 * se, "mean {m}");
    // Var of the sample variance of a normal: 2 / n; of the kurtosis: 24 / n.
    assert!((var - 1.0).abs() < 5.0 * 2f64.sqrt() * se, "variance {var}");
    assert!(
        (kurtosis - 3.0).abs() < 5.0 * 24f64.sqrt() * se,
        "kurtosis {kurtosis}"
    );
    // Neighbours within a Box-Muller pair (lag 1), across pairs of a block (lag 2), across
    // blocks (lag 4 and 5), and the same index under the next seed.
    for lag in [1, 2, 3, 4, 5, 256] {
        let r = correlation(&z[..n - lag], &z[lag..]);
        assert!(r.abs() < 5.0 * se, "lag {lag}: correlation {r}");
    }
    // Even-odd pairs share a radius: their squares correlate only if Box-Muller is wrong.
    let sq: Vec<f64> = z.iter().map(|x| x * x).collect();
    let r = correlation(&sq[..n - 1], &sq[1..]);
    assert!(r.abs() < 5.0 * se, "squares at lag 1: {r}");
    let other = draw(8);
    let r = correlation(&z, &other);
    assert!(r.abs() < 5.0 * se, "seeds 7 and 8: correlation {r}");
    // The tail mass beyond 2 and 3 sigma (two-sided), against the normal's.
    for (k, p) in [(2.0, 0.045_500_263_9), (3.0, 0.002_699_796_1)] {
        let frac = z.iter().filter(|x| x.abs() > k).count() as f64 / n as f64;
        let se_p = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (frac - p).abs() < 5.0 * se_p,
            "P(|z| > {k}) = {frac}, want {p}"
        );
    }
}

#[test]
fn uniform_moments_and_independence() {
    let gpu = unchecked();
    let n = 999_999;
    let se = 1.0 / (n as f64).sqrt();
    let u: Vec<f64> = ops::random_uniform(gpu, &[n], 0.0, 1.0, 3)
        .unwrap()
        .to_vec()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
    let m = mean(&u);
    let var = u.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
    // sd of a uniform: 1/sqrt(12); of its squared deviation: 1/sqrt(180).
    assert!((m - 0.5).abs() < 5.0 * se / 12f64.sqrt(), "mean {m}");
    assert!(
        (var - 1.0 / 12.0).abs() < 5.0 * se / 180f64.sqrt(),
        "variance {var}"
    );
    for lag in [1, 2, 3, 4, 7] {
        let r = correlation(&u[..n - lag], &u[lag..]);
        assert!(r.abs() < 5.0 * se, "lag {lag}: correlation {r}");
    }
    // Ten equal bins: chi-square with 9 degrees of freedom stays under 33.7 with p = 1e-4.
    let mut bins = [0usize; 10];
    for &x in &u {
        bins[((x * 10.0) as usize).min(9)] += 1;
    }
    let e = n as f64 / 10.0;
    let chi2: f64 = bins.iter().map(|&b| (b as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 33.7, "chi-square {chi2} over bins {bins:?}");
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = unchecked();
    assert!(ops::random_normal(gpu, &[4], 0.0, -1.0, 0).is_err());
    assert!(ops::random_normal(gpu, &[4], f32::NAN, 1.0, 0).is_err());
    assert!(ops::random_uniform(gpu, &[4], 1.0, 0.0, 0).is_err());
    // Draws that would overflow f32: a width past f32::MAX, a std whose tail is.
    assert!(ops::random_uniform(gpu, &[4], -f32::MAX, f32::MAX, 0).is_err());
    assert!(ops::random_normal(gpu, &[4], 0.0, 6e37, 0).is_err());
    let wide = ops::random_uniform(gpu, &[4], -1e38, 1e38, 0).unwrap();
    assert!(wide.to_vec().unwrap().iter().all(|v| v.is_finite()));
    let t = Tensor::zeros(gpu, &[8]).unwrap();
    assert!(ops::random_fill(&t, NORMAL, 0, u64::MAX - 3).is_err());
}
