//! Hash maps keyed by handles and object ids.
//!
//! Handles and ids are integers this module hands out itself, so they need no
//! protection against chosen collisions; SipHash (the std default, ~20 ns per
//! lookup) would be most of the cost of finding a session on every call. One
//! 128-bit multiply folded to 64 bits spreads sequential integers over every
//! bit hashbrown uses.

use parking_lot::RwLock;
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

/// A value alone on its cache line (and the one prefetched with it), so that
/// threads writing neighbouring values do not take turns with one line.
#[repr(align(128))]
pub struct Padded<T>(pub T);

const SHARDS: usize = 16;

/// A handle map split into locks by handle: threads working in their own
/// sessions (consecutive handles) take different locks, instead of all
/// taking turns with the cache line of one lock word on every call.
pub struct ShardedHandleMap<V> {
    shards: Box<[Shard<V>]>,
}

type Shard<V> = Padded<RwLock<HandleMap<u64, V>>>;

impl<V: Clone> Default for ShardedHandleMap<V> {
    fn default() -> Self {
        ShardedHandleMap {
            shards: (0..SHARDS)
                .map(|_| Padded(RwLock::new(HandleMap::default())))
                .collect(),
        }
    }
}

impl<V: Clone> ShardedHandleMap<V> {
    fn shard(&self, h: u64) -> &RwLock<HandleMap<u64, V>> {
        &self.shards[(h % SHARDS as u64) as usize].0
    }

    pub fn get(&self, h: u64) -> Option<V> {
        self.shard(h).read().get(&h).cloned()
    }

    pub fn insert(&self, h: u64, v: V) {
        self.shard(h).write().insert(h, v);
    }

    pub fn remove(&self, h: u64) -> Option<V> {
        self.shard(h).write().remove(&h)
    }

    /// A snapshot of every value (each shard locked in turn).
    pub fn values(&self) -> Vec<V> {
        self.shards
            .iter()
            .flat_map(|s| s.0.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Whether any value satisfies `f` (each shard locked in turn).
    pub fn any(&self, f: impl Fn(&V) -> bool) -> bool {
        self.shards.iter().any(|s| s.0.read().values().any(&f))
    }

    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.0.write().clear();
        }
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
    fn a_sharded_map_keeps_every_entry() {
        let m: ShardedHandleMap<u64> = ShardedHandleMap::default();
        for h in 1..=100u64 {
            m.insert(h, h * 10);
        }
        assert_eq!(m.get(37), Some(370));
        assert_eq!(m.remove(37), Some(370));
        assert_eq!(m.get(37), None);
        let mut all = m.values();
        all.sort_unstable();
        assert_eq!(all.len(), 99);
        assert!(m.any(|v| *v == 1000));
        assert!(!m.any(|v| *v == 370));
        m.clear();
        assert!(m.values().is_empty());
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
