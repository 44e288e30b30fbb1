//! Choosing kernel variants by measurement: matmul tiles and tridiagonal methods are kept per
//! shape bucket, in memory and in the tuning file; the choice survives a new device and never
//! changes a result beyond rounding (matmul's unsplit tiles not even that).

mod common;

use std::path::PathBuf;

use common::{assert_close, open_with, random};
use percept::ops::{self, Activation, FftKind, FftNorm, FftPlan, MatmulKernel, MatmulSpec, Tile};
use percept::reference::{self, MatmulInputs, MatmulShape};
use percept::{Gpu, GpuOptions, Tensor, Tuning};

/// A fresh directory for one test's tuning file (not created: the table creates it).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percept-tuning-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(tuning: Tuning) -> Gpu {
    open_with(GpuOptions {
        tuning: Some(tuning),
        ..Default::default()
    })
}

/// A product large enough to be tuned (2 m n k >= 2^21), off the tile grid in every
/// dimension, as an MLP layer: tanh(x wᵀ + b).
struct Layer {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    shape: MatmulShape,
}

impl Layer {
    fn new() -> Layer {
        let (m, n, k) = (203, 301, 277);
        Layer {
            x: random(1, m * k, -1.0, 1.0),
            w: random(2, n * k, -1.0, 1.0),
            b: random(3, n, -1.0, 1.0),
            shape: MatmulShape {
                batch: 1,
                m,
                n,
                k,
                trans_a: false,
                trans_b: true,
                broadcast_a: false,
                broadcast_b: false,
            },
        }
    }

    /// The kernel the device chooses, the product with it, and the products with that kernel
    /// forced and with every unsplit tile forced.
    fn run(&self, gpu: &Gpu) -> (MatmulKernel, Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
        let s = &self.shape;
        let x = Tensor::from_slice(gpu, &self.x, &[s.m, s.k]).unwrap();
        let w = Tensor::from_slice(gpu, &self.w, &[s.n, s.k]).unwrap();
        let b = Tensor::from_slice(gpu, &self.b, &[s.n]).unwrap();
        let spec = |kernel| MatmulSpec {
            trans_b: true,
            bias: Some(&b),
            activation: Activation::Tanh,
            kernel,
            ..Default::default()
        };
        let chosen = ops::matmul_kernel(&x, &w, &spec(None)).unwrap();
        let product = |kernel| {
            let y = ops::matmul(&x, &w, &spec(kernel)).unwrap();
            y.to_vec().unwrap()
        };
        let tiles = Tile::ALL.iter().map(|&t| product(Some(t.into()))).collect();
        (chosen, product(None), product(Some(chosen)), tiles)
    }

    fn oracle(&self) -> Vec<f64> {
        let inputs = MatmulInputs {
            a: &self.x,
            b: &self.w,
            bias: Some(&self.b),
            add: None,
            activation: Activation::Tanh,
        };
        reference::matmul(&self.shape, &inputs)
    }
}

#[test]
fn tuning_keeps_the_measured_tile_per_bucket_in_its_file_and_changes_no_bit() {
    let dir = scratch("file");
    let file = dir.join("nested").join("tuning.json");
    let gpu = open(Tuning::File(file.clone()));
    assert!(gpu.tuning());
    assert_eq!(gpu.tuning_file(), Some(file.as_path()));
    assert!(gpu.tuned_choices().is_empty());

    let layer = Layer::new();
    let (chosen, y, y_chosen, tiles) = layer.run(&gpu);
    assert_close("tuned product", &y, &layer.oracle(), 1e-4);
    let same_bits = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
    assert!(
        same_bits(&y, &y_chosen),
        "{chosen} forced differs from the tuned product"
    );
    // The bucket's candidates include K split in two, which rounds differently; every unsplit
    // tile gives the same bits.
    for (tile, y_tile) in Tile::ALL.iter().zip(&tiles) {
        assert!(
            same_bits(y_tile, &tiles[0]),
            "tile {tile:?} differs from {:?}",
            Tile::ALL[0]
        );
    }
    let choices = gpu.tuned_choices();
    assert_eq!(choices.len(), 1, "one bucket measured: {choices:?}");
    let (key, name) = choices.iter().next().unwrap();
    assert_eq!(*name, chosen.name());
    assert!(key.starts_with("matmul m256 n512 k512 batch1"), "{key}");

    // The file holds the choice, and a new device starts from it.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["choices"][key], chosen.name());
    assert_eq!(written["adapter"], gpu.summary().adapter);
    let again = open(Tuning::File(file.clone()));
    assert_eq!(again.tuned_choices(), choices);
    assert_eq!(layer.run(&again).0, chosen);
    // A checked device measures the bucket for itself (bounds checks slow kernels unevenly) and
    // keeps its choice beside the unchecked one.
    let checked = open_with(GpuOptions {
        tuning: Some(Tuning::File(file.clone())),
        checked: Some(true),
        ..Default::default()
    });
    let s = &layer.shape;
    let x = Tensor::from_slice(&checked, &layer.x, &[s.m, s.k]).unwrap();
    let w = Tensor::from_slice(&checked, &layer.w, &[s.n, s.k]).unwrap();
    let trans_b = MatmulSpec {
        trans_b: true,
        ..Default::default()
    };
    ops::matmul_kernel(&x, &w, &trans_b).unwrap();
    let both = checked.tuned_choices();
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains_key(&format!("checked {key}")), "{both:?}");
    assert_eq!(both[key], chosen.name());

    // Small products take the fixed rule and are not recorded.
    let a = Tensor::from_slice(&gpu, &random(4, 60 * 50, -1.0, 1.0), &[60, 50]).unwrap();
    ops::matmul(
        &a,
        &a,
        &MatmulSpec {
            trans_b: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(gpu.tuned_choices().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_or_foreign_tuning_file_is_ignored_and_rewritten() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tuning.json");
    let foreign = serde_json::json!({
        "format": "percept.tuning.v1",
        "adapter": "some other adapter",
        "driver": "",
        "driver_info": "",
        "choices": { "matmul m256 n512 k512 batch1 an4 bt1": "small" },
    });
    for contents in ["not json at all".to_string(), foreign.to_string()] {
        std::fs::write(&file, &contents).unwrap();
        let gpu = open(Tuning::File(file.clone()));
        assert!(gpu.tuned_choices().is_empty(), "loaded {contents}");
        let (chosen, _, _, _) = Layer::new().run(&gpu);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(written["adapter"], gpu.summary().adapter);
        let choices = written["choices"].as_object().unwrap();
        assert_eq!(choices.len(), 1);
        assert_eq!(choices.values().next().unwrap(), &chosen.name());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_tuning_the_rule_chooses_and_nothing_is_kept() {
    let gpu = open(Tuning::Off);
    assert!(!gpu.tuning());
    assert_eq!(gpu.tuning_file(), None);
    let layer = Layer::new();
    let (chosen, y, _, _) = layer.run(&gpu);
    // 2 x 3 blocks of 128 x 128 are too few for the large tile.
    assert_eq!(chosen, Tile::Small.into());
    assert_close("ruled product", &y, &layer.oracle(), 1e-4);
    assert!(gpu.tuned_choices().is_empty());

    let gpu = open(Tuning::Memory);
    let (chosen, _, _, _) = layer.run(&gpu);
    assert_eq!(gpu.tuning_file(), None);
    assert_eq!(*gpu.tuned_choices().values().next().unwrap(), chosen.name());
}

/// Few outputs over a long K: the large tile with K split is among the kernels timed, and
/// whichever wins gives the product.
#[test]
fn few_outputs_over_a_long_k_may_take_a_split_kernel() {
    let gpu = open(Tuning::Memory);
    let (m, n, k) = (100, 90, 1100);
    let (a_host, b_host) = (random(7, m * k, -1.0, 1.0), random(8, k * n, -1.0, 1.0));
    let a = Tensor::from_slice(&gpu, &a_host, &[m, k]).unwrap();
    let b = Tensor::from_slice(&gpu, &b_host, &[k, n]).unwrap();
    let spec = MatmulSpec::default();
    let names: Vec<String> = ops::matmul_candidates(&a, &b, &spec)
        .unwrap()
        .iter()
        .map(|kernel| kernel.name())
        .collect();
    for split in ["large-split2", "large-split4"] {
        assert!(names.iter().any(|n| n == split), "{split} not in {names:?}");
    }
    let y = ops::matmul(&a, &b, &spec).unwrap();
    let choices = gpu.tuned_choices();
    let (key, name) = choices.iter().next().unwrap();
    assert!(key.starts_with("matmul m128 n128 k2048"), "{key}");
    assert!(names.contains(name), "{name} not among {names:?}");
    let shape = MatmulShape {
        batch: 1,
        m,
        n,
        k,
        trans_a: false,
        trans_b: false,
        broadcast_a: false,
        broadcast_b: false,
    };
    let inputs = MatmulInputs {
        a: &a_host,
        b: &b_host,
        bias: None,
        add: None,
        activation: Activation::Identity,
    };
    assert_close(
        &format!("product by {name}"),
        &y.to_vec().unwrap(),
        &reference::matmul(&shape, &inputs),
        1e-4,
    );
}

#[test]
fn tridiagonal_solves_take_the_method_measured_faster_for_their_bucket() {
    let gpu = open(Tuning::Memory);
    let (systems, n) = (64, 1024);
    let a = random(5, systems * n, -1.0, 1.0);
    let c = random(6, systems * n, -1.0, 1.0);
    let b: Vec<f32> = a
        .iter()
        .zip(&c)
        .map(|(a, c)| a.abs() + c.abs() + 0.5)
        .collect();
    let d = random(7, systems * n, -1.0, 1.0);
    let t = |v: &[f32]| Tensor::from_slice(&gpu, v, &[systems, n]).unwrap();
    let (at, bt, ct, dt) = (t(&a), t(&b), t(&c), t(&d));

    let x = ops::tridiagonal_solve(&at, &bt, &ct, &dt, None).unwrap();
    let choices = gpu.tuned_choices();
    assert_eq!(choices.len(), 1, "{choices:?}");
    let (key, chosen) = choices.iter().next().unwrap();
    assert!(key.starts_with("tridiagonal n1024 systems64 of "), "{key}");
    let chosen = chosen.clone();
    let method = ops::tridiagonal_method(&at, &bt, &ct, &dt).unwrap();
    assert_eq!(method.name(), chosen);
    assert!(method.applies(&gpu, systems, n), "{method:?}");
    let want = reference::tridiagonal_solve(&a, &b, &c, &d, n);
    assert_close("tuned solve", &x.to_vec().unwrap(), &want, 1e-4);

    // Batches below 2^12 equations are not measured.
    let small = Tensor::from_slice(&gpu, &b[..2 * n], &[2, n]).unwrap();
    ops::tridiagonal_solve_unchecked(&small, &small, &small, &small, None).unwrap();
    assert_eq!(gpu.tuned_choices().len(), 1);
}

#[test]
fn scans_are_tuned_between_doubling_and_chunks() {
    let gpu = open(Tuning::Memory);
    let (len, batch, w) = (100, 8, 10);
    let scale = 0.9 / (w as f32).sqrt();
    let a: Vec<f32> = random(8, len * batch * w * w, -1.0, 1.0)
        .iter()
        .map(|v| v * scale)
        .collect();
    let v = random(9, len * batch * w, -1.0, 1.0);
    let at = Tensor::from_slice(&gpu, &a, &[len, batch, w, w]).unwrap();
    let vt = Tensor::from_slice(&gpu, &v, &[len, batch, w]).unwrap();
    let x = ops::affine_scan(&at, &vt, None).unwrap();
    let want = reference::affine_scan(&a, &v, len, batch, w);
    assert_close("tuned scan", &x.to_vec().unwrap(), &want, 1e-5);
    let method = ops::affine_scan_method(&at, &vt, false).unwrap();
    assert_eq!(
        gpu.tuned_choices()["affine_scan len128 batch8 w10 dense"],
        method.name()
    );
    // The transposed scan is a bucket of its own.
    let y = ops::affine_scan_transposed(&at, &vt, None).unwrap();
    let want = reference::affine_scan_transposed(&a, &v, len, batch, w);
    assert_close("tuned transposed scan", &y.to_vec().unwrap(), &want, 1e-5);
    let method = ops::affine_scan_method(&at, &vt, true).unwrap();
    assert_eq!(
        gpu.tuned_choices()["affine_scan len128 batch8 w10 dense transposed"],
        method.name()
    );
}

#[test]
fn nothing_is_measured_inside_a_callers_timing() {
    let gpu = open(Tuning::Memory);
    let layer = Layer::new();
    let s = &layer.shape;
    let x = Tensor::from_slice(&gpu, &layer.x, &[s.m, s.k]).unwrap();
    let w = Tensor::from_slice(&gpu, &layer.w, &[s.n, s.k]).unwrap();
    let spec = MatmulSpec {
        trans_b: true,
        ..Default::default()
    };
    let (_, _) = gpu.time(|| ops::matmul(&x, &w, &spec)).unwrap();
    assert!(gpu.tuned_choices().is_empty(), "measured inside a timing");
    ops::matmul(&x, &w, &spec).unwrap();
    assert_eq!(gpu.tuned_choices().len(), 1);
}

/// An FFT plan large enough to be tuned measures its blocks when it is built, keeps the choice,
/// and transforms right with it.
#[test]
fn a_large_fft_plan_is_tuned_when_built() {
    let gpu = open(Tuning::Memory);
    let shape = [300, 1024];
    let host: Vec<[f32; 2]> = random(9, 2 * 300 * 1024, -1.0, 1.0)
        .chunks(2)
        .map(|p| [p[0], p[1]])
        .collect();
    let plan = FftPlan::new(&gpu, FftKind::Forward, &shape, 1, FftNorm::Ortho).unwrap();
    let choices = gpu.tuned_choices();
    let (key, block) = choices.iter().next().expect("a choice was kept");
    assert_eq!(key, "fft Forward n1024 outer512 inner1");
    assert!(block.starts_with("block "), "{block}");
    let x = Tensor::from_complex(&gpu, &host, &shape).unwrap();
    let y = plan.execute(&x).unwrap().to_complex_vec().unwrap();
    let want = reference::fft_c2c(&host, &shape, 1, false, FftNorm::Ortho);
    assert_close(
        &format!("fft by {block}"),
        &y.concat(),
        &want.concat(),
        1e-5,
    );
    // A plan of another batch in the bucket takes the kept block, unmeasured.
    let again = FftPlan::new(&gpu, FftKind::Forward, &[500, 1024], 1, FftNorm::Ortho).unwrap();
    assert_eq!(gpu.tuned_choices(), choices);
    assert_eq!(again.algorithm(), plan.algorithm());
}
