//! Every kernel against its f64 oracle, on random inputs of odd shapes, with bounds-checked and
//! unchecked shader modules.

mod common;

use common::{assert_close, both, random};
use percept::ops::{
    self, Activation, MatmulKernel, MatmulSpec, Precision, Reduction, SplitB, Tile,
};
use percept::reference::{self, MatmulInputs, MatmulShape};
use percept::{Gpu, Tensor};

/// f32 accumulation over these K stays far below this; see DESIGN.md's testing notes.
const MATMUL_TOL: f64 = 1e-5;
const ELEMENTWISE_TOL: f64 = 1e-5;

struct Case {
    batch_a: Option<usize>,
    batch_b: Option<usize>,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    bias: bool,
    add: bool,
    act: Activation,
    kernel: Option<MatmulKernel>,
    precision: Precision,
}

impl Case {
    fn plain(m: usize, n: usize, k: usize) -> Case {
        Case {
            batch_a: None,
            batch_b: None,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            bias: false,
            add: false,
            act: Activation::Identity,
            kernel: None,
            precision: Precision::F32,
        }
    }

    fn run(&self, gpu: &Gpu, seed: u64) {
        let batch = self.batch_a.or(self.batch_b).unwrap_or(1);
        let a_rows = if self.trans_a {
            [self.k, self.m]
        } else {
            [self.m, self.k]
        };
        let b_rows = if self.trans_b {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        };
        let shape = |b: Option<usize>, rc: [usize; 2]| match b {
            Some(b) => vec![b, rc[0], rc[1]],
            None => rc.to_vec(),
        };
        let (a_shape, b_shape) = (shape(self.batch_a, a_rows), shape(self.batch_b, b_rows));
        let a_host = random(seed, a_shape.iter().product(), -1.0, 1.0);
        let b_host = random(seed + 1, b_shape.iter().product(), -1.0, 1.0);
        let bias_host = random(seed + 2, self.n, -1.0, 1.0);
        let a = Tensor::from_slice(gpu, &a_host, &a_shape).unwrap();
        let b = Tensor::from_slice(gpu, &b_host, &b_shape).unwrap();
        let bias = Tensor::from_slice(gpu, &bias_host, &[self.n]).unwrap();
        let mut want_shape = match (self.batch_a, self.batch_b) {
            (None, None) => vec![],
            _ => vec![batch],
        };
        want_shape.extend([self.m, self.n]);
        let add_host = random(seed + 3, batch * self.m * self.n, -1.0, 1.0);
        let add = Tensor::from_slice(gpu, &add_host, &want_shape).unwrap();
        let spec = MatmulSpec {
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            bias: self.bias.then_some(&bias),
            add: self.add.then_some(&add),
            activation: self.act,
            kernel: self.kernel,
            precision: self.precision,
            split_b: None,
        };
        let c = ops::matmul(&a, &b, &spec).unwrap();
        assert_eq!(c.shape(), &want_shape[..]);
        let s = MatmulShape {
            batch,
            m: self.m,
            n: self.n,
            k: self.k,
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            broadcast_a: self.batch_a.is_none(),
            broadcast_b: self.batch_b.is_none(),
        };
        let inputs = MatmulInputs {
            a: &a_host,
            b: &b_host,
            bias: self.bias.then_some(&bias_host[..]),
            add: self.add.then_some(&add_host[..]),
            activation: self.act,
        };
        let name = format!(
            "matmul b{:?}/{:?} {}x{}x{} ta={} tb={} bias={} add={} {:?} {:?} checked={}",
            self.batch_a,
            self.batch_b,
            self.m,
            self.n,
            self.k,
            self.trans_a,
            self.trans_b,
            self.bias,
            self.add,
            self.act,
            self.kernel,
            gpu.checked()
        );
        assert_close(
            &name,
            &c.to_vec().unwrap(),
            &reference::matmul(&s, &inputs),
            MATMUL_TOL,
        );
    }
}

#[test]
fn matmul_odd_shapes_every_transpose_and_tile() {
    let shapes = [
        (1, 1, 1),
        (17, 33, 65),
        (130, 7, 257),
        (5, 64, 12),
        // N past a multiple of 4 and of the tiles: B's vec4 loads along N meet partial tiles.
        (5, 68, 12),
        (17, 100, 65),
        (67, 129, 8),
        // M a multiple of 4: with trans_a, A's rows load as vec4.
        (132, 33, 65),
    ];
    for gpu in both() {
        for (i, &(m, n, k)) in shapes.iter().enumerate() {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    for tile in Tile::ALL {
                        let case = Case {
                            trans_a,
                            trans_b,
                            kernel: Some(tile.into()),
                            ..Case::plain(m, n, k)
                        };
                        case.run(gpu, 100 + i as u64);
                    }
                }
            }
        }
    }
}

fn split(tile: Tile, split_k: u32) -> MatmulKernel {
    MatmulKernel { tile, split_k }
}

/// K split into parts that do not divide it (K = 40 in parts of 16, 16 and 8 for the 16-deep
/// slices of `Fine`), and into more parts than it fills (K = 65 in 7 parts of 16: the last two
/// are empty and add zeros).
#[test]
fn matmul_split_k_odd_shapes_every_transpose() {
    let shapes = [(17, 33, 65), (130, 7, 257), (5, 64, 40)];
    for gpu in both() {
        for (i, &(m, n, k)) in shapes.iter().enumerate() {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    let mut kernels = vec![
                        split(Tile::Large, 2),
                        split(Tile::Small, 3),
                        split(Tile::Fine, 3),
                    ];
                    if k == 65 {
                        kernels.push(split(Tile::Large, 7));
                    }
                    for kernel in kernels {
                        let case = Case {
                            trans_a,
                            trans_b,
                            kernel: Some(kernel),
                            ..Case::plain(m, n, k)
                        };
                        case.run(gpu, 200 + i as u64);
                    }
                }
            }
        }
    }
}

/// The epilogue (bias, addend, activation) runs after the parts are added.
#[test]
fn matmul_split_k_epilogue() {
    for gpu in both() {
        for (batch_a, act) in [(None, Activation::Tanh), (Some(3), Activation::Gelu)] {
            let case = Case {
                batch_a,
                bias: true,
                add: true,
                act,
                trans_b: true,
                kernel: Some(split(Tile::Large, 4)),
                ..Case::plain(37, 70, 61)
            };
            case.run(gpu, 17);
        }
    }
}

#[test]
fn matmul_rejects_a_split_k_out_of_range() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &random(1, 2 * 20, -1.0, 1.0), &[2, 20]).unwrap();
    let b = Tensor::from_slice(gpu, &random(2, 20 * 3, -1.0, 1.0), &[20, 3]).unwrap();
    // K = 20 makes 3 slices of 8.
    for split_k in [0, 4] {
        let spec = MatmulSpec {
            kernel: Some(split(Tile::Large, split_k)),
            ..Default::default()
        };
        let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
        assert!(
            err.contains(&format!("split_k {split_k} is out of range")),
            "{err}"
        );
        assert!(err.contains("allows 1 ..= 3"), "{err}");
    }
}

/// A K longer than lavapipe lets one invocation loop over (it ends loops silently after 65535
/// iterations): the product splits K into parts within the limit, and a forced kernel that
/// would not is refused there. On adapters without such a limit both run whole.
#[test]
fn matmul_long_k_stays_within_the_loop_limit() {
    for gpu in both() {
        Case::plain(3, 5, 70_001).run(gpu, 31);
        let unsplit = Case {
            kernel: Some(Tile::Small.into()),
            ..Case::plain(3, 5, 70_001)
        };
        let a = Tensor::from_slice(gpu, &random(3, 3 * 70_001, -1.0, 1.0), &[3, 70_001]).unwrap();
        let b = Tensor::from_slice(gpu, &random(4, 70_001 * 5, -1.0, 1.0), &[70_001, 5]).unwrap();
        let spec = MatmulSpec {
            kernel: unsplit.kernel,
            ..Default::default()
        };
        match gpu.capabilities().max_loop_iterations {
            Some(_) => {
                let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
                assert!(err.contains("use split_k >= "), "{err}");
                let chosen = ops::matmul_kernel(&a, &b, &MatmulSpec::default()).unwrap();
                assert!(chosen.split_k > 1, "{chosen:?}");
            }
            None => unsplit.run(gpu, 31),
        }
    }
}

/// Refuses a split-precision test on an adapter without tensor cores, unless
/// PERCEPT_EXPECT_SPLIT_F16 says there must be some (`scripts/gpu-check.sh` sets it).
fn split_f16_refused(gpu: &percept::Gpu) -> bool {
    let refused = Precision::SplitF16.available(gpu);
    if let Err(e) = &refused {
        assert!(
            std::env::var_os("PERCEPT_EXPECT_SPLIT_F16").is_none(),
            "split precision was expected: {e}"
        );
    }
    refused.is_err()
}

/// The split-precision product through the public API (the kernel matmul chooses: with tuning
/// off, the first that fits; each kernel forced is tested in src/ops/matmul/coop.rs) where the
/// adapter has tensor cores; elsewhere a refusal that names what is missing and the way out.
#[test]
fn matmul_split_f16_matches_the_oracle_or_is_refused() {
    for gpu in both() {
        if split_f16_refused(gpu) {
            let a = Tensor::from_slice(gpu, &random(1, 6, -1.0, 1.0), &[2, 3]).unwrap();
            let b = Tensor::from_slice(gpu, &random(2, 12, -1.0, 1.0), &[3, 4]).unwrap();
            let spec = MatmulSpec {
                precision: Precision::SplitF16,
                ..Default::default()
            };
            let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
            assert!(err.contains("Precision::SplitF16 needs"), "{err}");
            assert!(err.contains("use Precision::F32"), "{err}");
            let err = SplitB::new(&b, false).unwrap_err().to_string();
            assert!(err.contains("Precision::SplitF16 needs"), "{err}");
            continue;
        }
        // B split once gives the same bits as B split by the product, and only for that B.
        let a = Tensor::from_slice(gpu, &random(5, 3 * 70 * 40, -1.0, 1.0), &[3, 70, 40]).unwrap();
        let b = Tensor::from_slice(gpu, &random(6, 50 * 40, -1.0, 1.0), &[50, 40]).unwrap();
        let split_b = SplitB::new(&b, true).unwrap();
        let spec = MatmulSpec {
            trans_b: true,
            activation: Activation::Tanh,
            precision: Precision::SplitF16,
            ..Default::default()
        };
        let fresh = ops::matmul(&a, &b, &spec).unwrap().to_vec().unwrap();
        let reused = MatmulSpec {
            split_b: Some(&split_b),
            ..spec
        };
        assert_eq!(
            ops::matmul(&a, &b, &reused).unwrap().to_vec().unwrap(),
            fresh
        );
        let other = Tensor::from_slice(gpu, &random(6, 50 * 40, -1.0, 1.0), &[50, 40]).unwrap();
        let err = ops::matmul(&a, &other, &reused).unwrap_err().to_string();
        assert!(err.contains("made from another operand"), "{err}");
        b.write(&random(7, 50 * 40, -1.0, 1.0)).unwrap();
        let err = ops::matmul(&a, &b, &reused).unwrap_err().to_string();
        assert!(err.contains("stale"), "{err}");
        for (i, (batch_a, trans_a, trans_b, bias, act)) in [
            (None, false, false, false, Activation::Identity),
            (Some(3), true, true, true, Activation::Relu),
            (Some(2), false, true, true, Activation::Tanh),
        ]
        .into_iter()
        .enumerate()
        {
            let case = Case {
                batch_a,
                trans_a,
                trans_b,
                bias,
                add: bias,
                act,
                precision: Precision::SplitF16,
                ..Case::plain(67, 129, 300)
            };
            case.run(gpu, 40 + i as u64);
        }
    }
}

#[test]
fn matmul_rejects_split_halves_at_f32() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &random(1, 6, -1.0, 1.0), &[2, 3]).unwrap();
    let b = Tensor::from_slice(gpu, &random(2, 12, -1.0, 1.0), &[3, 4]).unwrap();
    // Where the adapter cannot split for tensor cores, SplitB refuses first; elsewhere the
    // product refuses halves it would not use.
    match SplitB::new(&b, false) {
        Err(e) => assert!(
            split_f16_refused(gpu) && e.to_string().contains("Precision::SplitF16 needs"),
            "{e}"
        ),
        Ok(split_b) => {
            let spec = MatmulSpec {
                split_b: Some(&split_b),
                ..Default::default()
            };
            let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
            assert!(err.contains("set that precision"), "{err}");
        }
    }
}

/// matmul_kernel and matmul_candidates describe f32 kernels, and say where to look instead.
#[test]
fn matmul_kernel_queries_name_the_split_precision_one() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &random(1, 6, -1.0, 1.0), &[2, 3]).unwrap();
    let b = Tensor::from_slice(gpu, &random(2, 12, -1.0, 1.0), &[3, 4]).unwrap();
    let spec = MatmulSpec {
        precision: Precision::SplitF16,
        ..Default::default()
    };
    let err = ops::matmul_kernel(&a, &b, &spec).unwrap_err().to_string();
    assert!(err.contains("see split_f16_kernel"), "{err}");
    let err = ops::matmul_candidates(&a, &b, &spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("see SPLIT_F16_KERNELS"), "{err}");
    match ops::split_f16_kernel(&a, &b, &spec) {
        Ok(kernel) => assert!(ops::SPLIT_F16_KERNELS.contains(&kernel)),
        Err(e) => assert!(split_f16_refused(gpu), "{e}"),
    }
}

#[test]
fn matmul_rejects_a_forced_f32_kernel_with_split_precision() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &random(1, 6, -1.0, 1.0), &[2, 3]).unwrap();
    let b = Tensor::from_slice(gpu, &random(2, 12, -1.0, 1.0), &[3, 4]).unwrap();
    let spec = MatmulSpec {
        precision: Precision::SplitF16,
        kernel: Some(Tile::Large.into()),
        ..Default::default()
    };
    let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
    assert!(err.contains("cannot go with Precision::SplitF16"), "{err}");
}

#[test]
fn matmul_batched_and_broadcast() {
    for gpu in both() {
        for (batch_a, batch_b) in [(Some(3), Some(3)), (Some(4), None), (None, Some(2))] {
            for kernel in [None, Some(Tile::Large.into()), Some(split(Tile::Large, 3))] {
                let case = Case {
                    batch_a,
                    batch_b,
                    trans_b: true,
                    kernel,
                    ..Case::plain(19, 36, 44)
                };
                case.run(gpu, 7);
            }
        }
    }
}

/// More matrices, or more row blocks, than one axis of a dispatch may have: the kernels fold
/// their grid of blocks.
#[test]
fn matmul_batches_and_rows_past_the_grid_limit() {
    let gpu = common::unchecked();
    let long_batch = Case {
        batch_a: Some(70_000),
        batch_b: Some(70_000),
        // K long enough for two parts.
        ..Case::plain(2, 3, 17)
    };
    for kernel in [Tile::Small.into(), split(Tile::Small, 2)] {
        Case {
            kernel: Some(kernel),
            ..long_batch
        }
        .run(gpu, 11);
    }
    // 65,537 row blocks of 64.
    Case {
        kernel: Some(Tile::Small.into()),
        ..Case::plain(64 * 65_536 + 1, 1, 1)
    }
    .run(gpu, 12);
}

#[test]
fn matmul_fused_bias_and_every_activation() {
    for gpu in both() {
        for act in Activation::ALL {
            let case = Case {
                bias: true,
                act,
                trans_b: true,
                ..Case::plain(33, 21, 40)
            };
            case.run(gpu, 11);
        }
    }
}

#[test]
fn matmul_fused_addend_batched_and_with_bias() {
    for gpu in both() {
        for (batch_a, bias, act) in [
            (None, false, Activation::Tanh),
            (Some(3), true, Activation::Identity),
        ] {
            for tile in Tile::ALL {
                let case = Case {
                    batch_a,
                    bias,
                    add: true,
                    act,
                    trans_b: true,
                    kernel: Some(tile.into()),
                    ..Case::plain(37, 70, 29)
                };
                case.run(gpu, 13);
            }
        }
    }
}

#[test]
fn matmul_rejects_an_addend_of_the_wrong_shape() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &random(1, 6, -1.0, 1.0), &[2, 3]).unwrap();
    let b = Tensor::from_slice(gpu, &random(2, 12, -1.0, 1.0), &[3, 4]).unwrap();
    let add = Tensor::from_slice(gpu, &random(3, 8, -1.0, 1.0), &[4, 2]).unwrap();
    let spec = MatmulSpec {
        add: Some(&add),
        ..Default::default()
    };
    let err = ops::matmul(&a, &b, &spec).unwrap_err().to_string();
    assert!(err.contains("addend has shape [4, 2]"), "{err}");
}

#[test]
fn matmul_zero_k_gives_bias() {
    let gpu = common::unchecked();
    let a = Tensor::from_slice(gpu, &[], &[3, 0]).unwrap();
    let b = Tensor::from_slice(gpu, &[], &[0, 2]).unwrap();
    let bias = Tensor::from_slice(gpu, &[0.5, -2.0], &[2]).unwrap();
    let spec = MatmulSpec {
        bias: Some(&bias),
        activation: Activation::Relu,
        ..Default::default()
    };
    let c = ops::matmul(&a, &b, &spec).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![0.5, 0.0, 0.5, 0.0, 0.5, 0.0]);
}

#[test]
fn activations_forward_and_backward() {
    let n = 1031;
    let x_host = random(21, n, -6.0, 6.0);
    let g_host = random(22, n, -1.0, 1.0);
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[n]).unwrap();
        let g = Tensor::from_slice(gpu, &g_host, &[n]).unwrap();
        for act in Activation::ALL {
            let y = ops::activation(&x, act).unwrap().to_vec().unwrap();
            assert_close(
                &format!("{act:?}"),
                &y,
                &reference::activation(&x_host, act),
                ELEMENTWISE_TOL,
            );
            let dx = ops::activation_backward(&x, &g, act)
                .unwrap()
                .to_vec()
                .unwrap();
            let want = reference::activation_backward(&x_host, &g_host, act);
            assert_close(&format!("{act:?} backward"), &dx, &want, ELEMENTWISE_TOL);
        }
    }
}

#[test]
fn activation_derivatives_match_finite_differences() {
    // The oracle of activation_backward, checked against central differences of the forward.
    let h = 1e-5;
    for act in Activation::ALL {
        for &x in &random(23, 200, -6.0, 6.0) {
            let x = x as f64;
            if act == Activation::Relu && x.abs() < 2.0 * h {
                continue; // not differentiable at 0
            }
            let fd = (reference::activation_scalar(act, x + h)
                - reference::activation_scalar(act, x - h))
                / (2.0 * h);
            let d = reference::activation_derivative(act, x);
            assert!(
                (fd - d).abs() < 1e-7,
                "{act:?} at {x}: derivative {d}, finite difference {fd}"
            );
        }
    }
}

#[test]
fn activations_stay_finite_at_extremes() {
    let x_host = [-1e30f32, -100.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 100.0, 1e30];
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[x_host.len()]).unwrap();
        for act in Activation::ALL {
            let y = ops::activation(&x, act).unwrap().to_vec().unwrap();
            let want = reference::activation(&x_host, act);
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                let tol = 1e-6 * w.abs().max(1.0);
                assert!(
                    (g as f64 - w).abs() <= tol,
                    "{act:?}({}) = {g}, want {w}",
                    x_host[i]
                );
            }
        }
    }
}

/// tanh is accurate relative to its value, near 0 too: lavapipe's builtin rounded it to 0 below
/// about 3e-8, and the states of a deep network, which shrink layer by layer, lost every digit.
#[test]
fn tanh_is_accurate_relative_to_its_value() {
    let x_host = [
        1e-30f32, -3e-8, 1e-6, -1e-4, 0.01, 0.0999, 0.1, -0.1001, 0.3, 1.0, -5.0, 9.0,
    ];
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[x_host.len()]).unwrap();
        let y = ops::activation(&x, Activation::Tanh)
            .unwrap()
            .to_vec()
            .unwrap();
        for (&x, &y) in x_host.iter().zip(&y) {
            let want = (x as f64).tanh();
            let rel = (y as f64 - want).abs() / want.abs();
            assert!(rel < 2e-6, "tanh({x}) = {y}, want {want}: {rel:.1e} off");
        }
    }
}

/// The largest pointwise error relative to the oracle's value, skipping values below f32's
/// normal range (a GPU may flush those to 0), and where it occurs.
fn worst_pointwise(got: &[f32], want: &[f64]) -> (f64, usize) {
    let mut worst = (0.0f64, 0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.abs() < f32::MIN_POSITIVE as f64 {
            continue;
        }
        // A NaN counts as the worst.
        let rel = (g as f64 - w).abs() / w.abs();
        if rel.is_nan() || rel > worst.0 {
            worst = (rel, i);
        }
    }
    worst
}

/// Every activation and its derivative relative to its value, where the value is small: GELU's
/// lower tail (1 + erf cancelled: GELU(-5) was 4% off, GELU(-6) 0), ELU and softplus near 0 and
/// on the left (their expm1 and log1p leaned on lavapipe's log near 1: ELU(-1e-30) was -6e-8,
/// softplus(-15) 17% high), and the tails of tanh's and the sigmoid's derivatives (1 - t^2 and
/// s (1 - s) were 0 once tanh or s rounded to 1). Softplus's derivative from its output too.
#[test]
fn activations_and_derivatives_are_accurate_relative_to_their_value() {
    let x_host: Vec<f32> = [
        1e-30f32, 1e-20, 1e-10, 3e-8, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 0.4, 0.6, 1.0, 2.0, 3.0, 4.0,
        5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0, 17.0, 20.0, 30.0, 50.0, 100.0, 1e4,
    ]
    .iter()
    .flat_map(|&v| [v, -v])
    .collect();
    let n = x_host.len();
    let ones = vec![1.0f32; n];
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[n]).unwrap();
        let g = Tensor::from_slice(gpu, &ones, &[n]).unwrap();
        for act in Activation::ALL {
            let y = ops::activation(&x, act).unwrap().to_vec().unwrap();
            let (err, i) = worst_pointwise(&y, &reference::activation(&x_host, act));
            assert!(
                err < 1e-5,
                "{act:?}({}) = {}: {err:.1e} off",
                x_host[i],
                y[i]
            );
            let dx = ops::activation_backward(&x, &g, act)
                .unwrap()
                .to_vec()
                .unwrap();
            let want = reference::activation_backward(&x_host, &ones, act);
            let (err, i) = worst_pointwise(&dx, &want);
            assert!(
                err < 1e-5,
                "{act:?}'({}) = {}: {err:.1e} off",
                x_host[i],
                dx[i]
            );
        }
        let act = Activation::Softplus;
        let y_host = ops::activation(&x, act).unwrap().to_vec().unwrap();
        let y = Tensor::from_slice(gpu, &y_host, &[n]).unwrap();
        let dx = ops::activation_backward_from_output(&y, &g, act)
            .unwrap()
            .to_vec()
            .unwrap();
        let want = reference::activation_backward_from_output(&y_host, &ones, act);
        let (err, i) = worst_pointwise(&dx, &want);
        assert!(
            err < 1e-5,
            "softplus' from output {}: {err:.1e} off",
            y_host[i]
        );
    }
}

/// A NaN input gives a NaN output (PyTorch's semantics), through the elementwise kernel and a
/// matmul's fused epilogue: a GPU's max and clamp would make ReLU and tanh return finite values.
#[test]
fn activations_pass_nan_on() {
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &[f32::NAN, 1.0], &[1, 2]).unwrap();
        let one = Tensor::from_slice(gpu, &[1.0], &[1, 1]).unwrap();
        for act in Activation::ALL {
            let y = ops::activation(&x, act).unwrap().to_vec().unwrap();
            assert!(y[0].is_nan() && y[1].is_finite(), "{act:?}: {y:?}");
            let spec = MatmulSpec {
                activation: act,
                ..Default::default()
            };
            let y = ops::matmul(
                &x,
                &one,
                &MatmulSpec {
                    trans_a: true,
                    ..spec
                },
            )
            .unwrap()
            .to_vec()
            .unwrap();
            assert!(
                y[0].is_nan() && y[1].is_finite(),
                "{act:?} in matmul: {y:?}"
            );
        }
    }
}

#[test]
fn binary_ops_scale_and_axpy() {
    let n = 777;
    let x_host = random(31, n, -2.0, 2.0);
    let y_host = random(32, n, -2.0, 2.0);
    let run = |r: percept::Result<Tensor>| r.unwrap().to_vec().unwrap();
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &x_host, &[7, 111]).unwrap();
        let y = Tensor::from_slice(gpu, &y_host, &[7, 111]).unwrap();
        let want_add = reference::add(&x_host, &y_host);
        assert_close("add", &run(ops::add(&x, &y)), &want_add, 1e-7);
        let want_sub = reference::sub(&x_host, &y_host);
        assert_close("sub", &run(ops::sub(&x, &y)), &want_sub, 1e-7);
        let want_mul = reference::mul(&x_host, &y_host);
        assert_close("mul", &run(ops::mul(&x, &y)), &want_mul, 1e-7);
        let want_scale = reference::scale(&x_host, -0.75);
        assert_close("scale", &run(ops::scale(&x, -0.75)), &want_scale, 1e-7);
        ops::axpy(0.5, &x, &y).unwrap();
        let want_axpy = reference::axpy(0.5, &x_host, &y_host);
        assert_close("axpy", &y.to_vec().unwrap(), &want_axpy, 1e-7);
    }
}

/// A row long enough that one workgroup's loop over it would pass lavapipe's loop limit (which
/// ends loops silently: a sum of ones came out 131070 when one workgroup reduced the row).
/// Random values in {-1, 0, 1}: every partial sum is an integer far below 2^24, exact in f32
/// whatever the order, so the sum is checked exactly, and a dropped or doubled element shows.
#[test]
fn reduce_rows_of_twenty_million() {
    use rand::{Rng, SeedableRng};
    let gpu = common::unchecked();
    let n = 20_000_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let host: Vec<f32> = (0..n).map(|_| rng.random_range(-1i32..=1) as f32).collect();
    let want: f64 = host.iter().map(|&v| v as f64).sum();
    let x = Tensor::from_slice(gpu, &host, &[1, n]).unwrap();
    let sum = ops::reduce_rows(&x, Reduction::Sum)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(sum, [want as f32], "sum of {n} values in {{-1, 0, 1}}");
    let mean = ops::reduce_rows(&x, Reduction::Mean)
        .unwrap()
        .to_vec()
        .unwrap();
    // The exact sum divided by n, rounded once or twice in f32.
    assert_close("mean", &mean, &[want / n as f64], 1e-6);
}

/// Softmax goes over a row three times in each invocation's loops: a row of 6 x 10^6 passes
/// lavapipe's loop limit, where it summed to 0.795, silently. There it is refused; elsewhere it
/// matches the f64 softmax elementwise. Lavapipe refuses this row, so the tolerance comes from
/// the longest it takes: 5.5e-7 at 2,796,032 (2.1e-7 at a quarter of that), about 1e-6
/// extrapolated to 6e6, with a 10x margin.
#[test]
fn softmax_of_a_row_past_the_loop_budget() {
    let gpu = common::unchecked();
    let n = 6_000_000;
    let host = random(60, n, -4.0, 4.0);
    let x = Tensor::from_slice(gpu, &host, &[1, n]).unwrap();
    let got = ops::softmax(&x);
    match gpu.capabilities().loop_budget() {
        Some(_) => {
            let err = got.expect_err("a refusal").to_string();
            assert!(err.contains("use rows of at most"), "{err}");
        }
        None => {
            let got = got.unwrap().to_vec().unwrap();
            assert_close("softmax of 6e6", &got, &reference::softmax(&host, n), 1e-5);
        }
    }
}

#[test]
fn reductions_along_rows_and_over_all() {
    let all = [
        Reduction::Sum,
        Reduction::Mean,
        Reduction::Max,
        Reduction::SumOfSquares,
        Reduction::MaxAbs,
    ];
    for gpu in both() {
        // Rows past a stage's 4096-element segment are reduced in stages (70,001: two).
        for &(rows, cols) in &[(37, 301), (1, 1), (3, 1000), (2, 257), (3, 70_001)] {
            let host = random(41 + cols as u64, rows * cols, -1.0, 1.0);
            let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
            for r in all {
                let got = ops::reduce_rows(&x, r).unwrap();
                assert_eq!(got.shape(), &[rows]);
                let want = reference::reduce_rows(&host, cols, r);
                assert_close(
                    &format!("rows {r:?} {rows}x{cols}"),
                    &got.to_vec().unwrap(),
                    &want,
                    1e-5,
                );
            }
        }
        // One, two and three stages of 4096-element segments.
        for n in [1, 4097, 4096 * 4096 + 3] {
            let host = random(50 + n as u64, n, 0.5, 1.5);
            let x = Tensor::from_slice(gpu, &host, &[n]).unwrap();
            for r in all {
                let got = ops::reduce_all(&x, r).unwrap().to_vec().unwrap();
                let want = reference::reduce_all(&host, r);
                assert_close(&format!("all {r:?} n={n}"), &got, &[want], 1e-5);
            }
        }
        // The infinity norm: a negative element the largest in size, in the first stage's second
        // segment; a NaN anywhere, or an infinity, gives +inf.
        let mut host = random(53, 9000, -1.0, 1.0);
        host[8000] = -3.0;
        let norm = |host: &[f32]| {
            let x = Tensor::from_slice(gpu, host, &[host.len()]).unwrap();
            ops::reduce_all(&x, Reduction::MaxAbs)
                .unwrap()
                .to_vec()
                .unwrap()[0]
        };
        assert_eq!(norm(&host), 3.0);
        for bad in [f32::NAN, -f32::NAN, f32::NEG_INFINITY] {
            host[5] = bad;
            assert_eq!(norm(&host), f32::INFINITY, "with {bad}");
            assert_eq!(
                reference::reduce_all(&host, Reduction::MaxAbs),
                f64::INFINITY
            );
        }
        // The max of -inf is -inf (not -f32::MAX), and a NaN, in the first or a later stage,
        // makes the max NaN.
        let rows = |host: &[f32], cols: usize| {
            let x = Tensor::from_slice(gpu, host, &[host.len() / cols, cols]).unwrap();
            ops::reduce_rows(&x, Reduction::Max)
                .unwrap()
                .to_vec()
                .unwrap()
        };
        assert_eq!(rows(&[f32::NEG_INFINITY; 6], 3), [f32::NEG_INFINITY; 2]);
        let mut host = random(54, 9000, -1.0, 1.0);
        for at in [3, 8500] {
            host[at] = f32::NAN;
            assert!(rows(&host, 9000)[0].is_nan(), "NaN at {at}");
            host[at] = 0.0;
        }
    }
}

#[test]
fn softmax_and_log_softmax_rows() {
    for gpu in both() {
        for &(rows, cols) in &[(13, 257), (3, 1), (2, 1000)] {
            // Offsets far from zero check the max-subtraction.
            let host: Vec<f32> = random(60, rows * cols, -5.0, 5.0)
                .iter()
                .map(|v| v + 80.0)
                .collect();
            let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
            let s = ops::softmax(&x).unwrap().to_vec().unwrap();
            assert_close("softmax", &s, &reference::softmax(&host, cols), 1e-5);
            let l = ops::log_softmax(&x).unwrap().to_vec().unwrap();
            assert_close(
                "log_softmax",
                &l,
                &reference::log_softmax(&host, cols),
                1e-5,
            );
        }
    }
}

/// log-softmax of rows that one logit dominates, relative to each value: the top entry's
/// -log z, with z = 1 + 2e-8, came out 0, and 6e-4 off at z = 1 + 6e-5.
#[test]
fn log_softmax_of_confident_rows_is_accurate_relative_to_its_value() {
    let cols = 10;
    let mut host = random(61, 4 * cols, -1.0, 1.0);
    for (row, top) in [8.0, 12.0, 20.0, 30.0].into_iter().enumerate() {
        host[row * cols + row] = top;
    }
    // Two entries at the maximum: z - 1 = 1 + the rest.
    host[3 * cols + 5] = 30.0;
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &host, &[4, cols]).unwrap();
        let got = ops::log_softmax(&x).unwrap().to_vec().unwrap();
        let (err, i) = worst_pointwise(&got, &reference::log_softmax(&host, cols));
        assert!(err < 1e-5, "log_softmax[{i}] = {}: {err:.1e} off", got[i]);
        let got = ops::softmax(&x).unwrap().to_vec().unwrap();
        let (err, i) = worst_pointwise(&got, &reference::softmax(&host, cols));
        assert!(err < 1e-5, "softmax[{i}] = {}: {err:.1e} off", got[i]);
    }
}

/// Rows with a mean far above their spread, 1e4 + U(-0.01, 0.01) and constant rows: summing x
/// itself put an error of 2e-4 in the mean (a few percent of the spread), which went into the
/// variance and every output (1.7e-2 off, normwise; a constant row of 1000.1 gave 0.019, not 0).
#[test]
fn layernorm_of_rows_with_a_large_mean_and_a_small_spread() {
    let cols = 1000;
    let mut host: Vec<f32> = random(73, 4 * cols, -1e-2, 1e-2)
        .iter()
        .map(|v| v + 1e4)
        .collect();
    host[2 * cols..3 * cols].fill(1000.1);
    host[3 * cols..].fill(0.1);
    for gpu in both() {
        let x = Tensor::from_slice(gpu, &host, &[4, cols]).unwrap();
        let out = ops::layernorm(&x, None, 1e-5).unwrap();
        let (y, mean, rstd) = reference::layernorm(&host, cols, None, 1e-5);
        let got = out.y.to_vec().unwrap();
        assert_close("layernorm y", &got, &y, 1e-5);
        assert!(got[2 * cols..].iter().all(|&v| v == 0.0), "constant rows");
        assert_close("layernorm mean", &out.mean.to_vec().unwrap(), &mean, 1e-7);
        assert_close("layernorm rstd", &out.rstd.to_vec().unwrap(), &rstd, 1e-5);
    }
}

#[test]
fn layernorm_with_and_without_affine() {
    for gpu in both() {
        for &(rows, cols) in &[(19, 300), (1, 1), (4, 1025)] {
            // A large mean relative to the spread checks the two-pass variance.
            let host: Vec<f32> = random(70, rows * cols, -1.0, 1.0)
                .iter()
                .map(|v| v + 30.0)
                .collect();
            let gamma_host = random(71, cols, 0.5, 1.5);
            let beta_host = random(72, cols, -1.0, 1.0);
            let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
            let gamma = Tensor::from_slice(gpu, &gamma_host, &[cols]).unwrap();
            let beta = Tensor::from_slice(gpu, &beta_host, &[cols]).unwrap();
            for affine in [false, true] {
                let params = affine.then_some((&gamma, &beta));
                let out = ops::layernorm(&x, params, 1e-5).unwrap();
                let host_params = affine.then_some((&gamma_host[..], &beta_host[..]));
                let (y, mean, rstd) = reference::layernorm(&host, cols, host_params, 1e-5);
                let case = format!("layernorm {rows}x{cols} affine={affine}");
                assert_close(&case, &out.y.to_vec().unwrap(), &y, 1e-4);
                assert_close(&case, &out.mean.to_vec().unwrap(), &mean, 1e-6);
                assert_close(&case, &out.rstd.to_vec().unwrap(), &rstd, 1e-4);
            }
        }
    }
}

#[test]
fn transpose_batched() {
    for gpu in both() {
        // The last two fold their grids: 68,750 column tiles, 70,000 matrices.
        for shape in [
            vec![1, 1],
            vec![17, 33],
            vec![3, 40, 9],
            vec![2, 2, 16, 31],
            vec![1, 1_100_000],
            vec![70_000, 2, 3],
        ] {
            let host = random(80, shape.iter().product(), -1.0, 1.0);
            let x = Tensor::from_slice(gpu, &host, &shape).unwrap();
            let t = ops::transpose(&x).unwrap();
            let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
            let batch = host.len() / (r * c);
            let mut want_shape = shape.clone();
            want_shape.swap(shape.len() - 2, shape.len() - 1);
            assert_eq!(t.shape(), &want_shape[..]);
            assert_close(
                "transpose",
                &t.to_vec().unwrap(),
                &reference::transpose(&host, batch, r, c),
                0.0,
            );
        }
    }
}
