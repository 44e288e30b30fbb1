//! The reproductions' building blocks against closed forms, and a small isometry run.

mod common;

use percept::experiments::isometry::{self, IsometryConfig};
use percept::ops::Activation;

#[test]
fn isometry_of_known_gram_matrices() {
    let n = 4;
    let identity: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    assert!(isometry::neg_log_isometry(&identity, n).abs() < 1e-12);
    let scaled: Vec<f64> = identity.iter().map(|v| v * 7.5).collect();
    assert!(isometry::neg_log_isometry(&scaled, n).abs() < 1e-12);
    // Rank one: u u^T has determinant 0, so I = 0 and -log I is infinite.
    let u = [1.0, 2.0, -1.0, 0.5];
    let rank_one: Vec<f64> = (0..n * n).map(|i| u[i / n] * u[i % n]).collect();
    assert_eq!(isometry::neg_log_isometry(&rank_one, n), f64::INFINITY);
    // diag(1, 2, 4, 8): det^(1/4) = 2^(6/4), mean of the trace 15/4.
    let diag: Vec<f64> = (0..n * n)
        .map(|i| {
            if i % (n + 1) == 0 {
                2f64.powi((i / n) as i32)
            } else {
                0.0
            }
        })
        .collect();
    let want = -(1.5 * 2f64.ln()) + (15.0f64 / 4.0).ln();
    assert!((isometry::neg_log_isometry(&diag, n) - want).abs() < 1e-12);
}

#[test]
fn beta0_matches_closed_forms() {
    let pi = std::f64::consts::PI;
    // ReLU: E[x relu x] = 1/2, Var(relu x) = 1/2 - 1/(2 pi).
    let relu = 0.25 / (0.5 - 1.0 / (2.0 * pi));
    let got = isometry::beta0(Activation::Relu);
    assert!((got - relu).abs() < 1e-6, "{got} vs {relu}");
    assert!((2.0 - relu - 1.266_528).abs() < 1e-6);
    assert!((isometry::beta0(Activation::Identity) - 1.0).abs() < 1e-10);
    // tanh is odd, so its beta0 is E[x tanh x]^2 / E[tanh^2 x] < 1.
    let tanh = isometry::beta0(Activation::Tanh);
    assert!(tanh > 0.8 && tanh < 1.0, "{tanh}");
}

/// 2 - beta0 is an infinite-width prediction. At width 256 the rates over layers 1 to 5
/// measured with 32 seeds (this test's networks, the first layers of
/// `percept repro isometry --quick --seeds 32`, on lavapipe 2026-11-27) sat below
/// it by 6.0% for ReLU (1.1901, standard error 0.0065) and 1.6% for tanh (1.0528, 0.0053), and
/// the identity's at 0.9835 (0.0039): a finite-width drift of many standard errors, which
/// shrinks at width 1000 (ReLU -3.2%, tanh +1.1%, identity 0.9990). So the checks below allow
/// 3 standard errors of the seeds' spread plus this much of the prediction for finite width.
const FINITE_WIDTH: f64 = 0.07;
/// The identity's allowance: its drift at width 256 was 0.0165, and the old rate (from the
/// un-normalised inputs, which the first layer norm alone brings closer to isometry) read
/// about 1.05 there, which this must reject.
const IDENTITY_FINITE_WIDTH: f64 = 0.025;

#[test]
fn layernorm_contracts_the_gap_at_two_minus_beta0() {
    let gpu = common::unchecked();
    let seeds = 32;
    let config = IsometryConfig {
        width: 256,
        depth: 5,
        seeds,
        input_scales: vec![10.0],
        activations: vec![Activation::Identity, Activation::Relu, Activation::Tanh],
        ..IsometryConfig::paper(seeds)
    };
    let curves = isometry::run_isometry(gpu, &config).unwrap();
    let rate = |act| {
        let c = curves
            .iter()
            .find(|c| c.activation == act && c.layernorm)
            .unwrap();
        eprintln!(
            "{act:?}+LN: measured {:.4} ({:.4}) predicted {:.4} ({:+.1}%); curve {:?}",
            c.measured_rate,
            c.measured_rate_se,
            c.predicted_rate,
            100.0 * (c.measured_rate / c.predicted_rate - 1.0),
            c.neg_log_isometry
        );
        (c.measured_rate, c.measured_rate_se, c.predicted_rate)
    };
    let (identity, identity_se, one) = rate(Activation::Identity);
    assert!((one - 1.0).abs() < 1e-9);
    assert!(
        (identity - 1.0).abs() < 3.0 * identity_se + IDENTITY_FINITE_WIDTH,
        "identity contracts: {identity} ({identity_se})"
    );
    let (relu, relu_se, relu_predicted) = rate(Activation::Relu);
    let (tanh, tanh_se, tanh_predicted) = rate(Activation::Tanh);
    for (name, measured, se, predicted) in [
        ("relu", relu, relu_se, relu_predicted),
        ("tanh", tanh, tanh_se, tanh_predicted),
    ] {
        assert!(
            (measured - predicted).abs() < 3.0 * se + FINITE_WIDTH * predicted,
            "{name}: measured {measured} ({se}) vs predicted {predicted}"
        );
    }
    // The allowance is wide enough that an activation could pass for its neighbour; the order
    // the predictions give (ReLU 1.27 > tanh 1.07 > identity 1) must be resolved as well.
    let apart = |a: f64, sa: f64, b: f64, sb: f64| a - b > 3.0 * (sa * sa + sb * sb).sqrt();
    assert!(
        apart(relu, relu_se, tanh, tanh_se),
        "relu {relu} tanh {tanh}"
    );
    assert!(
        apart(tanh, tanh_se, identity, identity_se),
        "tanh {tanh} identity {identity}"
    );
}

mod parity {
    use percept::experiments::sparse_parity::{
        self, ParityCell, ParityConfig, ParityInit, ParityTask,
    };
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn labels_are_the_product_of_the_hidden_coordinates() {
        let mut rng = StdRng::seed_from_u64(1);
        let task = ParityTask::new(10, 3, &mut rng).unwrap();
        assert_eq!(task.support.len(), 3);
        let (x, y) = task.sample(200, &mut rng);
        for (row, &label) in x.chunks(11).zip(&y) {
            assert_eq!(row[10], 1.0, "bias input");
            assert!(row[..10].iter().all(|v| *v == 1.0 || *v == -1.0));
            let want: f32 = task.support.iter().map(|&i| row[i]).product();
            assert_eq!(label, want);
        }
        // Balanced labels: a parity of fair coins is a fair coin.
        let positive = y.iter().filter(|v| **v > 0.0).count();
        assert!((60..140).contains(&positive), "{positive} of 200");
        assert!(
            ParityTask::new(5, 0, &mut rng).is_err() && ParityTask::new(5, 6, &mut rng).is_err()
        );
    }

    #[test]
    fn clopper_pearson_intervals_match_closed_forms() {
        let ci = sparse_parity::clopper_pearson;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // k = 0 and k = n have closed forms: (0, 1 - (a/2)^(1/n)) and ((a/2)^(1/n), 1); k = 1
        // has the lower end 1 - (1 - a/2)^(1/n).
        for n in [1, 4, 32] {
            let q = 0.025f64.powf(1.0 / n as f64);
            assert_eq!(ci(0, n, 0.05).0, 0.0);
            assert!(close(ci(0, n, 0.05).1, 1.0 - q), "{n}");
            assert!(close(ci(n, n, 0.05).0, q), "{n}");
            assert_eq!(ci(n, n, 0.05).1, 1.0);
            assert!(close(ci(1, n, 0.05).0, 1.0 - 0.975f64.powf(1.0 / n as f64)));
        }
        // 1 of 4: P(X <= 1) = (1 - p)^4 + 4 p (1 - p)^3 is 0.025 at the upper end (0.8059).
        let (lo, hi) = ci(1, 4, 0.05);
        assert!(
            (lo - 0.0063).abs() < 1e-4 && (hi - 0.8059).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert!(close(
            (1.0 - hi).powi(4) + 4.0 * hi * (1.0 - hi).powi(3),
            0.025
        ));
        // 5 of 10 is symmetric about 1/2: (0.1871, 0.8129).
        let (lo, hi) = ci(5, 10, 0.05);
        assert!(
            close(lo, 1.0 - hi) && (lo - 0.1871).abs() < 1e-4,
            "{lo} {hi}"
        );
        // 1 of 4 and 4 of 4 successes have overlapping intervals.
        assert!(ci(1, 4, 0.05).1 > ci(4, 4, 0.05).0);
        assert_eq!(ci(0, 0, 0.05), (0.0, 1.0));
    }

    #[test]
    fn sign_test_is_the_exact_binomial_tail() {
        // 5 discordant pairs all one way: 2 / 2^5.
        assert!((sparse_parity::sign_test(5, 0) - 0.0625).abs() < 1e-12);
        assert!((sparse_parity::sign_test(0, 5) - 0.0625).abs() < 1e-12);
        // 3 against 1: 2 (1 + 4) / 16.
        assert!((sparse_parity::sign_test(3, 1) - 0.625).abs() < 1e-12);
        assert_eq!(sparse_parity::sign_test(2, 2), 1.0);
        assert_eq!(sparse_parity::sign_test(0, 0), 1.0);
    }

    #[test]
    fn batched_networks_equal_networks_trained_one_by_one() {
        let gpu = super::common::unchecked();
        let config = ParityConfig {
            n: 12,
            k: 2,
            seeds: 3,
            max_steps: 300,
            eval_every: 50,
            test_size: 200,
            ..ParityConfig::paper()
        };
        let cell = ParityCell {
            width: 24,
            init: ParityInit::Sparse { inputs: 4 },
            train_size: Some(256),
        };
        let together = sparse_parity::run_cell(gpu, &config, &cell, 40).unwrap();
        for j in 0..3 {
            let alone = sparse_parity::run_cell(
                gpu,
                &ParityConfig {
                    seeds: 1,
                    ..config.clone()
                },
                &cell,
                40 + j as u64,
            )
            .unwrap();
            assert_eq!(alone.steps[0], together.steps[j], "network {j}");
            assert_eq!(
                alone.final_accuracy[0], together.final_accuracy[j],
                "network {j}"
            );
        }
        // The counts follow each network's own record.
        let succeeded = together.steps.iter().filter(|s| s.is_some()).count();
        assert_eq!(together.successes, succeeded);
        eprintln!("{together:?}");
    }
}
