//! Misuse of the library API: each kind of bad input returns an `Error` of the right variant
//! whose message names the problem, never a panic, a GPU validation error or a wrong result;
//! the edge cases that are valid (empty tensors, views) compute the right thing.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{checked, random, unchecked};
use percept::deeppcr::{DeepMlp, NewtonOptions, Trajectory};
use percept::deq::{self, Deq, DeqConfig, FixedPointMap, SolverConfig};
use percept::ops::{self, Activation, Distribution, FftKind, FftNorm, FftPlan, MatmulSpec};
use percept::ops::{LayerNormAffineGrads, OptimizerKind, OptimizerStep, Reduction};
use percept::{Error, Gpu, Result, Tensor, reference};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Shape,
    Invalid,
    Limit,
    NonFinite,
}

type Case<'a> = (
    &'static str,
    Kind,
    &'static [&'static str],
    Box<dyn FnOnce() -> Result<()> + 'a>,
);

/// A case: its name, the error variant and the words its message must hold, and the call.
macro_rules! case {
    ($name:expr, $kind:ident, [$($word:expr),*], $call:expr) => {{
        let call: Box<dyn FnOnce() -> Result<()> + '_> = Box::new(|| $call.map(drop));
        ($name, Kind::$kind, &[$($word),*][..], call)
    }};
}

/// Runs every case and fails naming all that did not return the expected error.
fn check(cases: Vec<Case<'_>>) {
    let mut failures = Vec::new();
    for (name, kind, words, call) in cases {
        let problem = match catch_unwind(AssertUnwindSafe(call)) {
            Err(_) => "panicked".to_string(),
            Ok(Ok(())) => "returned Ok".to_string(),
            Ok(Err(e)) => {
                let message = e.to_string();
                let variant = match kind {
                    Kind::Shape => matches!(e, Error::Shape { .. }),
                    Kind::Invalid => matches!(e, Error::InvalidArgument { .. }),
                    Kind::Limit => matches!(e, Error::Limit { .. }),
                    Kind::NonFinite => matches!(e, Error::NonFinite { .. }),
                };
                match words.iter().find(|w| !message.contains(*w)) {
                    _ if !variant => format!("not a {kind:?} error: {message}"),
                    Some(w) => format!("the message lacks `{w}`: {message}"),
                    None => continue,
                }
            }
        };
        failures.push(format!("{name}: {problem}"));
    }
    // Whatever slipped past the validation into wgpu surfaces here.
    unchecked().synchronize().unwrap();
    checked().synchronize().unwrap();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn t(gpu: &Gpu, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_slice(gpu, &random(n as u64, n, -1.0, 1.0), shape).unwrap()
}

fn complex(gpu: &Gpu, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_complex(gpu, &vec![[1.0, -1.0]; n], shape).unwrap()
}

fn zeros(gpu: &Gpu, shape: &[usize]) -> Tensor {
    Tensor::zeros(gpu, shape).unwrap()
}

/// z -> z / 2 on `[2, 3]`.
struct Halve(Tensor);

impl FixedPointMap for Halve {
    fn gpu(&self) -> &Gpu {
        self.0.gpu()
    }
    fn shape(&self) -> [usize; 2] {
        [2, 3]
    }
    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
        ops::matmul_into(z, &self.0, &MatmulSpec::default(), out)
    }
}

fn halve(gpu: &Gpu) -> Halve {
    let half = [0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.5];
    Halve(Tensor::from_slice(gpu, &half, &[3, 3]).unwrap())
}

// Optimizer settings at learning rate 0.1 (and `lr` for SGD).
#[rustfmt::skip]
fn adam(beta1: f32, beta2: f32, eps: f32, step: u64) -> OptimizerStep {
    let kind = OptimizerKind::Adam { beta1, beta2, eps, decoupled: false };
    OptimizerStep { kind, lr: 0.1, weight_decay: 0.0, max_grad_norm: 0.0, step }
}

#[rustfmt::skip]
fn sgd(momentum: f32, lr: f32) -> OptimizerStep {
    let kind = OptimizerKind::Sgd { momentum, nesterov: false };
    OptimizerStep { kind, lr, weight_decay: 0.0, max_grad_norm: 0.0, step: 1 }
}

#[test]
fn tensors_from_another_device_are_refused() {
    // Two devices of one adapter: a buffer of one bound in the other's kernels is undefined.
    let (g, h) = (unchecked(), checked());
    let (a, b, b4) = (t(g, &[4, 4]), t(h, &[4, 4]), t(h, &[4]));
    let (s1, s2, norm) = (zeros(g, &[4, 4]), zeros(g, &[4, 4]), zeros(g, &[1]));
    let net = DeepMlp::random(g, 3, 4, Activation::Tanh, 0.5, 0.1, 1).unwrap();
    let trajectory = net.forward_sequential(&a).unwrap();
    let plan = FftPlan::new(g, FftKind::RealForward, &[4, 4], 1, FftNorm::Backward).unwrap();
    let ln = ops::layernorm(&a, None, 1e-5).unwrap();
    let model = Deq::new(g, DeqConfig::new(4, 4)).unwrap();
    let forward = model.forward(&a).unwrap();
    let (plain, mut bias) = (MatmulSpec::default(), MatmulSpec::default());
    bias.bias = Some(&b4);
    const OTHER: &str = "different devices";
    #[rustfmt::skip]
    check(vec![
        case!("add", Invalid, [OTHER], ops::add(&a, &b)),
        case!("matmul B", Invalid, [OTHER], ops::matmul(&a, &b, &plain)),
        case!("matmul bias", Invalid, [OTHER], ops::matmul(&a, &a, &bias)),
        case!("matmul_into C", Invalid, [OTHER], ops::matmul_into(&a, &a, &plain, &b)),
        case!("column_sums_into", Invalid, [OTHER], ops::column_sums_into(&a, 1.0, &b4)),
        case!("layernorm gamma", Invalid, [OTHER], ops::layernorm(&a, Some((&b4, &b4)), 1e-5)),
        case!("layernorm_backward", Invalid, [OTHER], ops::layernorm_backward(&a, &ln, &b, None)),
        case!("optimizer_step", Invalid, [OTHER],
            ops::optimizer_step(&sgd(0.0, 0.1), &a, &b, &s1, &s2, &norm)),
        case!("affine_scan", Invalid, [OTHER],
            ops::affine_scan(&zeros(h, &[2, 1, 2, 2]), &zeros(g, &[2, 1, 2]), None)),
        case!("FftPlan::execute", Invalid, ["another device"], plan.execute(&b)),
        case!("tridiagonal_solve", Invalid, [OTHER], ops::tridiagonal_solve(&a, &a, &a, &b, None)),
        case!("loss", Invalid, [OTHER],
            ops::loss(&a, &b, ops::Loss::MeanSquaredError, Reduction::Mean)),
        case!("DeepMlp forward", Invalid, ["DeepMlp", OTHER], net.forward_sequential(&b)),
        case!("DeepMlp backward", Invalid, ["DeepMlp", OTHER], net.backward(&trajectory, &b, false)),
        case!("deq::solve z0", Invalid, ["z0", "another device"],
            deq::solve(&halve(g), Some(&t(h, &[2, 3])), &SolverConfig::default())),
        case!("Deq::forward", Invalid, ["Deq::forward", OTHER], model.forward(&b)),
        case!("Deq::backward", Invalid, ["Deq::backward", OTHER], model.backward(&forward, &b, false)),
    ]);
}

#[test]
fn complex_tensors_are_refused_where_f32_is_needed() {
    let g = unchecked();
    let (a, z, z4) = (t(g, &[4, 4]), complex(g, &[4, 4]), complex(g, &[4]));
    let net = DeepMlp::random(g, 3, 4, Activation::Tanh, 0.5, 0.1, 1).unwrap();
    let trajectory = net.forward_sequential(&a).unwrap();
    let (s, norm) = (zeros(g, &[4, 4]), zeros(g, &[1]));
    let model = Deq::new(g, DeqConfig::new(4, 4)).unwrap();
    const C32: &str = "got C32";
    #[rustfmt::skip]
    check(vec![
        case!("add", Invalid, [C32], ops::add(&a, &z)),
        case!("matmul", Invalid, [C32], ops::matmul(&a, &z, &MatmulSpec::default())),
        case!("transpose", Invalid, [C32], ops::transpose(&z)),
        case!("reduce_all", Invalid, [C32], ops::reduce_all(&z, Reduction::Sum)),
        case!("layernorm", Invalid, [C32], ops::layernorm(&z, None, 1e-5)),
        case!("column_sums", Invalid, [C32], ops::column_sums(&z)),
        case!("random_fill", Invalid, [C32],
            ops::random_fill(&z4, Distribution::Uniform { low: 0.0, high: 1.0 }, 1, 0)),
        case!("optimizer_step", Invalid, [C32],
            ops::optimizer_step(&sgd(0.0, 0.1), &a, &z, &s, &s, &norm)),
        case!("DeepMlp forward", Invalid, ["DeepMlp", C32], net.forward_sequential(&z)),
        case!("DeepMlp deeppcr", Invalid, ["DeepMlp", C32],
            net.forward_deeppcr(&z, &NewtonOptions::default())),
        case!("DeepMlp backward", Invalid, ["DeepMlp", C32], net.backward(&trajectory, &z, true)),
        case!("deq::solve z0", Invalid, [C32],
            deq::solve(&halve(g), Some(&complex(g, &[2, 3])), &SolverConfig::default())),
        case!("Deq::forward", Invalid, [C32], model.forward(&z)),
        case!("Tensor::write", Invalid, [C32], z4.write(&[0.0; 4])),
    ]);
    // What does take any dtype.
    let values: Vec<[f32; 2]> = (0..8).map(|i| [i as f32, -(i as f32)]).collect();
    let z = Tensor::from_complex(g, &values, &[8]).unwrap();
    assert_eq!(ops::copy(&z).unwrap().to_complex_vec().unwrap(), values);
    let rows = z.reshape(&[4, 2]).unwrap().narrow(1..3).unwrap();
    assert_eq!(rows.to_complex_vec().unwrap(), values[2..6]);
}

#[test]
fn empty_tensors_compute_or_are_refused() {
    let g = unchecked();
    let e = zeros(g, &[0, 5]);
    for out in [ops::add(&e, &e), ops::softmax(&e), ops::copy(&e)] {
        assert_eq!(out.unwrap().shape(), [0, 5]);
    }
    assert_eq!(ops::column_sums(&e).unwrap().to_vec().unwrap(), [0.0; 5]);
    assert_eq!(ops::transpose(&zeros(g, &[0, 3])).unwrap().shape(), [3, 0]);
    // Empty, though its rows would be past a dispatch's grid.
    let huge = ops::transpose(&zeros(g, &[0, 1 << 40, 3])).unwrap();
    assert_eq!(huge.shape(), [0, 3, 1 << 40]);
    // K = 0: the product is the epilogue of zeros.
    let bias = t(g, &[3]);
    let mut spec = MatmulSpec::default();
    (spec.bias, spec.activation) = (Some(&bias), Activation::Relu);
    let c = ops::matmul(&zeros(g, &[2, 0]), &zeros(g, &[0, 3]), &spec).unwrap();
    let relu: Vec<f32> = bias.to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
    assert_eq!(c.to_vec().unwrap(), [&relu[..], &relu[..]].concat());
    // An empty view at its buffer's very end (a binding there would have no bytes).
    let end = t(g, &[4, 64]).narrow(4..4).unwrap();
    assert_eq!(ops::column_sums(&end).unwrap().to_vec().unwrap(), [0.0; 64]);
    let trans_a = MatmulSpec {
        trans_a: true,
        ..Default::default()
    };
    let c = ops::matmul(&end, &end, &trans_a).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![0.0; 64 * 64]);

    let trajectory = |states| Trajectory {
        input: t(g, &[2, 3]),
        states,
        dact: t(g, &[2, 3]),
    };
    let deq = Deq::new(g, DeqConfig::new(3, 4)).unwrap();
    let ce = ops::Loss::CrossEntropy;
    #[rustfmt::skip]
    check(vec![
        case!("reduce_all", Shape, ["empty tensor"], ops::reduce_all(&e, Reduction::Sum)),
        case!("reduce_rows of a scalar", Shape, ["scalar"],
            ops::reduce_rows(&zeros(g, &[]), Reduction::Max)),
        case!("layernorm of empty rows", Shape, ["rows of length 0"],
            ops::layernorm(&zeros(g, &[3, 0]), None, 1e-5)),
        case!("affine_scan", Shape, ["non-empty"],
            ops::affine_scan(&zeros(g, &[0, 1, 2, 2]), &zeros(g, &[0, 1, 2]), None)),
        case!("FftPlan", Invalid, ["is 0"],
            FftPlan::new(g, FftKind::Forward, &[0, 4], 1, FftNorm::Ortho)),
        case!("tridiagonal_solve", Invalid, ["empty"], ops::tridiagonal_solve(&e, &e, &e, &e, None)),
        case!("loss", Shape, ["non-empty"],
            ops::loss(&zeros(g, &[3, 0]), &zeros(g, &[3]), ce, Reduction::Mean)),
        case!("DeepMlp of no layers", Invalid, ["at least one layer"],
            DeepMlp::random(g, 0, 4, Activation::Tanh, 0.5, 0.1, 1)),
        case!("Deq::forward", Shape, ["empty"], deq.forward(&zeros(g, &[0, 3]))),
        case!("Trajectory of scalar states", Shape, ["states"], trajectory(zeros(g, &[])).output()),
        case!("Trajectory of no layers", Shape, ["states"],
            trajectory(zeros(g, &[0, 2, 3])).output()),
    ]);
}

#[test]
fn sizes_past_the_integers_or_the_adapter_are_errors() {
    let g = unchecked();
    let huge = 1usize << 33;
    let (a, b) = (zeros(g, &[huge, 0]), zeros(g, &[0, huge]));
    let product = ops::matmul(&a, &b, &MatmulSpec::default());
    let net = |layers, width| DeepMlp::random(g, layers, width, Activation::Tanh, 0.5, 0.1, 1);
    #[rustfmt::skip]
    check(vec![
        case!("Tensor::zeros", Invalid, ["overflows"], Tensor::zeros(g, &[usize::MAX, 2])),
        case!("reshape", Shape, ["cannot view"], t(g, &[4]).reshape(&[usize::MAX, 2])),
        case!("matmul of huge empty operands", Invalid, ["overflows"], product),
        case!("DeepMlp overflowing", Invalid, ["overflows"], net(usize::MAX / 2, 2)),
        // Refused before it draws a terabyte of weights on the host.
        case!("DeepMlp past the adapter", Limit, ["split the work"], net(1 << 24, 128)),
        case!("FftPlan", Invalid, ["overflows"],
            FftPlan::new(g, FftKind::Forward, &[1 << 40, 1 << 40], 1, FftNorm::Ortho)),
        case!("random_normal", Limit, ["max_storage_buffer_binding_size"],
            ops::random_normal(g, &[1 << 40], 0.0, 1.0, 1)),
        case!("Deq::new", Invalid, ["overflows"], Deq::new(g, DeqConfig::new(3, 1 << 40))),
    ]);
    // Adam's step count past i32::MAX (a checkpoint's may be any u64): the bias corrections
    // are 1, as beta^t is 0 in f32 (a bare cast to i32 wrapped to t = 0 and divided by 0).
    for step in [1u64 << 31, 1 << 32, u64::MAX] {
        let (w, grad) = (random(1, 64, -1.0, 1.0), random(2, 64, -1.0, 1.0));
        let weights = Tensor::from_slice(g, &w, &[64]).unwrap();
        let grads = Tensor::from_slice(g, &grad, &[64]).unwrap();
        let (s1, s2, norm) = (zeros(g, &[64]), zeros(g, &[64]), zeros(g, &[1]));
        let settings = adam(0.9, 0.999, 1e-8, step);
        ops::optimizer_step(&settings, &weights, &grads, &s1, &s2, &norm).unwrap();
        let mut want: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        let g64: Vec<f64> = grad.iter().map(|&v| v as f64).collect();
        let (mut m, mut v) = (vec![0.0; 64], vec![0.0; 64]);
        percept::reference::optimizer_step(&settings, &mut want, &g64, &mut m, &mut v);
        assert!(want.iter().all(|v| v.is_finite()), "step {step}");
        let got = weights.to_vec().unwrap();
        common::assert_close(&format!("step {step}"), &got, &want, 1e-5);
    }
}

#[test]
fn non_finite_and_out_of_range_settings_are_errors() {
    let g = unchecked();
    let (w, grads, s1, s2) = (t(g, &[8]), t(g, &[8]), zeros(g, &[8]), zeros(g, &[8]));
    let norm = zeros(g, &[1]);
    let step = |s: OptimizerStep| ops::optimizer_step(&s, &w, &grads, &s1, &s2, &norm);
    let net = DeepMlp::random(g, 3, 4, Activation::Tanh, 0.5, 0.1, 1).unwrap();
    let x = t(g, &[2, 4]);
    let newton = |tolerance| {
        let options = NewtonOptions {
            tolerance,
            ..Default::default()
        };
        net.forward_deeppcr(&x, &options)
    };
    let nan = [f32::NAN; 16];
    #[rustfmt::skip]
    check(vec![
        case!("Adam beta1 = 1", Invalid, ["beta1", "[0, 1)"], step(adam(1.0, 0.999, 1e-8, 1))),
        case!("Adam beta2 NaN", Invalid, ["beta2"], step(adam(0.9, f32::NAN, 1e-8, 1))),
        case!("Adam eps < 0", Invalid, ["eps"], step(adam(0.9, 0.999, -1.0, 1))),
        case!("SGD momentum 1", Invalid, ["momentum"], step(sgd(1.0, 0.1))),
        case!("SGD momentum NaN", Invalid, ["momentum"], step(sgd(f32::NAN, 0.1))),
        case!("SGD lr NaN", Invalid, ["lr"], step(sgd(0.0, f32::NAN))),
        case!("Newton tolerance NaN", Invalid, ["tolerance"], newton(f32::NAN)),
        case!("Newton tolerance < 0", Invalid, ["tolerance"], newton(-1.0)),
        case!("DeepMlp weights NaN", NonFinite, ["DeepMlp"],
            DeepMlp::from_host(g, 1, 4, Activation::Tanh, &nan, &[0.0; 4])),
        case!("GELU from its output", Invalid, ["Gelu"],
            ops::activation_backward_from_output(&x, &x, Activation::Gelu)),
    ]);
}

#[test]
fn outputs_aliasing_their_inputs_are_refused() {
    let g = unchecked();
    // Rows of 256 bytes: every narrow below is a view, whatever the adapter's alignment.
    let big = t(g, &[8, 64]);
    let (top, bottom) = (big.narrow(0..4).unwrap(), big.narrow(4..8).unwrap());
    let flat = big.reshape(&[512]).unwrap();
    let row = |i: usize| flat.narrow(64 * i..64 * (i + 1)).unwrap();
    let (grads, norm) = (t(g, &[64]), zeros(g, &[1]));
    let (s1, s2) = (zeros(g, &[64]), zeros(g, &[64]));
    let opt = |w: &Tensor, gr: &Tensor, a: &Tensor, b: &Tensor, n: &Tensor| {
        ops::optimizer_step(&adam(0.9, 0.999, 1e-8, 1), w, gr, a, b, n)
    };
    let z = complex(g, &[2, 32]);
    let (z0, z1) = (z.narrow(0..1).unwrap(), z.narrow(1..2).unwrap());
    let plan = FftPlan::new(g, FftKind::Forward, &[1, 32], 1, FftNorm::Ortho).unwrap();
    let (x, dy) = (t(g, &[3, 64]), t(g, &[3, 64]));
    let ln = ops::layernorm(&x, None, 1e-5).unwrap();
    let (gamma, dgamma) = (t(g, &[64]), zeros(g, &[64]));
    let dy_row = dy.reshape(&[192]).unwrap().narrow(64..128).unwrap();
    let affine = |dgamma, dbeta| {
        Some(LayerNormAffineGrads {
            gamma: &gamma,
            dgamma,
            dbeta,
        })
    };
    let square = t(g, &[64, 64]);
    let norm_in_weights = flat.narrow(64..65).unwrap();
    const SHARE: &str = "share";
    #[rustfmt::skip]
    check(vec![
        case!("axpy", Invalid, [SHARE], ops::axpy(1.0, &top, &bottom)),
        case!("matmul_into", Invalid, [SHARE],
            ops::matmul_into(&top, &square, &MatmulSpec::default(), &bottom)),
        case!("column_sums_into", Invalid, [SHARE], ops::column_sums_into(&top, 1.0, &row(7))),
        case!("FftPlan::execute_into", Invalid, [SHARE], plan.execute_into(&z0, &z1)),
        case!("optimizer weights = grads", Invalid, ["weights and grads share"],
            opt(&row(0), &row(1), &s1, &s2, &norm)),
        case!("optimizer state1 = state2", Invalid, ["state1 and state2 share"],
            opt(&row(0), &grads, &s1, &s1, &norm)),
        case!("optimizer weights overlap state1", Invalid, ["weights and state1 share"],
            opt(&row(0), &grads, &flat.narrow(32..96).unwrap(), &s2, &norm)),
        case!("optimizer norm in weights", Invalid, ["grad_norm_sq share"],
            opt(&row(0), &grads, &s1, &s2, &norm_in_weights)),
        case!("layernorm_backward dgamma = dbeta", Invalid, ["overlap"],
            ops::layernorm_backward(&x, &ln, &dy, affine(&dgamma, &dgamma))),
        case!("layernorm_backward dbeta in dy", Invalid, ["dy"],
            ops::layernorm_backward(&x, &ln, &dy, affine(&dgamma, &dy_row))),
    ]);
    // Disjoint views of one buffer (a flat parameter or gradient buffer) are fine, and so is one
    // tensor for the state plain SGD does not keep.
    let own = |v: Tensor| Tensor::from_slice(g, &v.to_vec().unwrap(), &[64]).unwrap();
    let (w_own, s1_own) = (own(row(2)), own(row(3)));
    opt(&row(2), &grads, &row(3), &s2, &norm).unwrap();
    opt(&w_own, &grads, &s1_own, &zeros(g, &[64]), &norm).unwrap();
    assert_eq!(row(2).to_vec().unwrap(), w_own.to_vec().unwrap());
    ops::optimizer_step(&sgd(0.0, 0.1), &row(4), &grads, &s1, &s1, &norm).unwrap();
    // The gradient as the unused state is refused: the state is bound for writing, and a
    // buffer bound both ways would fail the whole pending submission.
    let err = ops::optimizer_step(&sgd(0.0, 0.1), &row(4), &grads, &grads, &grads, &norm);
    assert!(err.unwrap_err().to_string().contains("grads"));
    g.synchronize().unwrap();
    let flat_grads = zeros(g, &[128]);
    let dg = flat_grads.narrow(0..64).unwrap();
    let db = flat_grads.narrow(64..128).unwrap();
    let dx = ops::layernorm_backward(&x, &ln, &dy, affine(&dg, &db)).unwrap();
    let (dg2, db2) = (zeros(g, &[64]), zeros(g, &[64]));
    let dx2 = ops::layernorm_backward(&x, &ln, &dy, affine(&dg2, &db2)).unwrap();
    assert_eq!(dx.to_vec().unwrap(), dx2.to_vec().unwrap());
    let both = [dg2.to_vec().unwrap(), db2.to_vec().unwrap()].concat();
    assert_eq!(flat_grads.to_vec().unwrap(), both);
}

#[test]
fn shape_mismatches_name_the_shapes() {
    let g = unchecked();
    let net = DeepMlp::random(g, 3, 4, Activation::Tanh, 0.5, 0.1, 1).unwrap();
    let deeper = DeepMlp::random(g, 5, 4, Activation::Tanh, 0.5, 0.1, 1).unwrap();
    let (x, x5) = (t(g, &[2, 4]), t(g, &[5, 4]));
    let trajectory = net.forward_sequential(&x).unwrap();
    let model = Deq::new(g, DeqConfig::new(4, 4)).unwrap();
    let forward = model.forward(&x).unwrap();
    let ln = ops::layernorm(&x, None, 1e-5).unwrap();
    let ln5 = ops::layernorm(&x5, None, 1e-5).unwrap();
    let (w, s, norm) = (t(g, &[8]), zeros(g, &[8]), zeros(g, &[1]));
    #[rustfmt::skip]
    check(vec![
        case!("DeepMlp input width", Shape, ["[2, 5]", "[batch, 4]"],
            net.forward_sequential(&t(g, &[2, 5]))),
        case!("DeepMlp backward batch", Shape, ["trajectory", "[5, 4]"],
            net.backward(&trajectory, &x5, false)),
        case!("DeepMlp backward other network", Shape, ["trajectory", "[5, 2, 4]"],
            deeper.backward(&trajectory, &x, true)),
        case!("Deq::backward", Shape, ["[5, 4]", "[2, 4]"], model.backward(&forward, &x5, false)),
        case!("deq::solve z0", Shape, ["z0", "[2, 3]"],
            deq::solve(&halve(g), Some(&x), &SolverConfig::default())),
        case!("optimizer state", Shape, ["state2", "[4]"],
            ops::optimizer_step(&sgd(0.0, 0.1), &w, &t(g, &[8]), &s, &zeros(g, &[4]), &norm)),
        case!("layernorm_backward mean", Shape, ["mean", "[2]"],
            ops::layernorm_backward(&x, &ln5, &x, None)),
        case!("layernorm_backward dy", Shape, ["dy", "[5, 4]"],
            ops::layernorm_backward(&x, &ln, &x5, None)),
        case!("column_sums_into", Shape, ["[8]", "4 columns"], ops::column_sums_into(&x, 1.0, &w)),
    ]);
}

#[test]
fn views_compute_as_their_copies() {
    let g = unchecked();
    // Rows of 256 bytes: rows 4..12 are a view at a non-zero offset on every adapter.
    let x = t(g, &[16, 64]);
    let v = x.narrow(4..12).unwrap();
    let c = ops::copy(&v).unwrap();
    // The host values the view covers: an offset bug reads other rows and fails the oracle
    // even where the copy (made through the same offset) agrees with the view.
    let host = &x.to_vec().unwrap()[4 * 64..12 * 64];
    assert_eq!(c.to_vec().unwrap(), host, "copy");
    let same = |name: &str, op: &dyn Fn(&Tensor) -> Result<Tensor>, want: Vec<f64>, tol: f64| {
        let (on_view, on_copy) = (op(&v).unwrap(), op(&c).unwrap());
        let on_view = on_view.to_vec().unwrap();
        assert_eq!(on_view, on_copy.to_vec().unwrap(), "{name}");
        let err = reference::max_rel_err(&on_view, &want);
        assert!(
            err <= tol,
            "{name}: max_rel_err {err:.2e} off f64 > {tol:.0e}"
        );
    };
    same("softmax", &ops::softmax, reference::softmax(host, 64), 1e-5);
    let ln = reference::layernorm(host, 64, None, 1e-5).0;
    same(
        "layernorm",
        &|x| Ok(ops::layernorm(x, None, 1e-5)?.y),
        ln,
        1e-4,
    );
    let max = reference::reduce_rows(host, 64, Reduction::Max);
    same(
        "reduce_rows",
        &|x| ops::reduce_rows(x, Reduction::Max),
        max,
        0.0,
    );
    same(
        "column_sums",
        &ops::column_sums,
        reference::column_sums(host, 64),
        1e-5,
    );
    same(
        "transpose",
        &ops::transpose,
        reference::transpose(host, 1, 8, 64),
        0.0,
    );
    let gelu = reference::activation(host, Activation::Gelu);
    same(
        "gelu",
        &|x| ops::activation(x, Activation::Gelu),
        gelu,
        1e-5,
    );
    let plan = FftPlan::new(g, FftKind::RealForward, &[8, 64], 1, FftNorm::Backward).unwrap();
    let spectrum = |a: &Tensor| plan.execute(a).unwrap().to_complex_vec().unwrap();
    assert_eq!(spectrum(&v), spectrum(&c), "fft");
    let want: Vec<f64> = reference::fft_r2c(host, &[8, 64], 1, FftNorm::Backward).concat();
    let err = reference::max_rel_err(&spectrum(&v).concat(), &want);
    assert!(err <= 1e-5, "fft: max_rel_err {err:.2e} off f64");
    // Kernels writing into a view leave the rest of its buffer alone.
    let out = zeros(g, &[4, 64]);
    let row1 = out.narrow(1..2).unwrap().reshape(&[64]).unwrap();
    ops::column_sums_into(&x, 1.0, &row1).unwrap();
    let dist = Distribution::Uniform {
        low: 1.0,
        high: 2.0,
    };
    ops::random_fill(&out.narrow(3..4).unwrap(), dist, 1, 0).unwrap();
    let (all, sums) = (out.to_vec().unwrap(), ops::column_sums(&x).unwrap());
    assert_eq!(all[64..128], sums.to_vec().unwrap()[..]);
    let want = reference::column_sums(&x.to_vec().unwrap(), 64);
    let err = reference::max_rel_err(&all[64..128], &want);
    assert!(err <= 1e-5, "column_sums_into a view: {err:.2e} off f64");
    assert!(all[..64].iter().chain(&all[128..192]).all(|&v| v == 0.0));
    assert!(all[192..].iter().all(|&v| (1.0..2.0).contains(&v)));
}
