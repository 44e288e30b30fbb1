//! A deep, narrow tanh MLP evaluated in depth-parallel by DeepPCR (Newton iterations, each a
//! parallel scan over the layers) and back-propagated by one transposed scan, beside the
//! layer-by-layer passes it replaces.
//!
//! Run with `cargo run --release --example deeppcr -- 512 8 64` (layers, width, batch).

use percept::deeppcr::{DeepMlp, NewtonOptions};
use percept::ops::Activation;
use percept::reference::max_rel_err_per_part;
use percept::{Gpu, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected three sizes LAYERS WIDTH BATCH: {e}"))?;
    let [layers, width, batch] = match dims[..] {
        [] => [512, 8, 64],
        [l, w, b] => [l, w, b],
        _ => return Err("usage: deeppcr [LAYERS WIDTH BATCH]".into()),
    };

    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({})",
        gpu.summary().adapter,
        gpu.summary().backend
    );
    // Weights N(0, 0.8^2 / w): every tanh layer is a contraction, so Newton converges.
    let net = DeepMlp::random(&gpu, layers, width, Activation::Tanh, 0.8, 0.1, 0)?;
    let mut rng = StdRng::seed_from_u64(1);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let x = Tensor::from_slice(&gpu, &random(batch * width), &[batch, width])?;
    let d_output = Tensor::from_slice(&gpu, &random(batch * width), &[batch, width])?;

    // The first calls compile the kernels and, with tuning on, time the scan methods once
    // per shape: not what the passes cost.
    let warm = net.forward_deeppcr(&x, &NewtonOptions::default())?.0;
    net.backward(&warm, &d_output, true)?;

    let (sequential, seq_time) = gpu.time(|| net.forward_sequential(&x))?;
    let ((parallel, stats), pcr_time) =
        gpu.time(|| net.forward_deeppcr(&x, &NewtonOptions::default()))?;
    let in_f64 = |t: &Tensor| -> Result<Vec<f64>, percept::Error> {
        Ok(t.to_vec()?.iter().map(|&v| v as f64).collect())
    };
    let want = in_f64(&sequential.states)?;
    let off = max_rel_err_per_part(&parallel.states.to_vec()?, &want, batch * width);
    // Newton stops within 1e-5 of each layer's scale (NewtonOptions::default()).
    if off > 1e-4 {
        return Err(format!("DeepPCR's states are {off:.1e} off the sequential pass's").into());
    }
    println!(
        "forward, L = {layers}, w = {width}, batch {batch}: {} Newton steps, {} dependent \
         dispatch levels against {layers}; states within {off:.1e} of the sequential pass's \
         (each layer on its own scale); {:?} against {:?}",
        stats.iterations, stats.sequential_steps, pcr_time.elapsed, seq_time.elapsed
    );
    if stats.fell_back {
        println!("Newton did not converge: the sequential pass stood in");
    }

    let (by_layer, seq_time) = gpu.time(|| net.backward(&sequential, &d_output, false))?;
    let (by_scan, pcr_time) = gpu.time(|| net.backward(&parallel, &d_output, true))?;
    let want = in_f64(&by_layer.weights)?;
    let off = max_rel_err_per_part(&by_scan.weights.to_vec()?, &want, width * width);
    if off > 1e-3 {
        return Err(format!("the scan's gradients are {off:.1e} off the layer-by-layer's").into());
    }
    println!(
        "backward by one transposed scan: weight gradients within {off:.1e} of the layer-by-layer \
         pass's; {:?} against {:?}",
        pcr_time.elapsed, seq_time.elapsed
    );
    Ok(())
}
