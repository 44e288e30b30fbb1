// Activation functions and their derivatives, shared by the elementwise and matmul kernels.
// Codes (kept in step with `ops::Activation`): 0 identity, 1 ReLU, 2 GELU (exact, erf form),
// 3 tanh, 4 sigmoid, 5 ELU (alpha 1), 6 softplus. Concatenated after nan.wgsl and log1p.wgsl.

const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erfc(z) for z >= 0 by Numerical Recipes' erfcc (a Chebyshev fit in t = 1 / (1 + z / 2)),
// within 1.2e-7 relative to its value for every z >= 0, the far tail included: GELU's lower tail
// x * Phi(x) is then accurate relative to its value. (Abramowitz & Stegun 7.1.26, used before,
// is within 1.5e-7 absolute only: 1 + erf(x) cancelled, GELU(-5) came out 4% off and GELU(-6)
// 0 instead of -5.9e-9.)
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
        + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(p - 1.26551223 - z * z);
}

// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, accurate relative to its value for
// x < 0 (the tail is computed directly, not as 1 minus something near 1).
fn normal_cdf(x: f32) -> f32 {
    let c = 0.5 * erfc_pos(abs(x) * INV_SQRT2);
    return select(1.0 - c, c, x < 0.0);
}

// exp(x) - 1, accurate relative to its value near 0. Kahan's (exp(x) - 1) * x / log(exp(x))
// needs a log accurate near 1, which WGSL does not promise and lavapipe's is not (ELU(-1e-30)
// came out -6e-8): below 0.5 in size the Taylor series to x^8 / 8! (truncation below 2e-8
// relative), past it exp(x) - 1 loses at most a factor 2.6 to cancellation.
fn expm1_acc(x: f32) -> f32 {
    if (abs(x) < 0.5) {
        return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0
            + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))));
    }
    return exp(x) - 1.0;
}

// tanh accurate relative to its value everywhere. WGSL's tanh need only be as accurate as
// sinh / cosh through exp, which near 0 is an absolute error: lavapipe's rounded tanh(x) to 0
// for |x| below about 3e-8, and states that shrink through a deep network's layers lost every
// digit. Below 0.1 the series x - x^3/3 + 2x^5/15 is within 6e-8 of tanh; above it,
// 1 - 2 / (exp(2|x|) + 1) loses at most a factor 10 to cancellation, with |x| held at 15 (tanh
// is 1 in f32 there) so that exp cannot overflow. clamp, like max, may turn a NaN into a bound,
// so a NaN is passed on by hand: a NaN input is the caller's to see, not a finite output.
fn tanh_safe(x: f32) -> f32 {
    let a = min(abs(x), 15.0);
    let a2 = a * a;
    let series = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0)));
    let t = select(1.0 - 2.0 / (exp(2.0 * a) + 1.0), series, a < 0.1);
    return select(sign(x) * t, x, is_nan(x));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn act_forward(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: { return select(max(x, 0.0), x, is_nan(x)); }
        case 2u: { return x * normal_cdf(x); }
        case 3u: { return tanh_safe(x); }
        case 4u: { return sigmoid(x); }
        case 5u: { return select(expm1_acc(x), x, x > 0.0); }
        case 6u: {
            if (x < -15.0) {
                return exp(x);
            }
            return max(x, 0.0) + log1p_acc(exp(-abs(x)));
        }
        default: { return x; }
    }
}

// d act(x) / dx at the pre-activation x.
fn act_derivative(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x); }
        // sech^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): 1 - tanh^2 lost every digit where tanh
        // rounds to 1 (from |x| = 9.5 on, and 6% at 8).
        case 3u: {
            let e = exp(-2.0 * abs(x));
            return 4.0 * e / ((1.0 + e) * (1.0 + e));
        }
        // sigmoid(x) sigmoid(-x), not s (1 - s), which is 0 once s rounds to 1 (x >= 17).
        case 4u: { return sigmoid(x) * sigmoid(-x); }
        case 5u: { return select(exp(x), 1.0, x > 0.0); }
        case 6u: { return sigmoid(x); }
        default: { return 1.0; }
    }
}

// d act / dx expressed through the output y = act(x), for the activations where that is
// possible (all but GELU), so a fused matmul epilogue need not keep the pre-activation.
fn act_derivative_from_output(code: u32, y: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return y * (1.0 - y); }
        case 5u: { return select(y + 1.0, 1.0, y > 0.0); }
        case 6u: { return -expm1_acc(-y); }
        default: { return 1.0; }
    }
}
