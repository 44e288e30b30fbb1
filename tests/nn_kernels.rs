//! The training kernels (losses, column sums, layer-norm backward, optimizers, backward through
//! activations) against their f64 oracles, and the oracles' gradients against finite
//! differences.

mod common;

use common::{assert_close, both, random};
use percept::ops::{self, Activation, Loss, OptimizerKind, OptimizerStep, Reduction};
use percept::{Gpu, Tensor, reference};

const LOSSES: [Loss; 4] = [
    Loss::CrossEntropy,
    Loss::MeanSquaredError,
    Loss::Hinge,
    Loss::MultiMargin,
];

fn loss_targets(kind: Loss, rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let r = random(seed, rows * cols, 0.0, 1.0);
    match kind {
        Loss::CrossEntropy | Loss::MultiMargin => (0..rows)
            .map(|i| ((r[i] * cols as f32) as usize).min(cols - 1) as f32)
            .collect(),
        Loss::MeanSquaredError => random(seed, rows * cols, -1.0, 1.0),
        Loss::Hinge => r
            .iter()
            .map(|&v| if v < 0.5 { -1.0 } else { 1.0 })
            .collect(),
    }
}

#[test]
fn losses_and_gradients_match_the_oracle() {
    for gpu in both() {
        for kind in LOSSES {
            for &(rows, cols) in &[(7, 10), (3, 300), (1, 1)] {
                if kind == Loss::CrossEntropy && cols == 1 {
                    continue;
                }
                let pred_host = random(1, rows * cols, -3.0, 3.0);
                let target_host = loss_targets(kind, rows, cols, 2);
                let pred = Tensor::from_slice(gpu, &pred_host, &[rows, cols]).unwrap();
                let tshape: Vec<usize> = if kind.takes_class_indices() {
                    vec![rows]
                } else {
                    vec![rows, cols]
                };
                let target = Tensor::from_slice(gpu, &target_host, &tshape).unwrap();
                for reduction in [Reduction::Mean, Reduction::Sum] {
                    let out = ops::loss(&pred, &target, kind, reduction).unwrap();
                    let (want, want_grad) =
                        reference::loss(&pred_host, &target_host, cols, kind, reduction);
                    let case = format!("{kind:?} {reduction:?} {rows}x{cols}");
                    assert_close(&case, &out.loss.to_vec().unwrap(), &[want], 1e-5);
                    assert_close(&case, &out.grad.to_vec().unwrap(), &want_grad, 1e-5);
                }
            }
        }
    }
}

/// A NaN score makes its row's loss and gradient NaN under every loss: the margins' max and
/// comparisons used to turn it into a finite loss (0 for a multiclass margin) and gradient.
#[test]
fn a_nan_score_is_passed_on_by_every_loss() {
    for gpu in both() {
        for kind in LOSSES {
            let (rows, cols) = (2, 3);
            for at in [0, 1] {
                let mut pred_host = random(3, rows * cols, -0.2, 0.2);
                // Row 1: the true class's score (class 0), then another's.
                pred_host[cols + at] = f32::NAN;
                let mut target_host = loss_targets(kind, rows, cols, 4);
                if kind.takes_class_indices() {
                    target_host = vec![0.0; rows];
                }
                let pred = Tensor::from_slice(gpu, &pred_host, &[rows, cols]).unwrap();
                let tshape = match kind.takes_class_indices() {
                    true => vec![rows],
                    false => vec![rows, cols],
                };
                let target = Tensor::from_slice(gpu, &target_host, &tshape).unwrap();
                let out = ops::loss(&pred, &target, kind, Reduction::Sum).unwrap();
                let case = format!("{kind:?} NaN at column {at}");
                assert!(out.loss.to_vec().unwrap()[0].is_nan(), "{case}");
                let grad = out.grad.to_vec().unwrap();
                assert!(grad[cols..].iter().any(|g| g.is_nan()), "{case}: {grad:?}");
                assert!(
                    grad[..cols].iter().all(|g| g.is_finite()),
                    "{case}: {grad:?}"
                );
            }
        }
    }
}

#[test]
fn class_indices_outside_the_columns_give_their_rows_nan_and_touch_no_other_row() {
    let gpu = common::unchecked();
    let cols = 10;
    // A label past the columns would index the next row (row 1's 10 reaches row 2) or past the
    // end (the last row's); 9 is the last valid class.
    let labels = [3.0, 10.0, 7.0, -1.0, 2.5, 9.0, 300.0];
    let rows = labels.len();
    let pred_host = random(3, rows * cols, -3.0, 3.0);
    let pred = Tensor::from_slice(gpu, &pred_host, &[rows, cols]).unwrap();
    let target = Tensor::from_slice(gpu, &labels, &[rows]).unwrap();
    for kind in [Loss::CrossEntropy, Loss::MultiMargin] {
        let out = ops::loss(&pred, &target, kind, Reduction::Sum).unwrap();
        assert!(out.loss.to_vec().unwrap()[0].is_nan(), "{kind:?}");
        let grad = out.grad.to_vec().unwrap();
        for (row, &label) in labels.iter().enumerate() {
            let got = &grad[row * cols..(row + 1) * cols];
            if [3.0, 7.0, 9.0].contains(&label) {
                let x = &pred_host[row * cols..(row + 1) * cols];
                let (_, want) = reference::loss(x, &[label], cols, kind, Reduction::Sum);
                assert_close(&format!("{kind:?} row {row}"), got, &want, 1e-5);
            } else {
                assert!(
                    got.iter().all(|g| g.is_nan()),
                    "{kind:?} row {row}: {got:?}"
                );
            }
        }
    }
}

/// Cross-entropy of rows whose true class dominates, relative to the value: the loss log z with
/// z = 1 + 2e-8 came out 0 (1.4e-3 off at z = 1 + 6e-5), and the true class's gradient p - 1
/// lost as many digits.
#[test]
fn cross_entropy_of_confident_rows_is_accurate_relative_to_its_value() {
    let cols = 10;
    let mut pred_host = random(12, 4 * cols, -1.0, 1.0);
    for (row, top) in [8.0, 12.0, 20.0, 30.0].into_iter().enumerate() {
        pred_host[row * cols + row] = top;
    }
    let labels = [0.0, 1.0, 2.0, 3.0];
    for gpu in both() {
        let pred = Tensor::from_slice(gpu, &pred_host, &[4, cols]).unwrap();
        let target = Tensor::from_slice(gpu, &labels, &[4]).unwrap();
        for row in 0..4 {
            let one = Tensor::from_slice(gpu, &pred_host[row * cols..(row + 1) * cols], &[1, cols])
                .unwrap();
            let label = Tensor::from_slice(gpu, &labels[row..row + 1], &[1]).unwrap();
            let out = ops::loss(&one, &label, Loss::CrossEntropy, Reduction::Sum).unwrap();
            let (want, want_grad) = reference::loss(
                &pred_host[row * cols..(row + 1) * cols],
                &labels[row..row + 1],
                cols,
                Loss::CrossEntropy,
                Reduction::Sum,
            );
            let got = out.loss.to_vec().unwrap()[0] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "row {row}: loss {got:e}, want {want:e}"
            );
            let grad = out.grad.to_vec().unwrap();
            let (g, w) = (grad[row] as f64, want_grad[row]);
            assert!(
                (g - w).abs() <= 1e-5 * w.abs(),
                "row {row}: true class's gradient {g:e}, want {w:e}"
            );
        }
        let out = ops::loss(&pred, &target, Loss::CrossEntropy, Reduction::Mean).unwrap();
        let (want, _) = reference::loss(
            &pred_host,
            &labels,
            cols,
            Loss::CrossEntropy,
            Reduction::Mean,
        );
        let got = out.loss.to_vec().unwrap()[0] as f64;
        assert!(
            (got - want).abs() <= 1e-5 * want,
            "mean loss {got:e}, want {want:e}"
        );
    }
}

/// Multi-margin scores past 2^24: 1 - y_t + y_j dropped the 1 (equal scores of 3e7 gave a
/// margin of 0, not 1), so the loss and the gradient lost those terms.
#[test]
fn multi_margin_of_large_scores_keeps_the_margin() {
    let (rows, cols) = (4, 5);
    let mut pred_host: Vec<f32> = random(13, rows * cols, -4.0, 4.0)
        .iter()
        .map(|v| (v + 3e7).round())
        .collect();
    pred_host[..cols].fill(3e7);
    let labels: Vec<f32> = (0..rows).map(|r| r as f32).collect();
    for gpu in both() {
        let pred = Tensor::from_slice(gpu, &pred_host, &[rows, cols]).unwrap();
        let target = Tensor::from_slice(gpu, &labels, &[rows]).unwrap();
        let out = ops::loss(&pred, &target, Loss::MultiMargin, Reduction::Mean).unwrap();
        let (want, want_grad) = reference::loss(
            &pred_host,
            &labels,
            cols,
            Loss::MultiMargin,
            Reduction::Mean,
        );
        assert_close(
            "multi-margin loss",
            &out.loss.to_vec().unwrap(),
            &[want],
            1e-6,
        );
        assert_close(
            "multi-margin grad",
            &out.grad.to_vec().unwrap(),
            &want_grad,
            1e-6,
        );
    }
}

/// The backward of rows with a mean far above their spread: the f32 mean the forward hands on is
/// off by up to half an ulp of 1e4, a few percent of the spread, which shifted every xhat the
/// backward recomputed (dx 1.1e-3 off, normwise).
#[test]
fn layernorm_backward_of_rows_with_a_large_mean_and_a_small_spread() {
    let (rows, cols) = (4, 1000);
    let x_host: Vec<f32> = random(14, rows * cols, -1e-2, 1e-2)
        .iter()
        .map(|v| v + 1e4)
        .collect();
    let dy_host = random(15, rows * cols, -1.0, 1.0);
    let gamma_host = random(16, cols, 0.5, 1.5);
    for gpu in both() {
        let (dx, dgamma, _) = affine_layernorm_backward(gpu, &x_host, &dy_host, &gamma_host, 1e-5);
        let (want_dx, want_dg, _) =
            reference::layernorm_backward(&x_host, cols, Some(&gamma_host), &dy_host, 1e-5);
        assert_close("dx", &dx, &want_dx, 1e-5);
        assert_close("dgamma", &dgamma, &want_dg, 1e-5);
    }
}

/// dx, dgamma and dbeta of a layer norm with gain `gamma` (and bias 0) over rows of
/// `gamma.len()`, on the GPU.
fn affine_layernorm_backward(
    gpu: &Gpu,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = [x.len() / gamma.len(), gamma.len()];
    let x = Tensor::from_slice(gpu, x, &shape).unwrap();
    let dy = Tensor::from_slice(gpu, dy, &shape).unwrap();
    let gamma = Tensor::from_slice(gpu, gamma, &shape[1..]).unwrap();
    let beta = Tensor::zeros(gpu, &shape[1..]).unwrap();
    let forward = ops::layernorm(&x, Some((&gamma, &beta)), eps).unwrap();
    let (dgamma, dbeta) = (
        Tensor::zeros(gpu, &shape[1..]).unwrap(),
        Tensor::zeros(gpu, &shape[1..]).unwrap(),
    );
    let affine = ops::LayerNormAffineGrads {
        gamma: &gamma,
        dgamma: &dgamma,
        dbeta: &dbeta,
    };
    let dx = ops::layernorm_backward(&x, &forward, &dy, Some(affine)).unwrap();
    (
        dx.to_vec().unwrap(),
        dgamma.to_vec().unwrap(),
        dbeta.to_vec().unwrap(),
    )
}

#[test]
fn loss_oracle_gradients_match_finite_differences() {
    let (rows, cols) = (3, 5);
    let h = 1e-3f32;
    for kind in LOSSES {
        let pred = random(3, rows * cols, -2.0, 2.0);
        let target = loss_targets(kind, rows, cols, 4);
        let (_, grad) = reference::loss(&pred, &target, cols, kind, Reduction::Mean);
        for i in 0..pred.len() {
            let (mut up, mut down) = (pred.clone(), pred.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (reference::loss(&up, &target, cols, kind, Reduction::Mean).0
                - reference::loss(&down, &target, cols, kind, Reduction::Mean).0)
                / (2.0 * h as f64);
            assert!(
                (fd - grad[i]).abs() < 1e-4,
                "{kind:?} element {i}: gradient {}, finite difference {fd}",
                grad[i]
            );
        }
    }
}

#[test]
fn column_sums_tall_and_short() {
    for gpu in both() {
        for &(rows, cols) in &[(1, 1), (5, 70), (600, 3), (1025, 65)] {
            let host = random(5, rows * cols, -1.0, 1.0);
            let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
            let got = ops::column_sums(&x).unwrap().to_vec().unwrap();
            assert_close(
                &format!("column sums {rows}x{cols}"),
                &got,
                &reference::column_sums(&host, cols),
                1e-5,
            );
        }
    }
    // Grids past one dispatch dimension (65,537 chunks of rows, 65,537 groups of columns),
    // and three launches for the tall one.
    let gpu = common::unchecked();
    for &(rows, cols) in &[(256 * 65_536 + 1, 1), (1, 64 * 65_536 + 1)] {
        let host = random(6, rows * cols, -1.0, 1.0);
        let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
        let got = ops::column_sums(&x).unwrap().to_vec().unwrap();
        let want = reference::column_sums(&host, cols);
        assert_close(&format!("column sums {rows}x{cols}"), &got, &want, 1e-5);
    }
}

/// `column_sums_into` with a scale other than 1: it must be applied once, in the last launch,
/// whether the rows take one launch (<= 256), two (1025: 5 partial rows) or three (70,001: 274,
/// then 2).
#[test]
fn column_sums_into_applies_its_scale_once() {
    let scale = -0.37f32;
    for gpu in both() {
        for &(rows, cols) in &[(200, 67), (1025, 67), (70_001, 67)] {
            let host = random(7, rows * cols, -1.0, 1.0);
            let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
            let out = Tensor::from_slice(gpu, &random(8, cols, -1.0, 1.0), &[cols]).unwrap();
            ops::column_sums_into(&x, scale, &out).unwrap();
            let want: Vec<f64> = reference::column_sums(&host, cols)
                .iter()
                .map(|v| v * scale as f64)
                .collect();
            assert_close(
                &format!("{scale} x column sums {rows}x{cols}"),
                &out.to_vec().unwrap(),
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn layernorm_backward_matches_oracle_and_finite_differences() {
    let eps = 1e-5;
    for gpu in both() {
        for &(rows, cols) in &[(6, 33), (2, 300)] {
            let x_host = random(6, rows * cols, -2.0, 2.0);
            let dy_host = random(7, rows * cols, -1.0, 1.0);
            let gamma_host = random(8, cols, 0.5, 1.5);
            let (dx, dgamma, dbeta) =
                affine_layernorm_backward(gpu, &x_host, &dy_host, &gamma_host, eps as f32);
            let (want_dx, want_dg, want_db) =
                reference::layernorm_backward(&x_host, cols, Some(&gamma_host), &dy_host, eps);
            let case = format!("layernorm backward {rows}x{cols}");
            assert_close(&case, &dx, &want_dx, 1e-4);
            assert_close(&case, &dgamma, &want_dg, 1e-5);
            assert_close(&case, &dbeta, &want_db, 1e-5);
            let x = Tensor::from_slice(gpu, &x_host, &[rows, cols]).unwrap();
            let dy = Tensor::from_slice(gpu, &dy_host, &[rows, cols]).unwrap();
            let plain = ops::layernorm(&x, None, eps as f32).unwrap();
            let dx_plain = ops::layernorm_backward(&x, &plain, &dy, None).unwrap();
            let (want_plain, _, _) =
                reference::layernorm_backward(&x_host, cols, None, &dy_host, eps);
            assert_close(&case, &dx_plain.to_vec().unwrap(), &want_plain, 1e-4);
        }
    }
    // The oracle against central differences of sum(dy * layernorm(x)).
    let (rows, cols) = (2, 7);
    let x = random(9, rows * cols, -2.0, 2.0);
    let dy = random(10, rows * cols, -1.0, 1.0);
    let gamma = random(11, cols, 0.5, 1.5);
    let objective = |x: &[f32], gamma: &[f32]| -> f64 {
        let zeros = vec![0.0; cols];
        let (y, _, _) = reference::layernorm(x, cols, Some((gamma, &zeros)), eps);
        y.iter().zip(&dy).map(|(a, &b)| a * b as f64).sum()
    };
    let (dx, dgamma, _) = reference::layernorm_backward(&x, cols, Some(&gamma), &dy, eps);
    let h = 1e-3f32;
    for i in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (objective(&up, &gamma) - objective(&down, &gamma)) / (2.0 * h as f64);
        assert!(
            (fd - dx[i]).abs() < 1e-3,
            "dx[{i}] = {}, finite difference {fd}",
            dx[i]
        );
    }
    for j in 0..cols {
        let (mut up, mut down) = (gamma.clone(), gamma.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (objective(&x, &up) - objective(&x, &down)) / (2.0 * h as f64);
        assert!(
            (fd - dgamma[j]).abs() < 1e-3,
            "dgamma[{j}] = {}, finite difference {fd}",
            dgamma[j]
        );
    }
}

#[test]
fn backward_from_output_matches_backward_from_input() {
    let n = 513;
    let x_host = random(12, n, -4.0, 4.0);
    let g_host = random(13, n, -1.0, 1.0);
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[n]).unwrap();
        let g = Tensor::from_slice(gpu, &g_host, &[n]).unwrap();
        for act in Activation::ALL
            .into_iter()
            .filter(|a| a.derivative_from_output())
        {
            let y = ops::activation(&x, act).unwrap();
            let y_host = y.to_vec().unwrap();
            let got = ops::activation_backward_from_output(&y, &g, act)
                .unwrap()
                .to_vec()
                .unwrap();
            assert_close(
                &format!("{act:?}"),
                &got,
                &reference::activation_backward_from_output(&y_host, &g_host, act),
                1e-5,
            );
            assert_close(
                &format!("{act:?} vs input form"),
                &got,
                &reference::activation_backward(&x_host, &g_host, act),
                1e-4,
            );
        }
        let y = ops::activation(&x, Activation::Gelu).unwrap();
        assert!(ops::activation_backward_from_output(&y, &g, Activation::Gelu).is_err());
    }
}

#[test]
fn optimizers_match_their_formulas_over_steps() {
    let n = 300;
    let kinds = [
        OptimizerKind::Sgd {
            momentum: 0.0,
            nesterov: false,
        },
        OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: true,
        },
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decoupled: false,
        },
        OptimizerKind::Adam {
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            decoupled: true,
        },
    ];
    for gpu in both() {
        for kind in kinds {
            for max_grad_norm in [0.0, 0.5] {
                let w0 = random(14, n, -1.0, 1.0);
                let w = Tensor::from_slice(gpu, &w0, &[n]).unwrap();
                let (s1, s2) = (
                    Tensor::zeros(gpu, &[n]).unwrap(),
                    Tensor::zeros(gpu, &[n]).unwrap(),
                );
                let mut want_w: Vec<f64> = w0.iter().map(|&v| v as f64).collect();
                let (mut want_s1, mut want_s2) = (vec![0.0; n], vec![0.0; n]);
                for t in 1..=4u64 {
                    let g_host = random(100 + t, n, -1.0, 1.0);
                    let g = Tensor::from_slice(gpu, &g_host, &[n]).unwrap();
                    let norm_sq = ops::reduce_all(&g, Reduction::SumOfSquares).unwrap();
                    let step = OptimizerStep {
                        kind,
                        lr: 0.05,
                        weight_decay: 0.01,
                        max_grad_norm,
                        step: t,
                    };
                    ops::optimizer_step(&step, &w, &g, &s1, &s2, &norm_sq).unwrap();
                    let g64: Vec<f64> = g_host.iter().map(|&v| v as f64).collect();
                    reference::optimizer_step(&step, &mut want_w, &g64, &mut want_s1, &mut want_s2);
                }
                assert_close(
                    &format!("{kind:?} clip {max_grad_norm}"),
                    &w.to_vec().unwrap(),
                    &want_w,
                    1e-5,
                );
            }
        }
    }
}
