//! A deep equilibrium layer as a downstream crate would use it: solve for z* with Anderson
//! acceleration, differentiate implicitly, and print what the solvers did.
//!
//! Run with `cargo run --release --example deq`.

use percept::deq::{Backward, Deq, DeqConfig, Method, SolverConfig};
use percept::{Gpu, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Gpu::new()?;
    let solver = SolverConfig {
        method: Method::ANDERSON,
        tol: 1e-4,
        ..SolverConfig::default()
    };
    let config = DeqConfig {
        outputs: 10,       // a linear head on z*
        hidden: vec![128], // cell: tanh(W2 tanh(W1 z + U x + b1) + b2)
        bias: true,
        backward: Backward::Implicit {
            solver: solver.clone(),
        },
        solver,
        ..DeqConfig::new(64, 96) // 64 inputs, z of width 96
    };
    let deq = Deq::new(&gpu, config)?;
    let x_host: Vec<f32> = (0..8 * 64).map(|i| ((i % 11) as f32 - 5.0) / 5.0).collect();
    let x = Tensor::from_slice(&gpu, &x_host, &[8, 64])?;
    let forward = deq.forward(&x)?;
    let s = &forward.stats;
    println!(
        "forward: {} in {} iterations, converged {} ({} of {} rows), largest residual {:.2e}",
        s.method, s.iterations, s.converged, s.converged_rows, s.rows, s.max_residual
    );
    let dy = Tensor::from_slice(&gpu, &[1.0; 8 * 10], &[8, 10])?;
    let backward = deq.backward(&forward, &dy, true)?;
    if let Some(s) = &backward.stats {
        println!(
            "adjoint: {} in {} iterations, largest residual {:.2e}",
            s.method, s.iterations, s.max_residual
        );
    }
    let grads = deq.params().grads().to_vec()?;
    let norm = grads.iter().map(|g| g * g).sum::<f32>().sqrt();
    let dx = backward.input_grad.expect("asked for").to_vec()?;
    println!(
        "parameter gradient norm {norm:.4e}, input gradient of row 0 starts {:?}",
        &dx[..4]
    );
    Ok(())
}
