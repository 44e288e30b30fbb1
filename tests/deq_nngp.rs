//! The DEQ-NNGP reproduction: closed-form dual activations against quadrature, the kernel fixed
//! point, the batched GPU DEQs against an f64 oracle, the Monte-Carlo covariance against the
//! kernel, and the command line.

mod common;

use percept::deq::{self, FixedPointMap, SolverConfig};
use percept::experiments::deq_nngp::{
    self, DeqBatch, DeqNngpConfig, GaussHermite, Phi, nngp_kernel, v_erf, v_phi, v_relu,
};
use percept::experiments::quadrature;
use percept::ops::{Activation, Distribution};
use percept::{Tensor, reference};

/// Covariances (s11, s12, s22): ordinary, negative, unequal variances, and correlations of
/// +-(1 - 1e-6) and exactly +-1 (a singular covariance).
fn cases() -> Vec<(f64, f64, f64)> {
    let near = 1.0 - 1e-6;
    vec![
        (1.0, 0.3, 1.0),
        (2.0, -1.1, 0.9),
        (0.04, 0.01, 3.0),
        (1.5, near * 1.5, 1.5),
        (0.7, -near * (0.7f64 * 2.3).sqrt(), 2.3),
        (1.2, 1.2, 1.2),
        (0.5, -0.5, 0.5),
        (1.0, 0.0, 1.0),
    ]
}

#[test]
fn relu_arc_cosine_kernel_matches_quadrature() {
    let relu = |x: f64| x.max(0.0);
    // Two-dimensional Gauss-Hermite after the Cholesky factorisation: ReLU's product has kinks
    // along oblique lines of the (z1, z2) plane, where the rule converges only as 1/nodes
    // (measured worst relative errors on these cases: 1.4e-3 at 96 nodes, 3.3e-4 at 400), so
    // this check is to 5e-4 at 400 nodes; a wrong closed form (a dropped sin t, a missing
    // 1/2) is off by 0.05 or more.
    let rule = GaussHermite::new(400);
    // A sharper check of the same expectation: integrate over z1 by the trapezoid rule (the
    // kink at z1 = 0 sits on a grid point: error about 1e-7) with the inner expectation over z2
    // in closed form, E[relu(m + s z)] = m Phi(m / s) + s phi(m / s).
    let pi = std::f64::consts::PI;
    let inner = |m: f64, s: f64| {
        if s == 0.0 {
            relu(m)
        } else {
            let t = m / s;
            m * 0.5 * libm::erfc(-t / std::f64::consts::SQRT_2)
                + s * (-0.5 * t * t).exp() / (2.0 * pi).sqrt()
        }
    };
    for (s11, s12, s22) in cases() {
        let closed = v_relu(s11, s12, s22);
        let scale = (s11 * s22).sqrt();
        let quad = rule.expectation_2d(s11, s12, s22, |a, b| relu(a) * relu(b));
        assert!(
            (quad - closed).abs() <= 5e-4 * scale,
            "({s11}, {s12}, {s22}): Gauss-Hermite {quad}, closed form {closed}"
        );
        let l11 = s11.sqrt();
        let l21 = s12 / l11;
        let l22 = (s22 - l21 * l21).max(0.0).sqrt();
        let semi = quadrature::gaussian_expectation(|z| relu(l11 * z) * inner(l21 * z, l22));
        assert!(
            (semi - closed).abs() <= 1e-6 * scale,
            "({s11}, {s12}, {s22}): trapezoid {semi}, closed form {closed}"
        );
    }
    // Closed values: equal variances s and correlation 1 give s / 2; correlation 0, s / (2 pi);
    // correlation -1, 0.
    assert!((v_relu(1.2, 1.2, 1.2) - 0.6).abs() < 1e-12);
    assert!((v_relu(1.0, 0.0, 1.0) - 1.0 / (2.0 * pi)).abs() < 1e-12);
    assert!(v_relu(0.5, -0.5, 0.5).abs() < 1e-12);
}

#[test]
fn erf_arcsine_kernel_matches_quadrature() {
    // erf is entire, so the rule converges fast; 96 nodes reach 1e-12 on these cases.
    let rule = GaussHermite::new(96);
    for (s11, s12, s22) in cases() {
        let quad = rule.expectation_2d(s11, s12, s22, |a, b| libm::erf(a) * libm::erf(b));
        let closed = v_erf(s11, s12, s22);
        assert!(
            (quad - closed).abs() <= 1e-10,
            "({s11}, {s12}, {s22}): quadrature {quad}, closed form {closed}"
        );
    }
}

#[test]
fn tanh_quadrature_has_converged() {
    // tanh is analytic in a strip (poles at +-i pi / 2), so Gauss-Hermite converges
    // geometrically, more slowly for larger variances: the 96-node rule the experiment uses is
    // within 1e-8 of 400 nodes (measured: 7e-9 at variance 3, 1e-15 at variance 1), far below
    // the Monte-Carlo errors it is compared with (1e-3 relative and up).
    let (coarse, fine) = (GaussHermite::new(96), GaussHermite::new(400));
    for (s11, s12, s22) in cases() {
        let f = |a: f64, b: f64| a.tanh() * b.tanh();
        let (c, r) = (
            coarse.expectation_2d(s11, s12, s22, f),
            fine.expectation_2d(s11, s12, s22, f),
        );
        assert!((c - r).abs() < 1e-8, "({s11}, {s12}, {s22}): {c} vs {r}");
    }
}

#[test]
fn kernel_fixed_point_solves_its_equation() {
    let rule = GaussHermite::new(96);
    let (p, d) = (4, 3);
    let x: Vec<f64> = (0..p * d)
        .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
        .collect();
    for phi in [
        Phi::Act(Activation::Tanh),
        Phi::Act(Activation::Relu),
        Phi::Erf,
    ] {
        let k = nngp_kernel(phi, &rule, &x, p, d, 0.6, 1.0).unwrap();
        let v = v_phi(phi, &rule, &k.sigma_star, p);
        for (t, &vt) in v.iter().enumerate() {
            let rhs = 0.36 * vt + k.sigma1[t];
            assert!((k.sigma_star[t] - rhs).abs() < 1e-12, "{phi:?} entry {t}");
            assert!((k.k[t] - 0.36 * vt).abs() < 1e-15);
        }
        // K is a covariance: symmetric and positive semi-definite.
        let eig = deq_nngp::symmetric_eigenvalues(&k.k, p);
        assert!(eig[0] > -1e-12, "{phi:?}: {eig:?}");
    }
    // ReLU's diagonal has a closed fixed point: V(S)_ii = S_ii / 2, so S*_ii = S1_ii / (1 - 0.18).
    let k = nngp_kernel(Phi::Act(Activation::Relu), &rule, &x, p, d, 0.6, 1.0).unwrap();
    for i in 0..p {
        let want = k.sigma1[i * p + i] / (1.0 - 0.18);
        assert!((k.sigma_star[i * p + i] - want).abs() < 1e-12 * want);
    }
}

#[test]
fn batched_deqs_match_an_f64_oracle() {
    // Two networks (the second and third of the stream, so the offsets matter) of width 24 on
    // three inputs: the GPU solve against plain f64 iteration with weights from the RNG's twin.
    let (p, d, n, first, nets, seed) = (3, 5, 24, 1, 2, 77);
    let x: Vec<f32> = common::random(5, p * d, -1.5, 1.5);
    for gpu in common::both() {
        let xt = Tensor::from_slice(gpu, &x, &[p, d]).unwrap();
        for act in [Activation::Tanh, Activation::Relu] {
            let batch = DeqBatch::draw(&xt, act, n, first, nets, 0.6, 1.0, seed).unwrap();
            assert_eq!(batch.shape(), [nets * p, n]);
            let config = SolverConfig {
                tol: 1e-6,
                max_iter: 200,
                ..Default::default()
            };
            let solution = deq::solve(&batch, None, &config).unwrap();
            assert!(solution.stats.converged, "{:?}", solution.stats);
            let got = solution.z.to_vec().unwrap();
            let w_std = (0.6 / (n as f64).sqrt()) as f32;
            let u_std = (1.0 / (d as f64).sqrt()) as f32;
            let normal = |std| Distribution::Normal { mean: 0.0, std };
            let w = reference::random(normal(w_std), seed, (first * n * n) as u64, nets * n * n);
            let u = reference::random(
                normal(u_std),
                seed + 1,
                (first * n * d) as u64,
                nets * n * d,
            );
            // Round to f32 as the GPU stores them.
            let (w, u): (Vec<f64>, Vec<f64>) = (
                w.iter().map(|&v| v as f32 as f64).collect(),
                u.iter().map(|&v| v as f32 as f64).collect(),
            );
            let mut want = vec![0.0f64; nets * p * n];
            for net in 0..nets {
                for row in 0..p {
                    let inj: Vec<f64> = (0..n)
                        .map(|i| {
                            (0..d)
                                .map(|k| x[row * d + k] as f64 * u[(net * n + i) * d + k])
                                .sum()
                        })
                        .collect();
                    let mut h = vec![0.0f64; n];
                    for _ in 0..300 {
                        h = (0..n)
                            .map(|i| {
                                let wh: f64 = (0..n).map(|j| w[(net * n + i) * n + j] * h[j]).sum();
                                reference::activation_scalar(act, wh + inj[i])
                            })
                            .collect();
                    }
                    want[(net * p + row) * n..(net * p + row + 1) * n].copy_from_slice(&h);
                }
            }
            // The solve stops at residual 1e-6; the map contracts by about 0.6 per step, so the
            // iterate is within 1e-6 / (1 - 0.6) of the fixed point, plus f32 rounding.
            common::assert_close(&format!("{act:?}"), &got, &want, 2e-5);
        }
    }
}

#[test]
fn monte_carlo_covariance_approaches_the_kernel() {
    // 160 networks of width 192 per activation. The estimate's error has two parts: sampling
    // noise, whose expected share of the relative squared error (`sampling_floor`) the run
    // estimates from 10 groups of networks (a ratio error / floor above 6 has probability under
    // 1e-3 for the few dominant directions of a 10 x 10 covariance), and the finite-width bias,
    // measured at about (3 / n)^2 at widths 32 to 256. The bound allows 6 floors plus (5 / n)^2;
    // a wrong kernel (sigma_w^2 or Sigma1 misplaced) is off by more than 1e-2.
    let gpu = common::unchecked();
    let config = DeqNngpConfig {
        widths: vec![192],
        networks: 160,
        ..DeqNngpConfig::quick()
    };
    let report = deq_nngp::run_deq_nngp(gpu, &config, |_, _| {}).unwrap();
    assert_eq!(report.activations.len(), 2);
    for a in &report.activations {
        let w = &a.widths[0];
        eprintln!(
            "{:?}: rel. sq. error {:.3e} (se {:.1e}, floor {:.1e}), lambda_min {:.4} +- {:.4} \
             (analytic {:.4}, per network {:.4}), {:.1} iterations",
            a.activation,
            w.rel_sq_error,
            w.rel_sq_error_se,
            w.sampling_floor,
            w.lambda_min,
            w.lambda_min_se,
            a.analytic_lambda_min,
            w.per_network_lambda_min,
            w.mean_iterations
        );
        assert_eq!(w.networks, 160);
        assert_eq!(w.converged_rows, w.rows, "every row reaches 1e-4");
        let bias = (5.0 / w.width as f64).powi(2);
        assert!(
            w.rel_sq_error <= 6.0 * w.sampling_floor + bias,
            "{:?}: {w:?}",
            a.activation
        );
        // lambda_min: within 5 standard errors plus a 10% finite-width allowance.
        assert!(
            (w.lambda_min - a.analytic_lambda_min).abs()
                <= 5.0 * w.lambda_min_se + 0.1 * a.analytic_lambda_min,
            "{:?}: {w:?}",
            a.activation
        );
        // One network's own kernel is a sample covariance of n units: its smallest eigenvalue
        // sits below the limit's.
        assert!(w.per_network_lambda_min < a.analytic_lambda_min);
        assert!(w.mean_iterations > 5.0 && w.mean_iterations <= 100.0);
    }
}

#[test]
fn repro_deq_nngp_quick_runs_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("percept-deq-nngp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("deq-nngp.svg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "repro",
            "deq-nngp",
            "--quick",
            "--widths",
            "16,40",
            "--networks",
            "20",
            "--json",
            "--plot",
            plot.to_str().unwrap(),
        ])
        .env("PERCEPT_TUNING", "memory")
        .output()
        .expect("the percept binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let activations = json["report"]["activations"].as_array().unwrap();
    assert_eq!(activations.len(), 2);
    for a in activations {
        assert!(a["analytic_lambda_min"].as_f64().unwrap() > 0.0);
        let widths = a["widths"].as_array().unwrap();
        assert_eq!(widths.len(), 2);
        for w in widths {
            for key in [
                "rel_sq_error",
                "rel_sq_error_se",
                "sampling_floor",
                "lambda_min",
                "lambda_min_se",
                "per_network_lambda_min",
                "mean_iterations",
            ] {
                assert!(w[key].as_f64().unwrap().is_finite(), "{key} in {w}");
            }
        }
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg"));
    // The table form prints the paper's column.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "repro",
            "deq-nngp",
            "--widths",
            "32",
            "--networks",
            "10",
            "--activations",
            "relu",
            "--plot",
            plot.to_str().unwrap(),
        ])
        .env("PERCEPT_TUNING", "memory")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0.0247"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A batch of networks fits every buffer and the per-dimension dispatch limit of the batched
/// products (70,000 networks of width 8 once asked for 70,000 workgroups in one dimension), and
/// a width whose buffers overflow is an error, not a wrapped size.
#[test]
fn network_batches_fit_the_adapters_limits() {
    let gpu = common::unchecked();
    let limits = gpu.limits();
    let chunk = deq_nngp::chunk_networks(gpu, 8, 10, 10, 70_000).unwrap();
    assert!(chunk >= 1 && chunk <= limits.max_compute_workgroups_per_dimension as usize);
    let chunk = deq_nngp::chunk_networks(gpu, 1024, 10, 10, 1_000_000).unwrap();
    assert!((chunk * 1024 * 1024 * 4) as u64 <= limits.max_storage_buffer_binding_size);
    let err = deq_nngp::chunk_networks(gpu, 1 << 40, 10, 10, 10).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}
