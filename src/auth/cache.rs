//! A bounded cache of verified tokens: a token seen again skips the signature check and the
//! claim parsing (an RS256 check costs ~20 µs, ES256 ~50 µs).
//!
//! An entry keeps its token, and a hit is a token equal to it, compared in constant time: a
//! token passes as no other. The key only finds the entry, so it can be a fast seeded hash
//! (foldhash), not a PRF: SipHash-2-4 of every presented token cost ~1,900 instructions a
//! request; a collision costs a second verification, never a wrong identity. The tokens are
//! at most `MAX_CACHED_TOKEN_BYTES` each (the caller's bound), no more than the claims an entry
//! already holds decoded.
//! An entry dies with its token (`exp` plus leeway), with the config (the cache lives in it, so a
//! reload starts empty), and when its issuer's JWKS changes. Revocation is not cached: it is
//! checked on every request, hit or miss. Failed verifications are never cached.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// What a verified token yields, ready for the pipeline.
#[derive(Debug)]
pub struct CachedToken<T> {
    pub value: T,
    /// Unix seconds after which the entry is dead (the token's `exp` plus leeway).
    pub dies_at: u64,
    /// The issuer's JWKS generation at verification (0 for static keys).
    pub keys_generation: u64,
}

/// A token's key in the cache: its seeded hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
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

/// An entry: the token, and what verifying it yielded.
type Entry<T> = (Box<[u8]>, Arc<CachedToken<T>>);
type Shard<T> = RwLock<HashMap<Key, Entry<T>, BuildHasherDefault<PassThrough>>>;

pub struct TokenCache<T> {
    shards: Vec<Shard<T>>,
    per_shard: usize,
    len: AtomicUsize,
    /// Seeded at random when the cache is made.
    hasher: foldhash::quality::RandomState,
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
        TokenCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            len: AtomicUsize::new(0),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn key(&self, token: &str) -> Key {
        Key(self.hasher.hash_one(token.as_bytes()))
    }

    fn shard(&self, key: &Key) -> &Shard<T> {
        // The high bits: the map's buckets use the low ones.
        &self.shards[(key.0 >> 56) as usize % SHARDS]
    }

    /// The live entry for `token` at `now`, if its keys are still those it was verified with.
    pub fn get(
        &self,
        token: &str,
        now: u64,
        keys_generation: impl Fn(&T) -> u64,
    ) -> Option<Arc<CachedToken<T>>> {
        let key = self.key(token);
        let shard = self
            .shard(&key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let (kept, hit) = shard.get(&key)?;
        (same(kept, token.as_bytes())
            && hit.dies_at > now
            && keys_generation(&hit.value) == hit.keys_generation)
            .then(|| hit.clone())
    }

    pub fn insert(&self, token: &str, entry: CachedToken<T>, now: u64) -> Arc<CachedToken<T>> {
        self.insert_at(self.key(token), token, entry, now)
    }

    fn insert_at(
        &self,
        key: Key,
        token: &str,
        entry: CachedToken<T>,
        now: u64,
    ) -> Arc<CachedToken<T>> {
        let entry = Arc::new(entry);
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard {
            // Full: drop the dead first; if that frees nothing, start the shard over.
            let before = shard.len();
            shard.retain(|_, (_, e)| e.dies_at > now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
        // A token whose key collides with another's takes its place.
        let kept = (token.as_bytes().into(), entry.clone());
        if shard.insert(key, kept).is_none() {
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

/// Whether two tokens are equal, in time that depends on their length only: eight bytes at a
/// time, no early exit. (`subtle` compares byte by byte, ~8 instructions a byte.)
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in wa.remainder().iter().zip(wb.remainder()) {
        diff |= u64::from(x ^ y);
    }
    for (x, y) in wa.zip(wb) {
        diff |= word(x) ^ word(y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<T>(value: T, dies_at: u64, keys_generation: u64) -> CachedToken<T> {
        CachedToken {
            value,
            dies_at,
            keys_generation,
        }
    }

    #[test]
    fn entries_die_with_their_token_and_their_keys() {
        let cache: TokenCache<&'static str> = TokenCache::new(64);
        cache.insert("a.b.c", entry("alice", 100, 0), 0);
        assert!(cache.get("a.b.c", 99, |_| 0).is_some());
        assert!(
            cache.get("a.b.c", 100, |_| 0).is_none(),
            "dead at exp + leeway"
        );
        assert!(
            cache.get("a.b.c", 50, |_| 1).is_none(),
            "the issuer's keys changed"
        );
        assert!(cache.get("a.b.d", 50, |_| 0).is_none());
    }

    /// Two tokens whose keys collide: the one presented is not taken for the one kept.
    #[test]
    fn a_colliding_key_is_no_hit() {
        let cache: TokenCache<&'static str> = TokenCache::new(64);
        let mallory = "eyJ.mallory.sig";
        cache.insert_at(
            cache.key(mallory),
            "eyJ.alice.sig",
            entry("alice", 100, 0),
            0,
        );
        assert!(cache.get(mallory, 50, |_| 0).is_none());
        cache.insert(mallory, entry("mallory", 100, 0), 0);
        assert_eq!(cache.get(mallory, 50, |_| 0).unwrap().value, "mallory");
    }

    #[test]
    fn tokens_are_the_same_only_when_equal() {
        let token = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        assert!(same(token, token));
        for at in 0..token.len() {
            let mut other = token.to_vec();
            other[at] ^= 1;
            assert!(!same(token, &other), "differs at {at}");
        }
        assert!(!same(token, &token[..token.len() - 1]));
        assert!(same(b"", b""));
    }

    #[test]
    fn it_stays_bounded() {
        let cache: TokenCache<u32> = TokenCache::new(160);
        for i in 0..10_000u32 {
            cache.insert(&i.to_string(), entry(i, u64::MAX, 0), 0);
        }
        assert!(cache.len() <= 160, "{}", cache.len());
    }
}
