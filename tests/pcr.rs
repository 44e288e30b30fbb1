//! Tridiagonal solves and affine-recurrence scans against their f64 oracles.

mod common;

use common::{assert_close, both, random};
use percept::ops::{self, ScanMaps, ScanMethod, TridiagonalMethod};
use percept::{Error, Tensor, reference};

/// Systems of `n` equations; `dominant` makes |b| > |a| + |c|, otherwise |b| is about the size
/// of its neighbours (well conditioned for these sizes, but not dominant).
fn system(seed: u64, systems: usize, n: usize, dominant: bool) -> [Vec<f32>; 4] {
    let a = random(seed, systems * n, -1.0, 1.0);
    let c = random(seed + 1, systems * n, -1.0, 1.0);
    let signs = random(seed + 2, systems * n, -1.0, 1.0);
    let b: Vec<f32> = (0..systems * n)
        .map(|i| {
            let size = if dominant {
                a[i].abs() + c[i].abs() + 0.5
            } else {
                1.0 + signs[i].abs()
            };
            size * signs[i].signum()
        })
        .collect();
    let d = random(seed + 3, systems * n, -1.0, 1.0);
    [a, b, c, d]
}

#[test]
fn tridiagonal_methods_match_thomas_in_f64() {
    for gpu in both() {
        // 2 x 20 partitions in one level; the last two are too long for CR+PCR on lavapipe (and
        // the last on any adapter).
        for &(systems, n) in &[
            (2, 20),
            (1, 1),
            (3, 2),
            (5, 37),
            (3, 129),
            (2, 1000),
            (7, 256),
            (1, 1500),
            (1, 2048),
            (3, 2500),
            (1, 70_001),
        ] {
            for dominant in [true, false] {
                let host = system(n as u64, systems, n, dominant);
                let t: Vec<Tensor> = host
                    .iter()
                    .map(|v| Tensor::from_slice(gpu, v, &[systems, n]).unwrap())
                    .collect();
                let want = reference::tridiagonal_solve(&host[0], &host[1], &host[2], &host[3], n);
                let cap = gpu.capabilities().max_workgroup_storage_size;
                let pcr_fits = n.div_ceil(256) * 256 * 16 <= cap as usize;
                assert_eq!(
                    TridiagonalMethod::Pcr.applies(gpu, systems, n),
                    pcr_fits,
                    "{systems}x{n}"
                );
                for method in TridiagonalMethod::ALL {
                    // CR+PCR past workgroup memory, Thomas past lavapipe's loop budget (its
                    // 70,001-long chain would stop short, silently); the partitioned method
                    // runs everywhere, as Thomas where it applies no level.
                    let refused = method != TridiagonalMethod::Partitioned
                        && !method.applies(gpu, systems, n);
                    if refused {
                        let solved =
                            ops::tridiagonal_solve(&t[0], &t[1], &t[2], &t[3], Some(method));
                        assert!(solved.is_err(), "{method:?} {systems}x{n}");
                        continue;
                    }
                    let x =
                        ops::tridiagonal_solve(&t[0], &t[1], &t[2], &t[3], Some(method)).unwrap();
                    // Not dominant: elimination without pivoting loses a few more digits.
                    let tol = if dominant { 1e-5 } else { 1e-3 };
                    let case = format!("{method:?} {systems}x{n} dominant={dominant}");
                    assert_close(&case, &x.to_vec().unwrap(), &want, tol);
                }
            }
        }
    }
}

/// More systems than one axis of a dispatch may have workgroups (CR+PCR runs one a system).
#[test]
fn tridiagonal_batches_past_the_grid_limit() {
    let gpu = common::unchecked();
    let (systems, n) = (70_000, 8);
    let host = system(17, systems, n, true);
    let t: Vec<Tensor> = host
        .iter()
        .map(|v| Tensor::from_slice(gpu, v, &[systems, n]).unwrap())
        .collect();
    let want = reference::tridiagonal_solve(&host[0], &host[1], &host[2], &host[3], n);
    // CR+PCR (a workgroup a system) is the method this test is for: it must not drop out.
    assert!(
        TridiagonalMethod::Pcr.applies(gpu, systems, n),
        "CR+PCR does not apply to {systems} systems of {n}"
    );
    for method in TridiagonalMethod::ALL {
        if method.applies(gpu, systems, n) {
            let x = ops::tridiagonal_solve(&t[0], &t[1], &t[2], &t[3], Some(method)).unwrap();
            assert_close(&format!("{method:?}"), &x.to_vec().unwrap(), &want, 1e-5);
        } else {
            eprintln!("{method:?} does not apply to {systems} systems of {n}: not checked");
        }
    }
}

#[test]
fn parallel_tridiagonal_methods_keep_the_ill_conditioned_laplacian_accurate() {
    // The 1-D Dirichlet Laplacian's condition grows as n^2 (1e8 at 16384, past f32's 1/eps):
    // Thomas loses up to all its digits there (documented on `tridiagonal_solve`), and the
    // parallel methods are the ones to force.
    let gpu = common::unchecked();
    for (method, n) in [
        (TridiagonalMethod::Pcr, 1000),
        (TridiagonalMethod::Partitioned, 1000),
        (TridiagonalMethod::Partitioned, 16_384),
    ] {
        if method == TridiagonalMethod::Pcr && !method.applies(gpu, 1, n) {
            continue; // CR+PCR past this adapter's workgroup memory
        }
        let (a, b, c) = (vec![-1.0; n], vec![2.0; n], vec![-1.0; n]);
        let d = random(5, n, -1.0, 1.0);
        let want = reference::tridiagonal_solve(&a, &b, &c, &d, n);
        let t = |v: &[f32]| Tensor::from_slice(gpu, v, &[1, n]).unwrap();
        let x = ops::tridiagonal_solve(&t(&a), &t(&b), &t(&c), &t(&d), Some(method)).unwrap();
        assert_close(
            &format!("{method:?} n={n}"),
            &x.to_vec().unwrap(),
            &want,
            1e-6,
        );
    }
}

#[test]
fn tridiagonal_chooses_by_shape_and_reports_singular_systems() {
    // With tuning off (as the test devices run), the fixed rule of the shape.
    let gpu = common::unchecked();
    let method = |systems: usize, n: usize| {
        let t = Tensor::zeros(gpu, &[systems, n]).unwrap();
        ops::tridiagonal_method(&t, &t, &t, &t).unwrap()
    };
    assert_eq!(method(100, 1024), TridiagonalMethod::Pcr);
    assert_eq!(method(10_000, 32), TridiagonalMethod::Thomas);
    assert_eq!(method(2, 100_000), TridiagonalMethod::Partitioned);
    // Too short to partition: plain Thomas.
    assert!(!TridiagonalMethod::Partitioned.applies(gpu, 2, 15));
    assert!(TridiagonalMethod::Partitioned.applies(gpu, 2, 16));
    let zeros = Tensor::zeros(gpu, &[2, 5]).unwrap();
    let ones = Tensor::from_slice(gpu, &[1.0; 10], &[2, 5]).unwrap();
    let err = ops::tridiagonal_solve(&ones, &zeros, &ones, &ones, None).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    // A finite solution whose square overflows f32 (x = 1e20) is no error.
    let t = |v: f32| Tensor::from_slice(gpu, &[v], &[1, 1]).unwrap();
    for method in TridiagonalMethod::ALL {
        if method.applies(gpu, 1, 1) {
            let x = ops::tridiagonal_solve(&t(0.0), &t(1e-20), &t(0.0), &t(1.0), Some(method));
            let x = x.unwrap().to_vec().unwrap()[0];
            assert!((x / 1e20 - 1.0).abs() < 1e-6, "{method:?}: {x}");
        }
    }
    let short = Tensor::zeros(gpu, &[2, 4]).unwrap();
    let err = ops::tridiagonal_solve(&ones, &ones, &ones, &short, None).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn affine_scan_forward_and_transposed_match_the_sequential_recurrence() {
    for gpu in both() {
        for &(len, batch, w) in &[
            (1, 1, 1),
            (5, 2, 3),
            (16, 3, 1),
            (37, 2, 16),
            (100, 1, 4),
            (9, 2, 64),
            (70, 5, 7),
            (3, 2, 100),
        ] {
            // Entries scaled so products of many blocks stay bounded; A[0] is unused, so NaN
            // there must not leak.
            let scale = 0.9 / (w as f32).sqrt();
            let mut a: Vec<f32> = random(len as u64, len * batch * w * w, -1.0, 1.0)
                .iter()
                .map(|v| v * scale)
                .collect();
            a[..batch * w * w].fill(f32::NAN);
            let v = random(len as u64 + 7, len * batch * w, -1.0, 1.0);
            let at = Tensor::from_slice(gpu, &a, &[len, batch, w, w]).unwrap();
            let vt = Tensor::from_slice(gpu, &v, &[len, batch, w]).unwrap();
            let want = reference::affine_scan(&a, &v, len, batch, w);
            let want_t = reference::affine_scan_transposed(&a, &v, len, batch, w);
            for method in ScanMethod::all(len) {
                let case = format!("{method:?} L={len} batch={batch} w={w}");
                if too_wide(gpu, method, w) {
                    let err = ops::affine_scan(&at, &vt, Some(method)).unwrap_err();
                    assert!(
                        matches!(err, Error::InvalidArgument { .. }),
                        "{case}: {err}"
                    );
                    continue;
                }
                let x = ops::affine_scan(&at, &vt, Some(method)).unwrap();
                assert_close(&case, &x.to_vec().unwrap(), &want, 1e-5);
                let y = ops::affine_scan_transposed(&at, &vt, Some(method)).unwrap();
                let case = format!("{case} transposed");
                assert_close(&case, &y.to_vec().unwrap(), &want_t, 1e-5);
            }
            row_scaled_maps_match_their_dense_product(gpu, len, batch, w);
        }
    }
    let gpu = common::unchecked();
    let v = Tensor::zeros(gpu, &[4, 2, 3]).unwrap();
    let bad = Tensor::zeros(gpu, &[4, 2, 3, 2]).unwrap();
    assert!(matches!(
        ops::affine_scan(&bad, &v, None),
        Err(Error::Shape { .. })
    ));
}

/// The workgroup chunked scan's chains grow with the chunk (about sqrt(L)) and the block: past
/// lavapipe's loop limit, which ends loops silently, it refuses the scan (L = 2048, w = 64 came
/// out wrong there) instead of returning garbage; elsewhere it solves it.
#[test]
fn chunked_scan_keeps_within_the_loop_limit() {
    let gpu = common::unchecked();
    let (len, batch, w) = (2048, 1, 64);
    let a: Vec<f32> = random(5, len * batch * w * w, -0.1, 0.1);
    let v = random(6, len * batch * w, -1.0, 1.0);
    let at = Tensor::from_slice(gpu, &a, &[len, batch, w, w]).unwrap();
    let vt = Tensor::from_slice(gpu, &v, &[len, batch, w]).unwrap();
    let chunk = ScanMethod::rule_chunk(len);
    let got = ops::affine_scan(&at, &vt, Some(ScanMethod::Chunked { chunk }));
    match gpu.capabilities().max_loop_iterations {
        Some(_) => {
            let err = got.expect_err("a refusal").to_string();
            assert!(err.contains("loop limit"), "{err}");
        }
        None => {
            let want = reference::affine_scan(&a, &v, len, batch, w);
            assert_close(
                "chunked L=2048 w=64",
                &got.unwrap().to_vec().unwrap(),
                &want,
                1e-5,
            );
        }
    }
}

/// The chunked scans take any chunk length from 1 to L (tuning measures shorter chunks than
/// the rule's): lengths that do not divide L, one step, all of L, forward and transposed; a
/// chunk of 0 or past L is refused with the range named.
#[test]
fn chunked_scans_take_any_chunk_length() {
    let gpu = common::unchecked();
    let (len, batch, w) = (37, 2, 5);
    let scale = 0.9 / (w as f32).sqrt();
    let a: Vec<f32> = random(21, len * batch * w * w, -1.0, 1.0)
        .iter()
        .map(|v| v * scale)
        .collect();
    let v = random(22, len * batch * w, -1.0, 1.0);
    let at = Tensor::from_slice(gpu, &a, &[len, batch, w, w]).unwrap();
    let vt = Tensor::from_slice(gpu, &v, &[len, batch, w]).unwrap();
    let want = reference::affine_scan(&a, &v, len, batch, w);
    let want_t = reference::affine_scan_transposed(&a, &v, len, batch, w);
    for chunk in [1, 2, 3, 7, 36, 37] {
        for method in [
            ScanMethod::Chunked { chunk },
            ScanMethod::ChunkedRegisters { chunk },
        ] {
            let case = method.name();
            let x = ops::affine_scan(&at, &vt, Some(method)).unwrap();
            assert_close(&case, &x.to_vec().unwrap(), &want, 1e-5);
            let y = ops::affine_scan_transposed(&at, &vt, Some(method)).unwrap();
            assert_close(
                &format!("{case} transposed"),
                &y.to_vec().unwrap(),
                &want_t,
                1e-5,
            );
        }
    }
    for chunk in [0, 38] {
        let err = ops::affine_scan(&at, &vt, Some(ScanMethod::Chunked { chunk })).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("1 to 37"),
            "{err}"
        );
    }
}

/// Whether `method` refuses blocks of width `w` on `gpu`: the chunked scan's workgroup holds
/// a w x (w + 1) map (at least 256 floats), which 16 KiB of workgroup memory holds only to 63.
fn too_wide(gpu: &percept::Gpu, method: ScanMethod, w: usize) -> bool {
    let map_bytes = (w * (w + 1)).max(256) * 4;
    let room = gpu.capabilities().max_workgroup_storage_size as usize;
    match method {
        ScanMethod::Doubling => false,
        ScanMethod::Chunked { .. } => w > ops::MAX_CHUNKED_WIDTH || map_bytes > room,
        ScanMethod::ChunkedRegisters { .. } => w > ops::MAX_CHUNKED_REGISTERS_WIDTH,
    }
}

/// Maps given as factors, A[k] = diag(s[k]) W[k] (a deep MLP's layer Jacobians), give what their
/// product gives, by every method, forward and transposed; step 0's factors are NaN and unused.
fn row_scaled_maps_match_their_dense_product(
    gpu: &percept::Gpu,
    len: usize,
    batch: usize,
    w: usize,
) {
    let scale = 0.9 / (w as f32).sqrt();
    let mut weights: Vec<f32> = random(len as u64 + 11, len * w * w, -1.0, 1.0)
        .iter()
        .map(|v| v * scale)
        .collect();
    let mut scales = random(len as u64 + 12, len * batch * w, 0.2, 1.0);
    weights[..w * w].fill(f32::NAN);
    scales[..batch * w].fill(f32::NAN);
    let dense: Vec<f32> = (0..len * batch * w * w)
        .map(|t| {
            let (row, j) = (t / w, t % w);
            let (i, k) = (row % w, row / (batch * w));
            scales[row] * weights[(k * w + i) * w + j]
        })
        .collect();
    let v = random(len as u64 + 13, len * batch * w, -1.0, 1.0);
    let want = reference::affine_scan(&dense, &v, len, batch, w);
    let want_t = reference::affine_scan_transposed(&dense, &v, len, batch, w);
    let weights = Tensor::from_slice(gpu, &weights, &[len, w, w]).unwrap();
    let scales = Tensor::from_slice(gpu, &scales, &[len, batch, w]).unwrap();
    let vt = Tensor::from_slice(gpu, &v, &[len, batch, w]).unwrap();
    let maps = ScanMaps::RowScaled {
        weights: &weights,
        scales: &scales,
    };
    for method in ScanMethod::all(len) {
        let case = format!("{method:?} row-scaled L={len} batch={batch} w={w}");
        if too_wide(gpu, method, w) {
            let err = ops::affine_scan(maps, &vt, Some(method)).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument { .. }),
                "{case}: {err}"
            );
            continue;
        }
        let x = ops::affine_scan(maps, &vt, Some(method)).unwrap();
        assert_close(&case, &x.to_vec().unwrap(), &want, 1e-5);
        let y = ops::affine_scan_transposed(maps, &vt, Some(method)).unwrap();
        assert_close(
            &format!("{case} transposed"),
            &y.to_vec().unwrap(),
            &want_t,
            1e-5,
        );
    }
    // Factors that do not fit v.
    let short = Tensor::zeros(gpu, &[len, w, w + 1]).unwrap();
    let bad = ScanMaps::RowScaled {
        weights: &short,
        scales: &scales,
    };
    let err = ops::affine_scan(bad, &vt, None).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn affine_scan_methods_count_their_levels() {
    // L = 1024: doubling in 10 levels; chunks of 32, doubling over 32 chunks in 5, plus 2.
    assert_eq!(ScanMethod::rule_chunk(1024), 32);
    let [doubling, chunked, registers] = ScanMethod::all(1024);
    assert_eq!(doubling.levels(1024), 10);
    assert_eq!(chunked.levels(1024), 7);
    assert_eq!(chunked.chain(1024), 32);
    assert_eq!(registers.levels(1024), 7);
    assert_eq!(registers.chain(1024), 32);
    // Chunks of 8: 128 of them, doubled over in 7 levels.
    let short = ScanMethod::ChunkedRegisters { chunk: 8 };
    assert_eq!((short.levels(1024), short.chain(1024)), (9, 8));
    // L = 100: chunks of 16, 7 of them.
    assert_eq!(ScanMethod::rule_chunk(100), 16);
    assert_eq!(ScanMethod::Chunked { chunk: 16 }.levels(100), 5);
    assert_eq!(ScanMethod::Doubling.chain(100), 1);
    // One chunk of all L steps: replayed in one dispatch.
    let whole = ScanMethod::ChunkedRegisters { chunk: 100 };
    assert_eq!((whole.levels(100), whole.chain(100)), (1, 100));
}

/// Factored maps whose dense product would not fit one binding: doubling (which forms it) is
/// refused with the limit named, and the chunked scans, which never form it, are chosen. At
/// w = 64 only the workgroup chunked scan applies, and on an adapter with a loop limit its
/// rule's chunk (32 steps) is past it: a half of it is taken.
#[test]
fn factored_maps_too_big_to_multiply_out_take_a_chunked_scan() {
    let gpu = common::unchecked();
    let len = 1024;
    let rule = ScanMethod::rule_chunk(len);
    let wide = if gpu.capabilities().max_loop_iterations.is_some() {
        rule / 2
    } else {
        rule
    };
    for (w, chunk) in [(32, rule), (64, wide)] {
        let per_batch = (4 * len * w * w) as u64;
        let batch = (gpu.limits().max_storage_buffer_binding_size / per_batch + 1) as usize;
        let weights = Tensor::zeros(gpu, &[len, w, w]).unwrap();
        let scales = Tensor::zeros(gpu, &[len, batch, w]).unwrap();
        let v = Tensor::zeros(gpu, &[len, batch, w]).unwrap();
        let maps = ScanMaps::RowScaled {
            weights: &weights,
            scales: &scales,
        };
        let err = ops::affine_scan(maps, &v, Some(ScanMethod::Doubling)).unwrap_err();
        assert!(
            matches!(err, Error::Limit { .. }) && err.to_string().contains("dense maps"),
            "{err}"
        );
        // The device tunes nothing: the first method that takes the scan.
        let method = ops::affine_scan_method(maps, &v, false).unwrap();
        assert_eq!(method, ScanMethod::Chunked { chunk }, "w = {w}");
    }
}
