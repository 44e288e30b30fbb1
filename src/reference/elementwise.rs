use crate::ops::Activation;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The standard normal CDF by erfc, accurate relative to its value in the lower tail, where
/// (1 + erf(x / sqrt 2)) / 2 cancels (to 0 in f64 from x = -8.3 on).
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// act(x) in f64.
pub fn activation_scalar(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::Gelu => x * normal_cdf(x),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
    }
}

/// act'(x) in f64.
pub fn activation_derivative(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Gelu => normal_cdf(x) + x * INV_SQRT_2PI * (-0.5 * x * x).exp(),
        // 1 / cosh^2, not 1 - tanh^2, which is 0 from |x| = 19 on (tanh rounds to 1 in f64)
        // and loses digits well before.
        Activation::Tanh => x.cosh().powi(-2),
        // s(x) s(-x), not s (1 - s), which loses digits as s nears 1.
        Activation::Sigmoid => 1.0 / ((1.0 + (-x).exp()) * (1.0 + x.exp())),
        Activation::Elu => {
            if x > 0.0 {
                1.0
            } else {
                x.exp()
            }
        }
        Activation::Softplus => 1.0 / (1.0 + (-x).exp()),
    }
}

/// Twin of [`crate::ops::activation`].
pub fn activation(x: &[f32], act: Activation) -> Vec<f64> {
    x.iter()
        .map(|&v| activation_scalar(act, v as f64))
        .collect()
}

/// Twin of [`crate::ops::activation_backward`].
pub fn activation_backward(pre: &[f32], grad_out: &[f32], act: Activation) -> Vec<f64> {
    pre.iter()
        .zip(grad_out)
        .map(|(&x, &g)| g as f64 * activation_derivative(act, x as f64))
        .collect()
}

fn zip(x: &[f32], y: &[f32], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| f(a as f64, b as f64))
        .collect()
}

/// Twin of [`crate::ops::add`].
pub fn add(x: &[f32], y: &[f32]) -> Vec<f64> {
    zip(x, y, |a, b| a + b)
}

/// Twin of [`crate::ops::sub`].
pub fn sub(x: &[f32], y: &[f32]) -> Vec<f64> {
    zip(x, y, |a, b| a - b)
}

/// Twin of [`crate::ops::mul`].
pub fn mul(x: &[f32], y: &[f32]) -> Vec<f64> {
    zip(x, y, |a, b| a * b)
}

/// Twin of [`crate::ops::scale`].
pub fn scale(x: &[f32], alpha: f32) -> Vec<f64> {
    x.iter().map(|&a| alpha as f64 * a as f64).collect()
}

/// Twin of [`crate::ops::axpy`]: the new `y`.
pub fn axpy(alpha: f32, x: &[f32], y: &[f32]) -> Vec<f64> {
    zip(x, y, |a, b| b + alpha as f64 * a)
}

/// Twin of [`crate::ops::activation_backward_from_output`]: `dy * act'` computed from the
/// activation's output `out`.
pub fn activation_backward_from_output(out: &[f32], grad_out: &[f32], act: Activation) -> Vec<f64> {
    out.iter()
        .zip(grad_out)
        .map(|(&y, &g)| {
            let y = y as f64;
            let d = match act {
                Activation::Identity | Activation::Gelu => 1.0,
                Activation::Relu => (y > 0.0) as u8 as f64,
                Activation::Tanh => 1.0 - y * y,
                Activation::Sigmoid => y * (1.0 - y),
                Activation::Elu => {
                    if y > 0.0 {
                        1.0
                    } else {
                        y + 1.0
                    }
                }
                Activation::Softplus => -(-y).exp_m1(),
            };
            g as f64 * d
        })
        .collect()
}
