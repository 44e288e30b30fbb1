use crate::ops::Activation;

/// Twin of [`crate::deeppcr::DeepMlp::forward_sequential`]: every layer's output
/// `z[l] = act(W[l] z[l-1] + b[l])`, `[L, batch, w]`, for weights `[L, w, w]`, biases `[L, w]`
/// and inputs `[batch, w]`. It takes f64 so that finite differences can perturb its inputs.
pub fn deep_mlp_states(
    activation: Activation,
    weights: &[f64],
    biases: &[f64],
    x: &[f64],
    width: usize,
) -> Vec<f64> {
    let layers = biases.len() / width;
    let mut states = Vec::with_capacity(layers * x.len());
    let mut z = x.to_vec();
    for l in 0..layers {
        z = z
            .chunks(width)
            .flat_map(|row| {
                (0..width).map(move |i| {
                    let w_row = &weights[(l * width + i) * width..][..width];
                    let u: f64 = w_row.iter().zip(row).map(|(w, z)| w * z).sum();
                    super::activation_scalar(activation, u + biases[l * width + i])
                })
            })
            .collect();
        states.extend_from_slice(&z);
    }
    states
}
