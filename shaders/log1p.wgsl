// log(1 + t) for t >= -1, accurate relative to its value near t = 0. WGSL's log need only be
// within an absolute 2^-21 on [0.5, 2], and lavapipe's is off by about an ulp of 1 just above
// and below 1 (log(1 + 3e-7) came out 17% high), so Kahan's log(u) * t / (u - 1) fails there.
// For t in [-0.5, 1] the series 2 atanh(s) = 2 (s + s^3/3 + ...), s = t / (2 + t) with
// |s| <= 1/3, avoids log altogether (truncated past s^17: below 2e-10 relative); elsewhere the
// log is far from 0 and the builtin is accurate enough.
fn log1p_acc(t: f32) -> f32 {
    if (t > 1.0 || t < -0.5) {
        return log(1.0 + t);
    }
    let s = t / (2.0 + t);
    let s2 = s * s;
    let odd = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0
        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0))))))));
    return 2.0 * s * odd;
}
