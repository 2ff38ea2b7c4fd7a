//! A tiny seeded generator whose output is fixed forever.
//!
//! Sampler orders are part of an experiment's identity (a golden-order snapshot guards them), so
//! they must not change when a dependency's generator changes. SplitMix64 (Steele, Lea and Flood,
//! 2014) is small, passes BigCrush, and is written out here so its sequence is ours.

/// SplitMix64 with an unbiased bounded draw and a Fisher–Yates shuffle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRng {
    state: u64,
}

impl SeedRng {
    /// A generator for a seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for a seed and a purpose, so that two plugins given the same cell seed do not
    /// draw the same stream (the salt is hashed with FNV-1a).
    pub fn derive(seed: u64, salt: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in salt.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = Self::new(seed ^ h);
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` without modulo bias (Lemire's method). `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SeedRng::below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Shuffles in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // First outputs of SplitMix64 seeded with 1234567, from the reference C code by
        // Sebastiano Vigna (https://prng.di.unimi.it/splitmix64.c):
        //   uint64_t x = 1234567; for (i = 0; i < 3; i++) printf("%llu\n", next());
        let mut rng = SeedRng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn below_stays_in_range_and_shuffle_is_a_permutation() {
        let mut rng = SeedRng::derive(7, "test");
        for n in 1..50 {
            assert!(rng.below(n) < n);
        }
        let mut v: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted, "a shuffle of 100 items left them sorted");
    }
}
