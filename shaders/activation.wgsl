// Activation functions and their derivatives, shared by the elementwise and matmul kernels.
// Codes (kept in step with `ops::Activation`): 0 identity, 1 ReLU, 2 GELU (exact, erf form),
// 3 tanh, 4 sigmoid, 5 ELU (alpha 1), 6 softplus. Concatenated after nan.wgsl.

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under f32 rounding of GELU).
fn erf_approx(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-x * x);
    return select(-y, y, x >= 0.0);
}

// log(1 + t) for t >= 0, accurate for tiny t: the ratio log(u) / (u - 1) cancels u's rounding.
fn log1p_pos(t: f32) -> f32 {
    let u = 1.0 + t;
    if (u == 1.0) {
        return t;
    }
    return log(u) * t / (u - 1.0);
}

// exp(x) - 1, accurate near 0 by the same cancellation (Kahan's trick).
fn expm1_acc(x: f32) -> f32 {
    let u = exp(x);
    if (u == 1.0) {
        return x;
    }
    let um1 = u - 1.0;
    if (um1 == -1.0) {
        return -1.0;
    }
    return um1 * x / log(u);
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

const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

fn act_forward(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: { return select(max(x, 0.0), x, is_nan(x)); }
        case 2u: { return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT2)); }
        case 3u: { return tanh_safe(x); }
        case 4u: { return sigmoid(x); }
        case 5u: { return select(expm1_acc(x), x, x > 0.0); }
        case 6u: {
            if (x < -15.0) {
                return exp(x);
            }
            return max(x, 0.0) + log1p_pos(exp(-abs(x)));
        }
        default: { return x; }
    }
}

// d act(x) / dx at the pre-activation x.
fn act_derivative(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return 0.5 * (1.0 + erf_approx(x * INV_SQRT2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x); }
        case 3u: {
            let t = tanh_safe(x);
            return 1.0 - t * t;
        }
        case 4u: {
            let s = sigmoid(x);
            return s * (1.0 - s);
        }
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
