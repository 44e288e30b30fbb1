//! Tensors, device plumbing, and the errors each kind of bad input returns.

mod common;

use common::{assert_close, random, unchecked};
use percept::ops::{self, FftKind, FftNorm, FftPlan, MatmulSpec, Reduction};
use percept::{Error, Gpu, GpuOptions, Tensor, Tuning, reference};

#[test]
fn upload_download_reshape_and_write() {
    let gpu = unchecked();
    let host = random(1, 6, -1.0, 1.0);
    let x = Tensor::from_slice(gpu, &host, &[2, 3]).unwrap();
    assert_eq!(x.to_vec().unwrap(), host);
    let r = x.reshape(&[3, 2]).unwrap();
    assert_eq!(r.shape(), &[3, 2]);
    assert_eq!(r.to_vec().unwrap(), host);
    let new = random(2, 6, -1.0, 1.0);
    x.write(&new).unwrap();
    assert_eq!(r.to_vec().unwrap(), new, "a reshape shares the buffer");
    assert_eq!(
        Tensor::zeros(gpu, &[4]).unwrap().to_vec().unwrap(),
        vec![0.0; 4]
    );
}

#[test]
fn narrow_views_or_copies_rows() {
    let gpu = unchecked();
    let (rows, cols) = (9, 64); // 256-byte rows: every start is aligned
    let host = random(3, rows * cols, -1.0, 1.0);
    let x = Tensor::from_slice(gpu, &host, &[rows, cols]).unwrap();
    let v = x.narrow(2..5).unwrap();
    assert_eq!(v.shape(), &[3, cols]);
    assert_eq!(v.to_vec().unwrap(), host[2 * cols..5 * cols]);
    // Rows of 3 floats start off the alignment: narrow copies, and the result still computes.
    let y = Tensor::from_slice(gpu, &host[..21], &[7, 3]).unwrap();
    let w = y.narrow(1..4).unwrap();
    assert_eq!(w.to_vec().unwrap(), host[3..12]);
    let s = ops::reduce_rows(&w, Reduction::Sum)
        .unwrap()
        .to_vec()
        .unwrap();
    let want: Vec<f32> = host[3..12].chunks(3).map(|r| r.iter().sum()).collect();
    for (a, b) in s.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn views_feed_kernels() {
    let gpu = unchecked();
    let host = random(4, 8 * 64, -1.0, 1.0);
    let x = Tensor::from_slice(gpu, &host, &[8, 64]).unwrap();
    let v = x.narrow(4..8).unwrap(); // aligned view at a non-zero offset
    let t = ops::transpose(&v).unwrap().to_vec().unwrap();
    assert_eq!(t[1], host[4 * 64 + 64]);
    let a = ops::matmul(
        &v,
        &v,
        &MatmulSpec {
            trans_b: true,
            ..Default::default()
        },
    )
    .unwrap();
    let want: f32 = (0..64).map(|j| host[4 * 64 + j] * host[4 * 64 + j]).sum();
    assert!((a.to_vec().unwrap()[0] - want).abs() < 1e-4);
}

#[test]
fn complex_tensors_round_trip() {
    let gpu = unchecked();
    let host: Vec<[f32; 2]> = random(5, 10, -1.0, 1.0)
        .chunks(2)
        .map(|p| [p[0], p[1]])
        .collect();
    let z = Tensor::from_complex(gpu, &host, &[5]).unwrap();
    assert_eq!(z.dtype(), percept::DType::C32);
    assert_eq!(z.byte_len(), 40);
    assert_eq!(z.to_complex_vec().unwrap(), host);
    assert!(matches!(z.to_vec(), Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        ops::softmax(&z),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn many_dispatches_span_submissions() {
    // More dispatches than one submission holds, recorded before a single readback.
    let gpu = unchecked();
    let x = Tensor::from_slice(gpu, &[1.0; 300], &[300]).unwrap();
    let y = Tensor::zeros(gpu, &[300]).unwrap();
    for _ in 0..(percept::gpu::MAX_DISPATCHES_PER_SUBMIT * 2 + 7) {
        ops::axpy(1.0, &x, &y).unwrap();
    }
    let n = (percept::gpu::MAX_DISPATCHES_PER_SUBMIT * 2 + 7) as f32;
    assert_eq!(y.to_vec().unwrap(), vec![n; 300]);
}

#[test]
fn gpu_time_measures_recorded_work() {
    let gpu = unchecked();
    let a = Tensor::from_slice(gpu, &random(6, 128 * 128, -1.0, 1.0), &[128, 128]).unwrap();
    let (c, timing) = gpu
        .time(|| ops::matmul(&a, &a, &MatmulSpec::default()))
        .unwrap();
    assert_eq!(c.shape(), &[128, 128]);
    assert!(timing.elapsed.as_nanos() > 0, "{timing:?}");
}

#[test]
fn no_adapter_says_how_to_get_one() {
    let err = Gpu::with_options(GpuOptions {
        adapter_name: Some("no adapter is called this".into()),
        ..Default::default()
    })
    .err()
    .expect("no adapter matches");
    assert!(matches!(err, Error::NoAdapter { .. }));
    let message = err.to_string();
    assert!(
        message.contains("apt-get install -y mesa-vulkan-drivers"),
        "{message}"
    );
    assert!(message.contains("WGPU_ADAPTER_NAME"), "{message}");
}

#[test]
fn shape_mismatches_are_errors() {
    let gpu = unchecked();
    let t = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::from_slice(gpu, &random(7, n, -1.0, 1.0), shape).unwrap()
    };
    let shape_err = |r: percept::Result<Tensor>| matches!(r, Err(Error::Shape { .. }));
    let (a, b) = (t(&[3, 4]), t(&[5, 6]));
    assert!(shape_err(ops::matmul(&a, &b, &MatmulSpec::default())));
    let err = ops::matmul(&a, &b, &MatmulSpec::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("op(A) is 3 x 4 but op(B) is 5 x 6"), "{err}");
    assert!(shape_err(ops::matmul(
        &t(&[2, 3, 4]),
        &t(&[3, 4, 5]),
        &MatmulSpec::default()
    )));
    assert!(shape_err(ops::matmul(
        &t(&[4]),
        &t(&[4, 4]),
        &MatmulSpec::default()
    )));
    let bias = t(&[7]);
    let spec = MatmulSpec {
        bias: Some(&bias),
        ..Default::default()
    };
    assert!(shape_err(ops::matmul(&a, &t(&[4, 6]), &spec)));
    assert!(shape_err(ops::add(&a, &t(&[4, 3]))));
    assert!(shape_err(ops::activation_backward(
        &a,
        &t(&[12]),
        ops::Activation::Tanh
    )));
    assert!(shape_err(ops::transpose(&t(&[5]))));
    assert!(shape_err(ops::reduce_all(
        &Tensor::zeros(gpu, &[0]).unwrap(),
        Reduction::Sum
    )));
    let g = t(&[3]);
    assert!(shape_err(
        ops::layernorm(&a, Some((&g, &g)), 1e-5).map(|o| o.y)
    ));
    assert!(shape_err(a.reshape(&[5, 2])));
    assert!(matches!(a.write(&[1.0; 5]), Err(Error::Shape { .. })));
    assert!(matches!(
        Tensor::from_slice(gpu, &[1.0; 5], &[2, 3]),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn invalid_arguments_are_errors() {
    let gpu = unchecked();
    let a = Tensor::from_slice(gpu, &random(8, 12, -1.0, 1.0), &[3, 4]).unwrap();
    let invalid = |r: percept::Result<()>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(invalid(a.narrow(2..9).map(drop)));
    assert!(invalid(ops::layernorm(&a, None, 0.0).map(drop)));
    assert!(invalid(ops::layernorm(&a, None, f32::NAN).map(drop)));
    assert!(invalid(ops::axpy(1.0, &a, &a)));
    assert!(invalid(ops::axpy(
        1.0,
        &a.reshape(&[12]).unwrap(),
        &a.reshape(&[12]).unwrap()
    )));
}

#[test]
fn requests_past_the_limits_are_errors() {
    let gpu = unchecked();
    let max = gpu.capabilities().max_storage_buffer_binding_size;
    let too_many = (max / 4 + 1) as usize;
    let err = Tensor::zeros(gpu, &[too_many]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit_name: "max_storage_buffer_binding_size",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("split the work"), "{err}");
    let overflow = Tensor::zeros(gpu, &[usize::MAX, 3]).unwrap_err();
    assert!(
        matches!(overflow, Error::InvalidArgument { .. }),
        "{overflow}"
    );
    // More batch entries than one dispatch dimension allows are no error: the grid folds.
    let batch = gpu.capabilities().max_workgroups_per_dimension as usize + 1;
    let x = Tensor::from_slice(gpu, &vec![2.0; batch], &[batch, 1, 1]).unwrap();
    let y = ops::matmul(&x, &x, &MatmulSpec::default()).unwrap();
    assert!(y.to_vec().unwrap().iter().all(|&v| v == 4.0));
}

#[test]
fn threads_share_one_device() {
    // Tuning on (in memory): the first products in a bucket are measured while other threads
    // record and read back work of their own.
    let gpu = common::open_with(GpuOptions {
        tuning: Some(Tuning::Memory),
        profile: Some(false),
        ..Default::default()
    });
    let gpu = &gpu;
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            scope.spawn(move || {
                for round in 0..6 {
                    let seed = 100 * thread + round;
                    let case = format!("thread {thread} round {round}");
                    // A product large enough to be tuned.
                    let (m, k, n) = (130, 97, 131);
                    let (a, b) = (
                        random(seed, m * k, -1.0, 1.0),
                        random(seed + 1, k * n, -1.0, 1.0),
                    );
                    let ta = Tensor::from_slice(gpu, &a, &[m, k]).unwrap();
                    let tb = Tensor::from_slice(gpu, &b, &[k, n]).unwrap();
                    let c = ops::matmul(&ta, &tb, &MatmulSpec::default()).unwrap();
                    let shape = reference::MatmulShape {
                        batch: 1,
                        m,
                        n,
                        k,
                        trans_a: false,
                        trans_b: false,
                        broadcast_a: false,
                        broadcast_b: false,
                    };
                    let inputs = reference::MatmulInputs {
                        a: &a,
                        b: &b,
                        bias: None,
                        add: None,
                        activation: ops::Activation::Identity,
                    };
                    assert_close(
                        &case,
                        &c.to_vec().unwrap(),
                        &reference::matmul(&shape, &inputs),
                        1e-5,
                    );
                    // A plan of its own per thread, and a reduction.
                    let x = random(seed + 2, 3 * 100, -1.0, 1.0);
                    let plan =
                        FftPlan::new(gpu, FftKind::RealForward, &[3, 100], 1, FftNorm::Backward)
                            .unwrap();
                    let spectrum = plan
                        .execute(&Tensor::from_slice(gpu, &x, &[3, 100]).unwrap())
                        .unwrap();
                    let want: Vec<f64> = reference::fft_r2c(&x, &[3, 100], 1, FftNorm::Backward)
                        .into_iter()
                        .flatten()
                        .collect();
                    let got: Vec<f32> = spectrum
                        .to_complex_vec()
                        .unwrap()
                        .into_iter()
                        .flatten()
                        .collect();
                    assert_close(&case, &got, &want, 1e-5);
                    let sums = ops::reduce_rows(&c, Reduction::Sum).unwrap();
                    let c_host = c.to_vec().unwrap();
                    assert_close(
                        &case,
                        &sums.to_vec().unwrap(),
                        &reference::reduce_rows(&c_host, n, Reduction::Sum),
                        1e-5,
                    );
                }
            });
        }
    });
}
