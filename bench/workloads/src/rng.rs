//! Deterministic pseudo-random numbers for building workloads.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014): a few lines, fast, and, unlike a
//! library generator whose algorithm may change between versions, fixed for
//! good. The same seed therefore gives the same object sizes and the same free
//! order on every machine and in every version of this benchmark, which is what
//! makes two runs comparable. The micro-benchmark draws everything before
//! timing; the suite's workloads draw as they go, the same numbers under every
//! allocator, at a few nanoseconds a draw.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    /// Advances by the golden-ratio increment on every draw; any value is valid.
    state: u64,
}

impl SplitMix64 {
    /// A generator whose output is determined entirely by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`, uniform up to a bias below 2^-32 for any range this
    /// workload uses (Lemire's multiply-shift reduction, without rejection).
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = u128::from(hi - lo) + 1;
        // The product's high half is below `span`, so it fits in a u64.
        lo + ((u128::from(self.next_u64()) * span) >> 64) as u64
    }

    /// A value below `n` (which must be non-zero).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        self.range_inclusive(0, n as u64 - 1) as usize
    }

    /// A size in `lo..=hi` drawn log-uniformly: each power of two in the
    /// range is about as likely as any other, as object sizes in real
    /// programs are. Both bounds must be at least 1.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        assert!(0 < lo && lo <= hi, "bad size range {lo}..={hi}");
        let (a, b) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((a + (b - a) * unit).exp() as usize).clamp(lo, hi)
    }

    /// Puts `items` into a uniformly random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn matches_the_reference_output() {
        // First output of the reference C implementation seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn ranges_are_respected_and_covered() {
        let mut rng = SplitMix64::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let x = rng.range_inclusive(10, 14);
            assert!((10..=14).contains(&x));
            seen[(x - 10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.range_inclusive(3, 3), 3);
        // The full range must not overflow the span computation.
        let _ = rng.range_inclusive(0, u64::MAX);
    }

    #[test]
    fn log_uniform_covers_every_octave() {
        let mut rng = SplitMix64::new(3);
        let mut octaves = [0u32; 11];
        for _ in 0..11_000 {
            let x = rng.log_uniform(16, 32 * 1024);
            assert!((16..=32 * 1024).contains(&x));
            octaves[(x.ilog2() - 4) as usize] += 1;
        }
        assert!(octaves.iter().all(|&n| n > 500), "{octaves:?}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = SplitMix64::new(1);
        let mut xs: Vec<usize> = (0..1000).collect();
        rng.shuffle(&mut xs);
        assert_ne!(xs, (0..1000).collect::<Vec<_>>());
        xs.sort_unstable();
        assert_eq!(xs, (0..1000).collect::<Vec<_>>());
    }
}
