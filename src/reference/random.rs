//! The twin of `ops::random`: the same Philox4x32-10 words, computed with 64-bit products, and
//! the same transforms in f64.

use crate::ops::Distribution;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds (Salmon et al., 2011) of `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = M0 as u64 * c[0] as u64;
        let p1 = M1 as u64 * c[2] as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four Philox words of block `block` (elements 4 block .. 4 block + 3) of stream `seed`.
pub fn random_block(seed: u64, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

fn open_unit(w: u32) -> f64 {
    ((w >> 8) as f64 + 0.5) / 16_777_216.0
}

fn half_open_unit(w: u32) -> f64 {
    ((w >> 8) as f64 + 1.0) / 16_777_216.0
}

/// Element `g` of stream `seed` of `dist`, in f64.
pub fn random_element(dist: Distribution, seed: u64, g: u64) -> f64 {
    let w = random_block(seed, g >> 2);
    let lane = (g & 3) as usize;
    match dist {
        Distribution::Uniform { low, high } => {
            low as f64 + (high as f64 - low as f64) * open_unit(w[lane])
        }
        Distribution::Normal { mean, std } => {
            let pair = lane & 2;
            let r = (-2.0 * half_open_unit(w[pair]).ln()).sqrt();
            let theta = std::f64::consts::PI * (2.0 * open_unit(w[pair + 1]) - 1.0);
            let z = if lane & 1 == 0 {
                r * theta.cos()
            } else {
                r * theta.sin()
            };
            mean as f64 + std as f64 * z
        }
    }
}

/// Elements `offset .. offset + n` of stream `seed` of `dist`, as `ops::random_fill` writes them.
pub fn random(dist: Distribution, seed: u64, offset: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| random_element(dist, seed, offset + i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::philox4x32_10;

    /// Known-answer vectors of Random123's `kat_vectors` for philox4x32_10.
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }
}
