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

#[test]
fn layernorm_relu_contracts_the_gap_as_predicted() {
    let gpu = common::unchecked();
    let config = IsometryConfig {
        width: 256,
        depth: 6,
        seeds: 4,
        input_scales: vec![10.0],
        activations: vec![Activation::Relu, Activation::Identity],
        ..IsometryConfig::paper(4)
    };
    let curves = isometry::run_isometry(gpu, &config).unwrap();
    let relu_ln = curves
        .iter()
        .find(|c| c.activation == Activation::Relu && c.layernorm)
        .unwrap();
    let rel = (relu_ln.measured_rate - relu_ln.predicted_rate).abs() / relu_ln.predicted_rate;
    eprintln!(
        "relu+LN: measured {:.4} predicted {:.4} ({:.1}%) curve {:?}",
        relu_ln.measured_rate,
        relu_ln.predicted_rate,
        100.0 * rel,
        relu_ln.neg_log_isometry
    );
    assert!(
        rel < 0.10,
        "measured {} vs predicted {}",
        relu_ln.measured_rate,
        relu_ln.predicted_rate
    );
    let identity_ln = curves
        .iter()
        .find(|c| c.activation == Activation::Identity && c.layernorm)
        .unwrap();
    eprintln!(
        "identity+LN: measured {:.4} curve {:?}",
        identity_ln.measured_rate, identity_ln.neg_log_isometry
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
        eprintln!("{together:?}");
    }
}
