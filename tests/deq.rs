//! DEQ solvers against their f64 twins, implicit and phantom gradients against finite
//! differences and unrolled backpropagation, and failures reported as errors.

mod common;

use common::random;
use percept::deq::{FixedPointMap, Method, SolverConfig, Stop, solve};
use percept::ops::{self, Activation, MatmulSpec};
use percept::reference::{self, solve_row};
use percept::{Error, Gpu, Result, Tensor};

/// z = act(z Wᵀ + inj) with a per-row injection: the Gao et al. cell after its input layer.
struct Cell {
    w: Tensor,
    inj: Tensor,
    act: Activation,
    w_host: Vec<f32>,
    inj_host: Vec<f32>,
    rows: usize,
    width: usize,
}

impl Cell {
    /// W ~ U(-1, 1) scaled so its rows have norm about `gain`.
    fn new(gpu: &Gpu, rows: usize, width: usize, gain: f32, act: Activation, seed: u64) -> Cell {
        let scale = gain * (3.0 / width as f32).sqrt();
        let w_host: Vec<f32> = random(seed, width * width, -scale, scale);
        let inj_host = random(seed + 1, rows * width, -1.0, 1.0);
        Cell {
            w: Tensor::from_slice(gpu, &w_host, &[width, width]).unwrap(),
            inj: Tensor::from_slice(gpu, &inj_host, &[rows, width]).unwrap(),
            act,
            w_host,
            inj_host,
            rows,
            width,
        }
    }

    /// f for one row in f64.
    fn row_map(&self, row: usize) -> impl Fn(&[f64]) -> Vec<f64> + '_ {
        move |z: &[f64]| {
            (0..self.width)
                .map(|i| {
                    let pre = self.inj_host[row * self.width + i] as f64
                        + (0..self.width)
                            .map(|j| self.w_host[i * self.width + j] as f64 * z[j])
                            .sum::<f64>();
                    reference::activation_scalar(self.act, pre)
                })
                .collect()
        }
    }
}

impl FixedPointMap for Cell {
    fn gpu(&self) -> &Gpu {
        self.w.gpu()
    }

    fn shape(&self) -> [usize; 2] {
        [self.rows, self.width]
    }

    fn apply(&self, z: &Tensor, out: &Tensor) -> Result<()> {
        let spec = MatmulSpec {
            trans_b: true,
            add: Some(&self.inj),
            activation: self.act,
            ..Default::default()
        };
        ops::matmul_into(z, &self.w, &spec, out)
    }
}

const METHODS: [Method; 4] = [
    Method::FIXED_POINT,
    Method::FixedPoint { damping: 0.7 },
    Method::ANDERSON,
    Method::Broyden { memory: 3 },
];

fn config(method: Method, tol: f32, max_iter: usize) -> SolverConfig {
    SolverConfig {
        method,
        tol,
        max_iter,
        check_every: 4,
        ..Default::default()
    }
}

#[test]
fn every_solver_reaches_the_f64_fixed_point() {
    for gpu in common::both() {
        let cell = Cell::new(gpu, 5, 37, 0.7, Activation::Tanh, 1);
        for method in METHODS {
            for stop in [Stop::Absolute, Stop::Relative] {
                let solution = solve(
                    &cell,
                    None,
                    &SolverConfig {
                        stop,
                        ..config(method, 1e-5, 200)
                    },
                )
                .unwrap();
                let stats = &solution.stats;
                assert!(stats.converged, "{method:?} {stop:?}: {stats:?}");
                assert!(stats.max_residual <= 1e-5, "{stats:?}");
                assert_eq!(stats.residuals.len(), stats.iterations);
                let z = solution.z.to_vec().unwrap();
                for row in 0..cell.rows {
                    let want = solve_row(
                        &cell.row_map(row),
                        &vec![0.0; cell.width],
                        &Method::FIXED_POINT,
                        1e-13,
                        Stop::Absolute,
                        1000,
                    );
                    assert!(want.converged);
                    common::assert_close(
                        &format!("{method:?} {stop:?} row {row}"),
                        &z[row * cell.width..(row + 1) * cell.width],
                        &want.z,
                        1e-4,
                    );
                }
            }
        }
    }
}

#[test]
fn iterates_follow_the_f64_twin_step_by_step() {
    let gpu = common::unchecked();
    let cell = Cell::new(gpu, 3, 70, 0.9, Activation::Tanh, 2);
    let z0_host = random(9, cell.rows * cell.width, -0.5, 0.5);
    let z0 = Tensor::from_slice(gpu, &z0_host, &[cell.rows, cell.width]).unwrap();
    let small_rings = [
        Method::Anderson {
            memory: 2,
            lambda: 1e-4,
            beta: 0.8,
            warmup: 3,
        },
        Method::Broyden { memory: 2 },
    ];
    for method in [Method::FIXED_POINT, Method::ANDERSON, Method::BROYDEN]
        .into_iter()
        .chain(small_rings)
    {
        for iters in [2, 5, 9] {
            let c = SolverConfig {
                accept_unconverged: true,
                ..config(method, 0.0, iters)
            };
            let got = solve(&cell, Some(&z0), &c).unwrap();
            assert_eq!(got.stats.iterations, iters);
            let z = got.z.to_vec().unwrap();
            for row in 0..cell.rows {
                let range = row * cell.width..(row + 1) * cell.width;
                let start: Vec<f64> = z0_host[range.clone()].iter().map(|&v| v as f64).collect();
                let want = solve_row(
                    &cell.row_map(row),
                    &start,
                    &method,
                    0.0,
                    Stop::Absolute,
                    iters,
                );
                common::assert_close(
                    &format!("{method:?} after {iters} row {row}"),
                    &z[range],
                    &want.z,
                    1e-4,
                );
            }
        }
    }
}

#[test]
fn anderson_and_broyden_need_fewer_iterations_than_plain_iteration() {
    let gpu = common::unchecked();
    // The bench problem at a small size (W of variance 0.36/n, injections of variance about 1),
    // and a slower-contracting one. A random W's spectrum fills a disk, where no Krylov-type
    // method can beat plain iteration by much; the margin grows as contraction weakens.
    for (gain, plain_at_least) in [(0.6, 10), (1.05, 25)] {
        let mut cell = Cell::new(gpu, 16, 96, gain, Activation::Tanh, 3);
        cell.inj_host.iter_mut().for_each(|v| *v *= 1.7);
        cell.inj = Tensor::from_slice(gpu, &cell.inj_host, &[16, 96]).unwrap();
        let iterations = |method| {
            let c = SolverConfig {
                stop: Stop::Relative,
                check_every: 1,
                ..config(method, 1e-4, 300)
            };
            let s = solve(&cell, None, &c).unwrap().stats;
            assert!(s.converged && s.fallbacks == 0, "{s:?}");
            s.iterations
        };
        let plain = iterations(Method::FIXED_POINT);
        let anderson = iterations(Method::ANDERSON);
        let broyden = iterations(Method::BROYDEN);
        assert!(
            plain >= plain_at_least,
            "gain {gain}: plain iteration took only {plain}"
        );
        assert!(
            anderson < plain && broyden < plain,
            "gain {gain}: plain {plain}, Anderson {anderson}, Broyden {broyden}"
        );
    }
}

#[test]
fn a_non_contractive_map_is_a_non_convergence_error_or_the_best_iterate() {
    let gpu = common::unchecked();
    let cell = Cell::new(gpu, 4, 40, 6.0, Activation::Tanh, 4);
    for method in [Method::FIXED_POINT, Method::ANDERSON, Method::BROYDEN] {
        let err = solve(&cell, None, &config(method, 1e-6, 25)).err().unwrap();
        assert!(matches!(err, Error::NotConverged { rows: 4, .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("did not converge") && msg.contains("accept_unconverged"),
            "{msg}"
        );
        let c = SolverConfig {
            accept_unconverged: true,
            ..config(method, 1e-6, 25)
        };
        let s = solve(&cell, None, &c).unwrap();
        assert!(!s.stats.converged && s.stats.max_residual > 1e-6);
        assert!(s.z.to_vec().unwrap().iter().all(|v| v.is_finite()));
        let trace_min = s
            .stats
            .residuals
            .iter()
            .fold(f32::INFINITY, |a, &b| a.min(b));
        // Each row keeps its best iterate, so the worst of those is at most the best iteration's worst.
        assert!(s.stats.max_residual <= trace_min);
    }
}

#[test]
fn nan_iterates_are_never_returned() {
    let gpu = common::unchecked();
    let mut cell = Cell::new(gpu, 3, 20, 0.3, Activation::Tanh, 5);
    // Row 1's injection is NaN: every f(z) of that row is NaN.
    cell.inj_host[20 + 7] = f32::NAN;
    cell.inj = Tensor::from_slice(gpu, &cell.inj_host, &[3, 20]).unwrap();
    let c = SolverConfig {
        accept_unconverged: true,
        ..config(Method::ANDERSON, 1e-5, 30)
    };
    let s = solve(&cell, None, &c).unwrap();
    assert_eq!(s.stats.converged_rows, 2);
    assert!(s.stats.max_residual.is_infinite(), "{:?}", s.stats);
    let z = s.z.to_vec().unwrap();
    assert!(z.iter().all(|v| v.is_finite()));
    assert!(z[20..40].iter().all(|&v| v == 0.0), "row 1 keeps its start");
    let err = solve(&cell, None, &config(Method::ANDERSON, 1e-5, 30))
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::NotConverged { non_finite: 1, .. }),
        "{err}"
    );
    // A NaN start that no iterate replaces is refused, not returned.
    let nan_start = Tensor::from_slice(gpu, &[f32::NAN; 60], &[3, 20]).unwrap();
    let err = solve(&cell, Some(&nan_start), &c).err().unwrap();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

/// z = 1.5 z + 1 diverges: ||f(z)||^2 overflows f32 while ||f(z) - z||^2 does not (z near 1e19),
/// which once made the relative residual 0 and the row "converged" on a blown-up iterate; with
/// -1.5, f(z) - z itself overflows near 1.4e38 while f and z do not.
#[test]
fn a_diverging_row_never_meets_a_relative_tolerance() {
    for gain in [1.5, -1.5] {
        diverging_row(gain);
    }
}

fn diverging_row(gain: f32) {
    let gpu = common::unchecked();
    let width = 4;
    let mut w_host = vec![0.0f32; width * width];
    for i in 0..width {
        w_host[i * width + i] = gain;
    }
    let cell = Cell {
        w: Tensor::from_slice(gpu, &w_host, &[width, width]).unwrap(),
        inj: Tensor::from_slice(gpu, &[1.0; 4], &[1, width]).unwrap(),
        act: Activation::Identity,
        w_host,
        inj_host: vec![1.0; 4],
        rows: 1,
        width,
    };
    let c = SolverConfig {
        stop: Stop::Relative,
        ..config(Method::FIXED_POINT, 1e-3, 300)
    };
    let err = solve(&cell, None, &c)
        .err()
        .expect("a diverging row converged");
    assert!(matches!(err, Error::NotConverged { .. }), "{err}");
}

/// Evaluations of f are not wasted: n steps of plain iteration from zero return the n-th
/// iterate, f applied n times, as an unrolled loop (or PyTorch's) would.
#[test]
fn plain_iteration_returns_the_last_evaluation() {
    let gpu = common::unchecked();
    let cell = Cell::new(gpu, 2, 9, 0.5, Activation::Tanh, 8);
    for steps in [1, 5] {
        let c = SolverConfig {
            accept_unconverged: true,
            ..config(Method::FIXED_POINT, 0.0, steps)
        };
        let got = solve(&cell, None, &c).unwrap().z.to_vec().unwrap();
        let mut want = Vec::new();
        for row in 0..2 {
            let f = cell.row_map(row);
            let mut z = vec![0.0; 9];
            for _ in 0..steps {
                z = f(&z);
            }
            want.extend(z);
        }
        common::assert_close(&format!("{steps} steps"), &got, &want, 1e-6);
    }
}

#[test]
fn singular_updates_fall_back_to_plain_steps_and_say_so() {
    let gpu = common::unchecked();
    // f(z) = z + c: the residual never changes, so Anderson's least-squares problem and
    // Broyden's secant condition are both singular.
    let width = 12;
    let mut eye = vec![0.0f32; width * width];
    for i in 0..width {
        eye[i * width + i] = 1.0;
    }
    let cell = Cell {
        w: Tensor::from_slice(gpu, &eye, &[width, width]).unwrap(),
        inj: Tensor::from_slice(gpu, &random(6, 2 * width, 0.1, 0.2), &[2, width]).unwrap(),
        act: Activation::Identity,
        w_host: eye.clone(),
        inj_host: vec![],
        rows: 2,
        width,
    };
    for method in [
        Method::Anderson {
            memory: 4,
            lambda: 0.0,
            beta: 1.0,
            warmup: 0,
        },
        Method::BROYDEN,
    ] {
        let c = SolverConfig {
            accept_unconverged: true,
            ..config(method, 1e-6, 8)
        };
        let s = solve(&cell, None, &c).unwrap().stats;
        assert!(!s.converged, "{method:?}: {s:?}");
        assert!(s.fallbacks >= 2 * 6, "{method:?}: {s:?}");
        // Plain steps from 0 by c: the residual stays ||c||.
        let first = s.residuals[0];
        assert!(
            s.residuals
                .iter()
                .all(|r| (r - first).abs() <= 1e-5 * first),
            "{s:?}"
        );
    }
}

#[test]
fn bad_settings_and_shapes_are_errors_that_name_the_problem() {
    let gpu = common::unchecked();
    let cell = Cell::new(gpu, 2, 8, 0.5, Activation::Tanh, 7);
    let cases: Vec<(SolverConfig, &str)> = vec![
        (
            config(
                Method::Anderson {
                    memory: 0,
                    lambda: 1e-4,
                    beta: 1.0,
                    warmup: 0,
                },
                1e-3,
                5,
            ),
            "memory",
        ),
        (
            config(Method::Broyden { memory: 17 }, 1e-3, 5),
            "memory in 1..=16",
        ),
        (
            config(Method::FixedPoint { damping: 0.0 }, 1e-3, 5),
            "damping",
        ),
        (config(Method::FIXED_POINT, f32::NAN, 5), "tol"),
        (config(Method::FIXED_POINT, 1e-3, 0), "max_iter"),
    ];
    for (c, needle) in cases {
        let err = solve(&cell, None, &c).err().unwrap().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let z0 = Tensor::zeros(gpu, &[3, 8]).unwrap();
    let err = solve(&cell, Some(&z0), &SolverConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("z0 has shape [3, 8]"), "{err}");
    assert!("newton".parse::<Method>().is_err());
    assert_eq!("anderson".parse::<Method>().unwrap(), Method::ANDERSON);
}

mod gradients {
    use super::common::{self, random};
    use percept::deq::{Backward, Deq, DeqConfig, MAX_PHANTOM_STEPS, Method, SolverConfig, Stop};
    use percept::ops::Activation;
    use percept::reference::activation_scalar;
    use percept::{Tensor, nn::LAYERNORM_EPS};

    const BATCH: usize = 4;

    fn tight(tol: f32) -> SolverConfig {
        SolverConfig {
            method: Method::ANDERSON,
            tol,
            stop: Stop::Absolute,
            max_iter: 300,
            check_every: 10,
            accept_unconverged: false,
        }
    }

    fn config(
        hidden: &[usize],
        norm: bool,
        activation: Activation,
        backward: Backward,
    ) -> DeqConfig {
        DeqConfig {
            hidden: hidden.to_vec(),
            outputs: 3,
            activation,
            norm,
            bias: true,
            sigma_w: 0.5,
            seed: 3,
            solver: tight(1e-6),
            backward,
            ..DeqConfig::new(5, 7)
        }
    }

    /// The model in f64: per row, the fixed point by plain iteration to 1e-13, then the head.
    fn twin_output(deq: &Deq, params: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
        let c = deq.config();
        let infos = deq.params().infos();
        let p = |name: &str| &params[infos.iter().position(|i| i.name == name).unwrap()];
        let linear = |w: &[f64], b: Option<&Vec<f64>>, v: &[f64], out: usize| -> Vec<f64> {
            (0..out)
                .map(|i| {
                    let s: f64 = (0..v.len()).map(|j| w[i * v.len() + j] * v[j]).sum();
                    s + b.map_or(0.0, |b| b[i])
                })
                .collect()
        };
        let mut widths = vec![c.width];
        widths.extend(&c.hidden);
        widths.push(c.width);
        let mut out = Vec::new();
        for row in x.chunks(c.inputs) {
            let inj = linear(p("cell.0.input"), None, row, widths[1]);
            let cell = |z: &[f64]| -> Vec<f64> {
                let mut v = z.to_vec();
                for i in 0..widths.len() - 1 {
                    let mut y = linear(
                        p(&format!("cell.{i}.weight")),
                        c.bias.then(|| p(&format!("cell.{i}.bias"))),
                        &v,
                        widths[i + 1],
                    );
                    if i == 0 {
                        y.iter_mut().zip(&inj).for_each(|(a, b)| *a += b);
                    }
                    v = y
                        .into_iter()
                        .map(|t| activation_scalar(c.activation, t))
                        .collect();
                }
                if c.norm {
                    let n = v.len() as f64;
                    let mean = v.iter().sum::<f64>() / n;
                    let var = v.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n;
                    let r = 1.0 / (var + LAYERNORM_EPS as f64).sqrt();
                    v.iter_mut().for_each(|t| *t = (*t - mean) * r);
                }
                v
            };
            let mut z = vec![0.0; c.width];
            for _ in 0..20_000 {
                let next = cell(&z);
                let d: f64 = next
                    .iter()
                    .zip(&z)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                z = next;
                if d < 1e-14 {
                    break;
                }
            }
            out.extend(linear(
                p("head.weight"),
                Some(p("head.bias")),
                &z,
                c.outputs,
            ));
        }
        out
    }

    /// The output against the f64 twin, and the gradients of sum(dy * output) from the GPU
    /// against central differences of the twin at every entry of every parameter tensor and of
    /// the input, each tensor on its own scale.
    fn check(deq: &Deq, tol: f64) {
        let gpu = common::unchecked();
        let c = deq.config().clone();
        // Non-zero biases, so their gradients are exercised away from the initial point.
        let mut values = deq.params().download().unwrap();
        for (info, v) in deq.params().infos().iter().zip(values.iter_mut()) {
            if info.name.ends_with("bias") {
                *v = random(11, v.len(), -0.3, 0.3);
            }
        }
        deq.params().upload(&values).unwrap();
        let x_host = random(12, BATCH * c.inputs, -1.0, 1.0);
        let dy_host = random(13, BATCH * c.outputs, -1.0, 1.0);
        let x = Tensor::from_slice(gpu, &x_host, &[BATCH, c.inputs]).unwrap();
        let dy = Tensor::from_slice(gpu, &dy_host, &[BATCH, c.outputs]).unwrap();
        let fwd = deq.forward(&x).unwrap();
        let back = deq.backward(&fwd, &dy, true).unwrap();
        let grads = deq.params().download_grads().unwrap();
        let dx = back.input_grad.unwrap().to_vec().unwrap();

        let params: Vec<Vec<f64>> = values
            .iter()
            .map(|v| v.iter().map(|&t| t as f64).collect())
            .collect();
        let x64: Vec<f64> = x_host.iter().map(|&t| t as f64).collect();
        let loss = |params: &[Vec<f64>], x: &[f64]| -> f64 {
            twin_output(deq, params, x)
                .iter()
                .zip(&dy_host)
                .map(|(o, d)| o * *d as f64)
                .sum()
        };
        // The forward against the f64 twin, elementwise.
        let want_out = twin_output(deq, &params, &x64);
        let out_err = percept::reference::max_rel_err(&fwd.output.to_vec().unwrap(), &want_out);
        assert!(
            out_err <= OUTPUT_TOL,
            "{:?}: output {out_err:.2e} off the f64 twin > {OUTPUT_TOL:.0e}",
            c.backward
        );
        // Every entry of every parameter tensor and of the input, each tensor on its own scale
        // (a transposed square weight, or a tensor of small gradients, must not pass).
        let h = 1e-5;
        let central = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        let mut errors = vec![format!("output {out_err:.1e}")];
        for (t, info) in deq.params().infos().iter().enumerate() {
            let want: Vec<f64> = (0..info.len())
                .map(|k| {
                    central(&|d| {
                        let mut p = params.clone();
                        p[t][k] += d;
                        loss(&p, &x64)
                    })
                })
                .collect();
            let rel = percept::reference::max_rel_err(&grads[t], &want);
            errors.push(format!("{} {rel:.1e}", info.name));
            assert!(
                rel <= tol,
                "{:?} d/d {}: gradient error {rel:.2e} > {tol:.0e}",
                c.backward,
                info.name
            );
        }
        let want: Vec<f64> = (0..x64.len())
            .map(|k| {
                central(&|d| {
                    let mut x = x64.clone();
                    x[k] += d;
                    loss(&params, &x)
                })
            })
            .collect();
        let rel = percept::reference::max_rel_err(&dx, &want);
        errors.push(format!("x {rel:.1e}"));
        eprintln!(
            "hidden {:?} norm {}: {}",
            c.hidden,
            c.norm,
            errors.join(", ")
        );
        assert!(
            rel <= tol,
            "{:?} d/dx: gradient error {rel:.2e} > {tol:.0e}",
            c.backward
        );
    }

    /// The output against the f64 twin: measured at most 4.5e-7 (the forward solve stops at a
    /// residual of 1e-6), with a 6x margin.
    const OUTPUT_TOL: f64 = 3e-6;
    /// Each gradient tensor against finite differences, on its own scale: measured at most
    /// 6.2e-6 (cell.1.weight with a hidden layer and the norm), with a 5x margin. (The old
    /// bound, 1e-3 of the largest gradient at three entries a tensor, was 160x looser.)
    const GRAD_TOL: f64 = 3e-5;

    #[test]
    fn implicit_gradients_match_finite_differences() {
        let gpu = common::unchecked();
        let implicit = Backward::Implicit {
            solver: tight(1e-7),
        };
        for (hidden, norm, act) in [
            (&[][..], false, Activation::Tanh),
            (&[6][..], true, Activation::Tanh),
            (&[][..], false, Activation::Gelu),
        ] {
            let deq = Deq::new(gpu, config(hidden, norm, act, implicit.clone())).unwrap();
            check(&deq, GRAD_TOL);
        }
    }

    #[test]
    fn phantom_gradients_approach_the_implicit_gradient() {
        let gpu = common::unchecked();
        let implicit = Backward::Implicit {
            solver: tight(1e-7),
        };
        let grads = |backward: Backward| {
            let deq = Deq::new(gpu, config(&[6], false, Activation::Tanh, backward)).unwrap();
            let x =
                Tensor::from_slice(gpu, &random(12, BATCH * 5, -1.0, 1.0), &[BATCH, 5]).unwrap();
            let dy =
                Tensor::from_slice(gpu, &random(13, BATCH * 3, -1.0, 1.0), &[BATCH, 3]).unwrap();
            let fwd = deq.forward(&x).unwrap();
            deq.backward(&fwd, &dy, false).unwrap();
            deq.params().grads().to_vec().unwrap()
        };
        let want = grads(implicit);
        let want64: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        let errors: Vec<f64> = [1, 3, 10, 40]
            .into_iter()
            .map(|steps| {
                let got = grads(Backward::Phantom {
                    steps,
                    damping: 1.0,
                });
                percept::reference::max_rel_err(&got, &want64)
            })
            .collect();
        assert!(errors.windows(2).all(|w| w[1] < w[0]), "{errors:?}");
        // Forty unrolled steps back-propagate through a long iteration: the implicit gradient.
        assert!(errors[3] < 1e-4, "{errors:?}");
        assert!(
            errors[0] > 1e-2,
            "one step should be a coarse approximation: {errors:?}"
        );
    }

    #[test]
    fn damped_phantom_gradients_also_converge_and_bad_settings_are_errors() {
        let gpu = common::unchecked();
        let deq = Deq::new(
            gpu,
            config(
                &[],
                false,
                Activation::Tanh,
                Backward::Phantom {
                    steps: 80,
                    damping: 0.5,
                },
            ),
        )
        .unwrap();
        check(&deq, GRAD_TOL);
        // A second backward overwrites, whatever the flat gradient buffer held.
        let first = deq.params().grads().to_vec().unwrap();
        check(&deq, GRAD_TOL);
        assert_eq!(deq.params().grads().to_vec().unwrap(), first);
        // No steps, or more than the activations of every step could be kept for.
        for steps in [0, MAX_PHANTOM_STEPS + 1, usize::MAX] {
            let bad = Deq::new(
                gpu,
                config(
                    &[],
                    false,
                    Activation::Tanh,
                    Backward::Phantom {
                        steps,
                        damping: 0.5,
                    },
                ),
            );
            let err = bad.err().unwrap().to_string();
            assert!(err.contains("steps in 1..=1000"), "{err}");
        }
        let x = Tensor::from_slice(gpu, &random(1, 10, -1.0, 1.0), &[2, 5]).unwrap();
        let dy = Tensor::from_slice(gpu, &random(2, 6, -1.0, 1.0), &[2, 3]).unwrap();
        let strict = Deq::new(
            gpu,
            config(
                &[],
                false,
                Activation::Tanh,
                Backward::Implicit {
                    solver: SolverConfig {
                        max_iter: 2,
                        ..tight(1e-9)
                    },
                },
            ),
        )
        .unwrap();
        let fwd = strict.forward(&x).unwrap();
        let err = strict.backward(&fwd, &dy, false).unwrap_err().to_string();
        assert!(
            err.starts_with("the DEQ's adjoint (backward) solve"),
            "{err}"
        );
        let wrong = Tensor::from_slice(gpu, &random(3, 8, -1.0, 1.0), &[2, 4]).unwrap();
        let err = deq.forward(&wrong).err().unwrap().to_string();
        assert!(err.contains("takes [batch, 5]"), "{err}");
    }
}
