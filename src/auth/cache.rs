//! A bounded cache of verified tokens, keyed by a 128-bit keyed hash of the token (SipHash-2-4
//! under a random key of the cache's own): a token seen again skips the signature check and the
//! claim parsing (an RS256 check costs ~20 µs, ES256 ~50 µs).
//!
//! The key must not collide for two tokens, or one would pass as the other. SipHash is a PRF:
//! without its key, which never leaves the process, a collision takes ~2^64 tokens presented,
//! as for SHA-256 truncated to 128 bits, at a tenth of SHA-256's cost (which was 14,000
//! instructions a request where the CPU has no SHA extensions).
//! An entry dies with its token (`exp` plus leeway), with the config (the cache lives in it, so a
//! reload starts empty), and when its issuer's JWKS changes. Revocation is not cached: it is
//! checked on every request, hit or miss. Failed verifications are never cached.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use siphasher::sip128::{Hasher128, SipHasher24};

/// What a verified token yields, ready for the pipeline.
#[derive(Debug)]
pub struct CachedToken<T> {
    pub value: T,
    /// Unix seconds after which the entry is dead (the token's `exp` plus leeway).
    pub dies_at: u64,
    /// The issuer's JWKS generation at verification (0 for static keys).
    pub keys_generation: u64,
}

/// A token's key in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u128);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 as u64);
    }
}

/// The map's hasher: a key is already a keyed hash; its low 64 bits are used as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard<T> = RwLock<HashMap<Key, Arc<CachedToken<T>>, BuildHasherDefault<PassThrough>>>;

pub struct TokenCache<T> {
    shards: Vec<Shard<T>>,
    per_shard: usize,
    len: AtomicUsize,
    /// The hash's secret key, drawn when the cache is made.
    hasher: SipHasher24,
}

const SHARDS: usize = 16;

impl<T> std::fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T> TokenCache<T> {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).expect("the OS has randomness");
        TokenCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            len: AtomicUsize::new(0),
            hasher: SipHasher24::new_with_key(&secret),
        }
    }

    pub fn key(&self, token: &str) -> Key {
        let mut h = self.hasher;
        h.write(token.as_bytes());
        Key(h.finish128().as_u128())
    }

    fn shard(&self, key: &Key) -> &Shard<T> {
        // The high bits: the map's buckets use the low ones.
        &self.shards[(key.0 >> 120) as usize % SHARDS]
    }

    /// The live entry for `key` at `now`, if its keys are still those it was verified with.
    pub fn get(
        &self,
        key: &Key,
        now: u64,
        keys_generation: impl Fn(&T) -> u64,
    ) -> Option<Arc<CachedToken<T>>> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let hit = shard.get(key)?;
        (hit.dies_at > now && keys_generation(&hit.value) == hit.keys_generation)
            .then(|| hit.clone())
    }

    pub fn insert(&self, key: Key, entry: CachedToken<T>, now: u64) -> Arc<CachedToken<T>> {
        let entry = Arc::new(entry);
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard {
            // Full: drop the dead first; if that frees nothing, start the shard over.
            let before = shard.len();
            shard.retain(|_, e| e.dies_at > now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
        if shard.insert(key, entry.clone()).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        entry
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_die_with_their_token_and_their_keys() {
        let cache: TokenCache<&'static str> = TokenCache::new(64);
        let k = cache.key("a.b.c");
        let entry = |dies_at, gen| CachedToken {
            value: "alice",
            dies_at,
            keys_generation: gen,
        };
        cache.insert(k, entry(100, 0), 0);
        assert!(cache.get(&k, 99, |_| 0).is_some());
        assert!(cache.get(&k, 100, |_| 0).is_none(), "dead at exp + leeway");
        assert!(
            cache.get(&k, 50, |_| 1).is_none(),
            "the issuer's keys changed"
        );
        assert!(cache.get(&cache.key("a.b.d"), 50, |_| 0).is_none());
    }

    #[test]
    fn it_stays_bounded() {
        let cache: TokenCache<u32> = TokenCache::new(160);
        for i in 0..10_000u32 {
            let k = cache.key(&i.to_string());
            cache.insert(
                k,
                CachedToken {
                    value: i,
                    dies_at: u64::MAX,
                    keys_generation: 0,
                },
                0,
            );
        }
        assert!(cache.len() <= 160, "{}", cache.len());
    }
}
