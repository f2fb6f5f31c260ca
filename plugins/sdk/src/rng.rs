//! A fast PRNG and 64-bit hashing for selection decisions.
//!
//! Neither is cryptographic: they spread load, they do not keep secrets.
//! A plugin has no entropy source (no WASI), and every worker core runs its
//! own instance from the same seed; [`Rng::mix`] folds per-request data (the
//! host's request hash, the client address) into the state so cores drift
//! apart instead of making the same choices in lockstep.

/// wyrand: one `u64` of state, a multiply and a xor per number; passes
/// BigCrush/PractRand for the uses here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const WY0: u64 = 0xa076_1d64_78bd_642f;
const WY1: u64 = 0xe703_7ed1_a0b4_28db;

impl Default for Rng {
    /// A fixed seed: runs are reproducible until [`Rng::mix`] adds request data.
    fn default() -> Self {
        Rng::new(0x5eed_fa57_1b00_0001)
    }
}

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(WY0);
        let t = u128::from(self.state) * u128::from(self.state ^ WY1);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// A number in `0..n` (0 when `n` is 0), without modulo bias worth
    /// measuring (Lemire's multiply-shift).
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u64() as u32) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `percent`/100 (clamped to 0–100).
    #[inline]
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < percent.min(100)
    }

    /// Folds `x` into the state (e.g. `req.hash`), so instances seeded alike
    /// diverge with the traffic they see.
    #[inline]
    pub fn mix(&mut self, x: u64) {
        self.state = mix64(self.state ^ x);
    }
}

/// A strong 64-bit finaliser (splitmix64's): every input bit affects every
/// output bit. Use it to turn a key into a well-spread hash.
#[inline]
pub const fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hashes two 64-bit values into one (order matters), e.g. a key with a
/// backend index for rendezvous hashing.
#[inline]
pub const fn hash2(a: u64, b: u64) -> u64 {
    mix64(a ^ mix64(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// Hashes bytes (FNV-1a over the bytes, then [`mix64`]). Stable across
/// builds and platforms, so the same key maps the same way in every plugin
/// version.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// [`hash_bytes`] of a string's UTF-8.
pub fn hash_str(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_from_seed() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(43);
        assert_ne!(Rng::new(42).next_u64(), c.next_u64());
    }

    #[test]
    fn below_is_in_range_and_uniform() {
        let mut r = Rng::default();
        assert_eq!(r.below(0), 0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let v = r.below(10);
            counts[v as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn percent_matches_its_rate() {
        let mut r = Rng::new(7);
        let hits = (0..100_000).filter(|_| r.percent(10)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.percent(0)));
        assert!((0..1000).all(|_| r.percent(100)));
        assert!((0..1000).all(|_| r.percent(250)));
    }

    #[test]
    fn bits_are_balanced() {
        let mut r = Rng::new(1);
        let mut ones = [0u32; 64];
        for _ in 0..20_000 {
            let v = r.next_u64();
            for (bit, n) in ones.iter_mut().enumerate() {
                *n += ((v >> bit) & 1) as u32;
            }
        }
        for n in ones {
            assert!((9_500..10_500).contains(&n), "{n}");
        }
    }

    #[test]
    fn mix_diverges_instances() {
        let mut a = Rng::default();
        let mut b = Rng::default();
        a.mix(1);
        b.mix(2);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn hashes_are_stable_and_spread() {
        // Pinned values: a change here remaps every key of every deployed plugin.
        assert_eq!(hash_str("tenant-a"), 0xcac5_cf1c_9ddd_ed39);
        assert_eq!(hash2(1, 2), 0xf282_6f98_653e_9e57);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        assert_eq!(hash_str(""), mix64(0xcbf2_9ce4_8422_2325));
        assert_ne!(hash_str("tenant-a"), hash_str("tenant-b"));
        assert_ne!(hash2(1, 2), hash2(2, 1));
        assert_eq!(mix64(0), 0);
        // One flipped input bit flips about half the output bits.
        let flips = (mix64(0x1234) ^ mix64(0x1235)).count_ones();
        assert!((16..=48).contains(&flips), "{flips}");
    }
}
