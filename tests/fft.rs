//! The FFT plans against rustfft in f64: every length 1..=64, primes, products of small primes
//! and powers of two, along the last and a strided axis, every kind and normalisation; round
//! trips, Parseval's identity, the adjoint identity, and bad input. Each case runs with
//! bounds-checked and unchecked shader modules. Many small transforms are recorded before the
//! first readback, so they go to the GPU in few submissions.

mod common;

use common::{both, random};
use percept::ops::{FftKind, FftNorm, FftPlan};
use percept::reference;
use percept::{DType, Error, Gpu, Tensor};

/// Relative L2 error allowed for a transform of length n: f32 rounding grows with log2 n.
fn tolerance(n: usize) -> f64 {
    1e-5 * (n as f64).log2().max(1.0)
}

/// `||got - want|| / ||want||` over flattened values.
fn rel_l2(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "compared lengths differ");
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        err += (g as f64 - w).powi(2);
        norm += w * w;
    }
    (err / norm.max(f64::MIN_POSITIVE)).sqrt()
}

fn flat(values: &[[f32; 2]]) -> Vec<f32> {
    values.iter().flatten().copied().collect()
}

fn flat64(values: &[[f64; 2]]) -> Vec<f64> {
    values.iter().flatten().copied().collect()
}

fn random_complex(seed: u64, n: usize) -> Vec<[f32; 2]> {
    random(seed, 2 * n, -1.0, 1.0)
        .chunks(2)
        .map(|c| [c[0], c[1]])
        .collect()
}

/// Host data of a plan's input, and its upload.
enum Input {
    Real(Vec<f32>),
    Complex(Vec<[f32; 2]>),
}

impl Input {
    fn random(seed: u64, dtype: DType, shape: &[usize]) -> Input {
        let len = shape.iter().product();
        match dtype {
            DType::F32 => Input::Real(random(seed, len, -1.0, 1.0)),
            DType::C32 => Input::Complex(random_complex(seed, len)),
        }
    }

    fn upload(&self, gpu: &Gpu, shape: &[usize]) -> Tensor {
        match self {
            Input::Real(x) => Tensor::from_slice(gpu, x, shape).unwrap(),
            Input::Complex(x) => Tensor::from_complex(gpu, x, shape).unwrap(),
        }
    }
}

/// Flattened values of a real or complex tensor.
fn download(t: &Tensor) -> Vec<f32> {
    match t.dtype() {
        DType::F32 => t.to_vec().unwrap(),
        DType::C32 => flat(&t.to_complex_vec().unwrap()),
    }
}

/// The oracle of a plan applied to `input`, flattened.
fn oracle(plan: &FftPlan, shape: &[usize], input: &Input) -> Vec<f64> {
    let (axis, norm) = (plan.axis(), plan.norm());
    match (plan.kind(), input) {
        (FftKind::Forward, Input::Complex(x)) => {
            flat64(&reference::fft_c2c(x, shape, axis, false, norm))
        }
        (FftKind::Inverse, Input::Complex(x)) => {
            flat64(&reference::fft_c2c(x, shape, axis, true, norm))
        }
        (FftKind::RealForward, Input::Real(x)) => flat64(&reference::fft_r2c(x, shape, axis, norm)),
        (FftKind::RealInverse, Input::Complex(x)) => reference::fft_c2r(x, shape, axis, norm),
        _ => unreachable!("input dtype follows the plan"),
    }
}

/// One planned transform of random input, recorded; checked against the oracle later.
struct Case {
    name: String,
    plan: FftPlan,
    shape: Vec<usize>,
    input: Input,
    output: Tensor,
}

impl Case {
    fn record(
        gpu: &Gpu,
        kind: FftKind,
        shape: &[usize],
        axis: usize,
        norm: FftNorm,
        seed: u64,
    ) -> Case {
        let plan = FftPlan::new(gpu, kind, shape, axis, norm)
            .unwrap_or_else(|e| panic!("plan {kind:?} {shape:?} axis {axis}: {e}"));
        let input = Input::random(seed, plan.input_dtype(), &plan.input_shape());
        let x = input.upload(gpu, &plan.input_shape());
        let output = plan.execute(&x).unwrap();
        let name = format!(
            "{kind:?} {norm:?} shape {shape:?} axis {axis} ({}, checked {})",
            plan.algorithm(),
            gpu.checked()
        );
        Case {
            name,
            plan,
            shape: shape.to_vec(),
            input,
            output,
        }
    }

    fn check(&self) {
        let want = oracle(&self.plan, &self.shape, &self.input);
        let err = rel_l2(&download(&self.output), &want);
        let tol = tolerance(self.plan.n());
        assert!(
            err <= tol,
            "{}: relative L2 error {err:.2e} > {tol:.1e}",
            self.name
        );
    }
}

/// Records every case first, then checks them all.
fn check_all(cases: impl IntoIterator<Item = Case>) {
    let cases: Vec<Case> = cases.into_iter().collect();
    for case in &cases {
        case.check();
    }
}

#[test]
fn every_length_to_64_every_kind() {
    for gpu in both() {
        let cases = (1..=64).flat_map(|n| {
            FftKind::ALL
                .map(|kind| Case::record(gpu, kind, &[3, n], 1, FftNorm::Backward, n as u64))
        });
        check_all(cases);
    }
}

#[test]
fn primes_and_products_of_small_primes() {
    for gpu in both() {
        let cases = [97, 257, 1009, 360, 1000, 4097].into_iter().flat_map(|n| {
            [FftKind::Forward, FftKind::RealForward, FftKind::RealInverse]
                .map(|kind| Case::record(gpu, kind, &[2, n], 1, FftNorm::Backward, n as u64))
        });
        check_all(cases);
    }
}

#[test]
fn powers_of_two_to_2_16() {
    for gpu in both() {
        let cases = (7..=16).flat_map(|log| {
            let n = 1usize << log;
            let batch = if n > 4096 { 1 } else { 2 };
            [FftKind::Forward, FftKind::RealForward]
                .map(|kind| Case::record(gpu, kind, &[batch, n], 1, FftNorm::Backward, log))
        });
        check_all(cases);
    }
}

#[test]
fn strided_axes_every_kind() {
    for gpu in both() {
        let mut cases = Vec::new();
        for n in [1, 2, 5, 6, 16, 97, 360] {
            for kind in FftKind::ALL {
                for (shape, axis) in [(vec![2, n, 3], 1), (vec![n, 5], 0), (vec![2, 3, n], 2)] {
                    cases.push(Case::record(gpu, kind, &shape, axis, FftNorm::Backward, 7));
                }
            }
        }
        // Long enough to take several passes: along a strided axis too.
        cases.push(Case::record(
            gpu,
            FftKind::Forward,
            &[8192, 2],
            0,
            FftNorm::Ortho,
            8,
        ));
        check_all(cases);
    }
}

#[test]
fn every_normalisation() {
    for gpu in both() {
        let mut cases = Vec::new();
        for n in [12, 13, 64] {
            for kind in FftKind::ALL {
                for norm in FftNorm::ALL {
                    cases.push(Case::record(gpu, kind, &[2, n], 1, norm, 11));
                    cases.push(Case::record(gpu, kind, &[2, n, 3], 1, norm, 12));
                }
            }
        }
        check_all(cases);
    }
}

/// `(shape, axis)` of the identity tests: last axis and strided, smooth and Bluestein lengths.
fn identity_shapes() -> Vec<(Vec<usize>, usize)> {
    let mut shapes = Vec::new();
    for n in [1, 2, 7, 16, 97, 1000] {
        shapes.push((vec![2, n], 1));
        shapes.push((vec![n, 3], 0));
    }
    shapes
}

#[test]
fn inverse_of_forward_is_identity() {
    for gpu in both() {
        for (shape, axis) in identity_shapes() {
            let n = shape[axis];
            for norm in FftNorm::ALL {
                for (fwd, inv) in [
                    (FftKind::Forward, FftKind::Inverse),
                    (FftKind::RealForward, FftKind::RealInverse),
                ] {
                    let forward = FftPlan::new(gpu, fwd, &shape, axis, norm).unwrap();
                    let inverse = FftPlan::new(gpu, inv, &shape, axis, norm).unwrap();
                    let input = Input::random(3, forward.input_dtype(), &shape);
                    let x = input.upload(gpu, &shape);
                    let back = inverse.execute(&forward.execute(&x).unwrap()).unwrap();
                    let want: Vec<f64> = download(&x).iter().map(|&v| v as f64).collect();
                    let err = rel_l2(&download(&back), &want);
                    assert!(
                        err <= tolerance(n),
                        "{fwd:?} then {inv:?}, {norm:?}, shape {shape:?} axis {axis}: {err:.2e}"
                    );
                }
            }
        }
    }
}

/// Sum of squared magnitudes; for a real transform's bins, the interior ones count twice (for
/// their conjugate twins).
fn energy(values: &[f32], half_spectrum_of: Option<usize>) -> f64 {
    let mut total = 0.0;
    for (i, pair) in values.chunks(2).enumerate() {
        let e = pair.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        total += match half_spectrum_of {
            Some(n) if i % (n / 2 + 1) != 0 && 2 * (i % (n / 2 + 1)) != n => 2.0 * e,
            _ => e,
        };
    }
    total
}

#[test]
fn parseval() {
    for gpu in both() {
        for n in [1, 16, 97, 1000] {
            for kind in [FftKind::Forward, FftKind::RealForward] {
                let plan = FftPlan::new(gpu, kind, &[2, n], 1, FftNorm::Ortho).unwrap();
                let input = Input::random(5, plan.input_dtype(), &[2, n]);
                let x = input.upload(gpu, &[2, n]);
                let y = download(&plan.execute(&x).unwrap());
                let x = download(&x);
                let ex = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
                let ey = energy(&y, kind.is_real().then_some(n));
                assert!(
                    (ex - ey).abs() <= tolerance(n) * ex,
                    "{kind:?} n={n}: |x|^2 = {ex}, |y|^2 = {ey}"
                );
            }
        }
    }
}

/// `Re Σ conj(a) b` over flattened values: the real inner product.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// <F x, y> = <x, F* y> on random x and y.
fn check_adjoint(gpu: &Gpu, kind: FftKind, shape: &[usize], axis: usize, norm: FftNorm) {
    let plan = FftPlan::new(gpu, kind, shape, axis, norm).unwrap();
    let (in_shape, out_shape) = (plan.input_shape(), plan.output_shape());
    let x = Input::random(21, plan.input_dtype(), &in_shape).upload(gpu, &in_shape);
    let y = Input::random(22, plan.output_dtype(), &out_shape).upload(gpu, &out_shape);
    let fx = download(&plan.execute(&x).unwrap());
    let fty = download(&plan.adjoint(&y).unwrap());
    let (x, y) = (download(&x), download(&y));
    let (lhs, rhs) = (dot(&fx, &y), dot(&x, &fty));
    // Compare with the size of the terms, not of the (cancelling) sums.
    let size = (dot(&fx, &fx) * dot(&y, &y)).sqrt();
    assert!(
        (lhs - rhs).abs() <= tolerance(shape[axis]) * size,
        "{kind:?} {norm:?} shape {shape:?} axis {axis} ({}): <Fx,y> = {lhs}, <x,F*y> = {rhs}",
        plan.algorithm()
    );
}

#[test]
fn adjoint_identity() {
    for gpu in both() {
        for (shape, axis) in identity_shapes() {
            for kind in FftKind::ALL {
                for norm in FftNorm::ALL {
                    check_adjoint(gpu, kind, &shape, axis, norm);
                }
            }
        }
    }
}

/// The adjoints' elementwise error, relative to the largest value (`max_rel_err`): measured at
/// most 2.2e-7 on lavapipe, at every length here up to 2^17 (it did not grow with n); 4.5x
/// margin. The inner-product check allows `tolerance(n)` of `|F x| |y|`, about sqrt(N) more.
const ADJOINT_TOL: f64 = 1e-6;

/// `adjoint` and `adjoint_into` elementwise against `reference::fft_adjoint`, which is first checked
/// in f64 against the oracle's forward transforms by `<F x, y> = <x, F* y>`.
fn check_adjoint_elementwise(
    gpu: &Gpu,
    kind: FftKind,
    shape: &[usize],
    axis: usize,
    norm: FftNorm,
) {
    let plan = FftPlan::new(gpu, kind, shape, axis, norm).unwrap();
    let (in_shape, out_shape) = (plan.input_shape(), plan.output_shape());
    let case = format!(
        "{kind:?} {norm:?} shape {shape:?} axis {axis} ({}, checked {})",
        plan.algorithm(),
        gpu.checked()
    );
    let x = Input::random(23, plan.input_dtype(), &in_shape);
    let y = Input::random(24, plan.output_dtype(), &out_shape);
    let y_flat = match &y {
        Input::Real(v) => v.clone(),
        Input::Complex(v) => flat(v),
    };
    let want = reference::fft_adjoint(kind, norm, shape, axis, &y_flat);
    // The oracle is the adjoint of the f64 transform: <F x, y> = <x, F* y> to f64 rounding.
    let fx = oracle(&plan, shape, &x);
    let x_flat: Vec<f64> = match &x {
        Input::Real(v) => v.iter().map(|&t| t as f64).collect(),
        Input::Complex(v) => flat(v).iter().map(|&t| t as f64).collect(),
    };
    let lhs: f64 = fx.iter().zip(&y_flat).map(|(a, &b)| a * b as f64).sum();
    let rhs: f64 = x_flat.iter().zip(&want).map(|(a, b)| a * b).sum();
    let size = fx.iter().map(|a| a * a).sum::<f64>().sqrt()
        * y_flat
            .iter()
            .map(|&b| (b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
    assert!(
        (lhs - rhs).abs() <= 1e-12 * size,
        "{case}: the oracle is no adjoint: <Fx,y> = {lhs}, <x,F*y> = {rhs}"
    );
    let dy = y.upload(gpu, &out_shape);
    let got = download(&plan.adjoint(&dy).unwrap());
    let dx = Input::random(25, plan.input_dtype(), &in_shape).upload(gpu, &in_shape);
    plan.adjoint_into(&dy, &dx).unwrap();
    let got_into = download(&dx);
    let tol = ADJOINT_TOL;
    for (name, got) in [("adjoint", got), ("adjoint_into", got_into)] {
        let err = reference::max_rel_err(&got, &want);
        eprintln!("{case} {name}: {err:.2e}");
        assert!(
            err <= tol,
            "{case} {name}: max_rel_err {err:.2e} > {tol:.1e}"
        );
    }
}

/// The adjoints elementwise (not only through an inner product, which hides errors about
/// sqrt(N) below its tolerance): odd, even, prime (Bluestein) and strided lengths, every kind
/// and normalisation.
#[test]
fn adjoints_match_the_f64_adjoint_elementwise() {
    let shapes: [(&[usize], usize); 7] = [
        (&[3, 1], 1),
        (&[3, 2], 1),
        (&[3, 7], 1),
        (&[2, 12], 1),
        (&[3, 1000], 1),
        (&[2, 1009], 1),
        (&[4, 9, 3], 1),
    ];
    for gpu in both() {
        for &(shape, axis) in &shapes {
            for kind in FftKind::ALL {
                for norm in FftNorm::ALL {
                    check_adjoint_elementwise(gpu, kind, shape, axis, norm);
                }
            }
        }
    }
}

/// The same through plans of several passes (past one workgroup's memory).
#[test]
fn multi_pass_adjoints_match_the_f64_adjoint_elementwise() {
    let gpu = common::unchecked();
    for norm in FftNorm::ALL {
        for (kind, n) in [
            (FftKind::Forward, 1 << 15),
            (FftKind::Inverse, 1 << 15),
            (FftKind::RealForward, 1 << 17),
            (FftKind::RealInverse, 1 << 17),
        ] {
            check_adjoint_elementwise(gpu, kind, &[1, n], 1, norm);
        }
    }
}

/// Inverses and adjoints of plans of several passes (past one workgroup's memory) and of
/// Bluestein through a multi-pass FFT.
#[test]
fn multi_pass_inverses_and_adjoints() {
    let gpu = common::unchecked();
    check_all([
        Case::record(
            gpu,
            FftKind::Inverse,
            &[2, 1 << 15],
            1,
            FftNorm::Backward,
            40,
        ),
        Case::record(
            gpu,
            FftKind::RealInverse,
            &[1, 1 << 17],
            1,
            FftNorm::Ortho,
            41,
        ),
        Case::record(gpu, FftKind::Inverse, &[1, 40009], 1, FftNorm::Forward, 42),
    ]);
    for (kind, n) in [
        (FftKind::Forward, 1 << 15),
        (FftKind::Forward, 40009),
        (FftKind::RealForward, 1 << 17),
        (FftKind::RealInverse, 1 << 17),
    ] {
        check_adjoint(gpu, kind, &[1, n], 1, FftNorm::Backward);
    }
}

/// A plan shared by threads: each transform's passes share the plan's scratch, so two threads
/// recording at once must not interleave them.
#[test]
fn threads_share_a_plan() {
    let gpu = common::unchecked();
    // Two Stockham passes on any adapter; Bluestein, whose two dispatches share a buffer.
    for (shape, seed) in [([2usize, 1 << 14], 50), ([3, 1009], 60)] {
        let plan = FftPlan::new(gpu, FftKind::Forward, &shape, 1, FftNorm::Backward).unwrap();
        std::thread::scope(|s| {
            for t in 0..2 {
                let plan = &plan;
                s.spawn(move || {
                    let input = Input::random(seed + t, DType::C32, &shape);
                    let x = input.upload(gpu, &shape);
                    let outputs: Vec<Tensor> = (0..20).map(|_| plan.execute(&x).unwrap()).collect();
                    let want = oracle(plan, &shape, &input);
                    for y in &outputs {
                        let err = rel_l2(&download(y), &want);
                        assert!(
                            err <= tolerance(shape[1]),
                            "thread {t} {shape:?}: {err:.2e}"
                        );
                    }
                });
            }
        });
    }
}

#[test]
fn plans_are_reusable_and_write_into_given_outputs() {
    for gpu in both() {
        let plan = FftPlan::new(gpu, FftKind::Forward, &[4, 360], 1, FftNorm::Backward).unwrap();
        let a = Input::random(1, DType::C32, &[4, 360]);
        let b = Input::random(2, DType::C32, &[4, 360]);
        let (xa, xb) = (a.upload(gpu, &[4, 360]), b.upload(gpu, &[4, 360]));
        let out = Tensor::from_complex(gpu, &vec![[0.0; 2]; 4 * 360], &[4, 360]).unwrap();
        let ya = plan.execute(&xa).unwrap();
        plan.execute_into(&xb, &out).unwrap();
        let ya_again = plan.execute(&xa).unwrap();
        for (y, input) in [(&ya, &a), (&out, &b), (&ya_again, &a)] {
            let err = rel_l2(&download(y), &oracle(&plan, &[4, 360], input));
            assert!(err <= tolerance(360), "reuse: {err:.2e}");
        }
    }
}

#[test]
fn plans_compile_every_kernel_they_run_when_built() {
    // A device of its own, so that other tests' compilations do not move the count.
    let gpu = common::open_with(percept::GpuOptions::default());
    let cases: &[(FftKind, &[usize], usize)] = &[
        (FftKind::Forward, &[3, 1000], 1),        // one Stockham pass
        (FftKind::Inverse, &[2, 1 << 15], 1),     // two passes
        (FftKind::Forward, &[2, 1009], 1),        // Bluestein, fused
        (FftKind::Forward, &[1, 40009], 1),       // Bluestein through a multi-pass FFT
        (FftKind::RealForward, &[4, 512], 1),     // real, fused
        (FftKind::RealInverse, &[6, 8], 0),       // real along a strided axis
        (FftKind::RealForward, &[3, 9], 1),       // real of odd length
        (FftKind::RealInverse, &[1, 1 << 17], 1), // real through a multi-pass core
    ];
    for &(kind, shape, axis) in cases {
        let plan = FftPlan::new(&gpu, kind, shape, axis, FftNorm::Ortho).unwrap();
        let compiled = gpu.cached_pipelines();
        let input = plan.input_shape();
        let x = Input::random(3, plan.input_dtype(), &input).upload(&gpu, &input);
        let y = plan.execute(&x).unwrap();
        plan.adjoint(&y).unwrap();
        gpu.synchronize().unwrap();
        assert_eq!(
            gpu.cached_pipelines(),
            compiled,
            "{kind:?} {shape:?} axis {axis} ({}) compiled at execute time",
            plan.algorithm()
        );
    }
}

#[test]
fn bad_input_is_an_error() {
    let gpu = common::unchecked();
    let plan =
        |kind, shape: &[usize], axis| FftPlan::new(gpu, kind, shape, axis, FftNorm::Backward);
    let invalid = |r: Result<FftPlan, Error>, what: &str| match r {
        Err(Error::InvalidArgument { detail, .. }) => assert!(detail.contains(what), "{detail}"),
        other => panic!("expected an invalid-argument error about {what}, got {other:?}"),
    };
    invalid(plan(FftKind::Forward, &[4, 0], 1), "length");
    invalid(plan(FftKind::Forward, &[0, 4], 1), "batch");
    invalid(plan(FftKind::Forward, &[4, 4], 2), "axis");
    invalid(plan(FftKind::Forward, &[], 0), "axis");
    // One complex value past the largest storage binding.
    let values = gpu.limits().max_storage_buffer_binding_size / 8 + 1;
    match plan(FftKind::Forward, &[values.div_ceil(1024) as usize, 1024], 1) {
        Err(Error::Limit { limit_name, .. }) => {
            assert!(limit_name.contains("buffer"), "{limit_name}")
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    // A prime whose signals fit but whose Bluestein padding (past 2n) does not: refused before
    // the host computes tables of that length.
    let prime = 140_000_041;
    if (prime as u64 * 8) < gpu.limits().max_storage_buffer_binding_size {
        let started = std::time::Instant::now();
        let refused = plan(FftKind::Forward, &[1, prime], 1);
        assert!(matches!(refused, Err(Error::Limit { .. })), "{refused:?}");
        let took = started.elapsed();
        assert!(took.as_secs_f64() < 2.0, "refused after {took:?}");
    }

    let c2c = plan(FftKind::Forward, &[2, 8], 1).unwrap();
    let real = Tensor::from_slice(gpu, &[0.5; 16], &[2, 8]).unwrap();
    match c2c.execute(&real) {
        Err(Error::InvalidArgument { detail, .. }) => assert!(detail.contains("C32"), "{detail}"),
        other => panic!("expected a dtype error, got {other:?}"),
    }
    let wrong = Tensor::from_complex(gpu, &[[0.5, 0.5]; 16], &[4, 4]).unwrap();
    assert!(matches!(c2c.execute(&wrong), Err(Error::Shape { .. })));
    let x = Tensor::from_complex(gpu, &[[0.5, 0.5]; 16], &[2, 8]).unwrap();
    assert!(matches!(
        c2c.execute_into(&x, &x),
        Err(Error::InvalidArgument { .. })
    ));
    // The adjoint takes tensors like the output: the spectrum of a real transform.
    let r2c = plan(FftKind::RealForward, &[2, 8], 1).unwrap();
    assert!(matches!(r2c.adjoint(&x), Err(Error::Shape { .. })));
    let other_device = common::checked();
    let elsewhere = Tensor::from_complex(other_device, &[[0.5, 0.5]; 16], &[2, 8]).unwrap();
    assert!(matches!(
        c2c.execute(&elsewhere),
        Err(Error::InvalidArgument { .. })
    ));
}
