//! Hash maps keyed by handles and object ids.
//!
//! Handles and ids are integers this module hands out itself, so they need no
//! protection against chosen collisions; SipHash (the std default, ~20 ns per
//! lookup) would be most of the cost of finding a session on every call. One
//! 128-bit multiply folded to 64 bits spreads sequential integers over every
//! bit hashbrown uses.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` for integer keys handed out by the module.
pub type HandleMap<K, V> = HashMap<K, V, BuildHasherDefault<HandleHasher>>;

/// Multiply-fold hasher for integer keys.
#[derive(Default, Clone, Copy)]
pub struct HandleHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0 ^ K).wrapping_mul(u128::from(K));
        (p as u64) ^ ((p >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(32) ^ n;
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_handles_spread_over_high_and_low_bits() {
        let b = BuildHasherDefault::<HandleHasher>::default();
        let hashes: Vec<u64> = (1u64..=1024).map(|h| b.hash_one(h)).collect();
        // hashbrown takes the bucket from the low bits and a 7-bit tag from
        // the top bits: both must vary.
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 600, "{} distinct low values", low.len());
        assert_eq!(top.len(), 128, "every 7-bit tag is used");
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut m: HandleMap<u64, u64> = HandleMap::default();
        for h in 0..10_000u64 {
            m.insert(h * 2 + 1, h);
        }
        assert!((0..10_000u64).all(|h| m.get(&(h * 2 + 1)) == Some(&h)));
        assert_eq!(m.get(&2), None);
    }
}
