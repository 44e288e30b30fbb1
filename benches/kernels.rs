//! Wall-clock benchmarks of the kernels through the public API (`cargo bench`): each iteration
//! records the op and waits for the GPU, so times include submission. `percept bench` reports
//! GPU-timestamp medians and rates; this harness tracks regressions of the whole path.

use divan::Bencher;
use percept::ops::{self, Activation, MatmulSpec, Reduction};
use percept::{Gpu, Tensor};

fn main() {
    divan::main();
}

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| Gpu::new().expect("a GPU adapter (see README: Running on a GPU)"))
}

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Tensor::from_slice(gpu(), &data, shape).unwrap()
}

#[divan::bench(args = [64, 128, 256])]
fn matmul_square(bencher: Bencher, n: usize) {
    let a = filled(&[n, n]);
    bencher.bench(|| {
        let c = ops::matmul(&a, &a, &MatmulSpec::default()).unwrap();
        gpu().synchronize().unwrap();
        c
    });
}

#[divan::bench]
fn matmul_mlp_layer(bencher: Bencher) {
    let (x, w, b) = (filled(&[256, 128]), filled(&[128, 128]), filled(&[128]));
    let spec = MatmulSpec {
        trans_b: true,
        bias: Some(&b),
        activation: Activation::Relu,
        ..Default::default()
    };
    bencher.bench(|| {
        let y = ops::matmul(&x, &w, &spec).unwrap();
        gpu().synchronize().unwrap();
        y
    });
}

#[divan::bench]
fn softmax_rows(bencher: Bencher) {
    let x = filled(&[256, 1000]);
    bencher.bench(|| {
        let y = ops::softmax(&x).unwrap();
        gpu().synchronize().unwrap();
        y
    });
}

#[divan::bench]
fn layernorm_rows(bencher: Bencher) {
    let x = filled(&[256, 1024]);
    bencher.bench(|| {
        let y = ops::layernorm(&x, None, 1e-5).unwrap();
        gpu().synchronize().unwrap();
        y
    });
}

#[divan::bench]
fn reduce_all_sum(bencher: Bencher) {
    let x = filled(&[1 << 20]);
    bencher.bench(|| {
        let y = ops::reduce_all(&x, Reduction::Sum).unwrap();
        gpu().synchronize().unwrap();
        y
    });
}

#[divan::bench]
fn gelu(bencher: Bencher) {
    let x = filled(&[1 << 20]);
    bencher.bench(|| {
        let y = ops::activation(&x, Activation::Gelu).unwrap();
        gpu().synchronize().unwrap();
        y
    });
}

/// The scan of the DeepPCR target (L = 1024, w = 16, batch 64, factored Jacobians) with its
/// chains in registers, at the chunk lengths tuning measures (32 is the rule's) and twice the
/// rule's: longer chunks mean less work and longer chains.
#[divan::bench(args = [8, 16, 32, 64], sample_count = 5, sample_size = 1)]
fn affine_scan_chunk(bencher: Bencher, chunk: usize) {
    let (len, batch, w) = (1024, 64, 16);
    let weights = ops::scale(&filled(&[len, w, w]), 0.2).unwrap();
    let scales = filled(&[len, batch, w]);
    let v = filled(&[len, batch, w]);
    let maps = ops::ScanMaps::RowScaled {
        weights: &weights,
        scales: &scales,
    };
    let method = ops::ScanMethod::ChunkedRegisters { chunk };
    bencher.bench(|| {
        let x = ops::affine_scan(maps, &v, Some(method)).unwrap();
        gpu().synchronize().unwrap();
        x
    });
}
