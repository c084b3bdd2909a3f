//! The in-process limiter: governor's GCRA over a map of 128-bit key digests.
//!
//! Governor decides; the map is ours so that the headers can be exact (they need the bucket's
//! theoretical arrival time, which governor's own stores keep private) and so that memory
//! stays bounded: each key costs a fixed 24 bytes whatever its length, `prune` drops every key
//! whose bucket is full again, and past [`MAX_KEYS`] it also drops the keys nearest to full.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use governor::clock::{Clock, QuantaClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::RateLimiter;

use super::{Decision, Limiter, Quota};

/// The most keys one policy keeps after pruning (about 24 MiB of buckets). A key forgotten
/// early starts again with a full bucket, so this is the least recently limited keys winning a
/// little allowance back, as nginx's `limit_req` does when its zone is full, rather than
/// memory growing with every address an attacker can make up (an IPv6 /64 holds 2^64).
pub(super) const MAX_KEYS: usize = 1 << 20;

/// Counts requests in this process.
pub(crate) struct LocalLimiter<C: Clock = QuantaClock> {
    gcra: RateLimiter<KeyDigest, Buckets, C, NoOpMiddleware<C::Instant>>,
    buckets: Buckets,
    /// Taken just before the limiter's own start, so `now - origin` is never less than the
    /// limiter's idea of it (they are equal under a fake clock).
    origin: C::Instant,
    quota: Quota,
    max_keys: usize,
    /// Two independent, per-process SipHash keys: a client cannot aim two keys at one digest.
    digest_keys: (RandomState, RandomState),
}

impl LocalLimiter<QuantaClock> {
    pub(crate) fn new(quota: Quota) -> Self {
        LocalLimiter::with_clock(quota, QuantaClock::default())
    }
}

impl<C: Clock> LocalLimiter<C> {
    /// A limiter reading time from `clock`; tests pass governor's `FakeRelativeClock`.
    pub(crate) fn with_clock(quota: Quota, clock: C) -> Self {
        LocalLimiter::with_clock_and_cap(quota, clock, MAX_KEYS)
    }

    /// As `with_clock`, keeping at most `max_keys` keys after each prune.
    pub(crate) fn with_clock_and_cap(quota: Quota, clock: C, max_keys: usize) -> Self {
        let gcra_quota = governor::Quota::with_period(quota.interval)
            .expect("a validated rate has a non-zero interval")
            .allow_burst(quota.burst);
        let buckets = Buckets::default();
        let origin = clock.now();
        LocalLimiter {
            gcra: RateLimiter::new(gcra_quota, buckets.clone(), clock),
            buckets,
            origin,
            quota,
            max_keys,
            digest_keys: (RandomState::new(), RandomState::new()),
        }
    }

    /// Counts one request under `key`.
    pub(crate) fn check_now(&self, key: &[u8]) -> Decision {
        let digest = self.digest(key);
        let allowed = self.gcra.check_key(&digest).is_ok();
        let tat = self.buckets.tat(digest);
        let until_full = tat.saturating_sub(self.elapsed());
        self.quota
            .decision(allowed, Duration::from_nanos(until_full))
    }

    fn digest(&self, key: &[u8]) -> KeyDigest {
        KeyDigest(
            self.digest_keys.0.hash_one(key),
            self.digest_keys.1.hash_one(key),
        )
    }

    /// Nanoseconds since the limiter started, on its clock.
    fn elapsed(&self) -> u64 {
        self.gcra.clock().now().duration_since(self.origin).as_u64()
    }

    fn prune_now(&self) {
        let now = self.elapsed();
        self.buckets
            .0
            .retain(|_, tat| tat.load(Ordering::Relaxed) > now);
        let excess = self.buckets.0.len().saturating_sub(self.max_keys);
        if excess > 0 {
            // Forget the `excess` buckets nearest to full: they have the least to lose.
            let mut tats: Vec<u64> = self
                .buckets
                .0
                .iter()
                .map(|e| e.value().load(Ordering::Relaxed))
                .collect();
            let cutoff = *tats.select_nth_unstable(excess - 1).1;
            self.buckets
                .0
                .retain(|_, tat| tat.load(Ordering::Relaxed) > cutoff);
        }
        // Give the memory back after a flood, not after every small change.
        let len = self.buckets.0.len();
        if self.buckets.0.capacity() > 4 * len + 1024 {
            self.buckets.0.shrink_to_fit();
        }
    }
}

impl<C: Clock> std::fmt::Debug for LocalLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.buckets.0.len())
            .finish()
    }
}

#[async_trait]
impl<C> Limiter for LocalLimiter<C>
where
    C: Clock + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    async fn check(&self, key: &[u8]) -> Decision {
        self.check_now(key)
    }

    fn check_at_once(&self, key: &[u8]) -> Option<Decision> {
        Some(self.check_now(key))
    }

    fn prune(&self) {
        self.prune_now()
    }

    fn tracked_keys(&self) -> usize {
        self.buckets.0.len()
    }
}

/// Two keyed SipHash values of a key: 128 bits in 16 bytes with 8-byte alignment, so a map
/// entry with its 8-byte state is 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyDigest(u64, u64);

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly random: either half is a good hash.
        state.write_u64(self.0);
    }
}

/// Key digest -> theoretical arrival time (nanoseconds since the limiter's start; 0: none).
#[derive(Clone, Default)]
struct Buckets(Arc<DashMap<KeyDigest, AtomicU64, BuildHasherDefault<Digested>>>);

impl Buckets {
    fn tat(&self, key: KeyDigest) -> u64 {
        self.0
            .get(&key)
            .map_or(0, |tat| tat.load(Ordering::Acquire))
    }
}

impl StateStore for Buckets {
    type Key = KeyDigest;

    fn measure_and_replace<T, F, E>(&self, key: &KeyDigest, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(tat) = self.0.get(key) {
            return measure_and_replace(&tat, f);
        }
        let tat = self.0.entry(*key).or_default();
        measure_and_replace(&tat, f)
    }
}

/// Governor's compare-and-swap loop: decide on the current state, store the new one only if
/// no other request changed it meanwhile.
fn measure_and_replace<T, F, E>(tat: &AtomicU64, f: F) -> Result<T, E>
where
    F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
{
    let mut prev = tat.load(Ordering::Acquire);
    loop {
        let (result, next) = f(NonZeroU64::new(prev).map(|n| Nanos::from(n.get())))?;
        match tat.compare_exchange_weak(prev, next.as_u64(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(result),
            Err(current) => prev = current,
        }
    }
}

/// The map's keys are already keyed SipHash digests: hashing them again would be wasted work.
#[derive(Default)]
struct Digested(u64);

impl Hasher for Digested {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `KeyDigest` is hashed here, through `write_u64`; stay correct for anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::units::parse_rate;

    fn limiter(rate: &str, burst: u32) -> (LocalLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let quota = Quota::new(parse_rate(rate).unwrap(), NonZeroU32::new(burst));
        (LocalLimiter::with_clock(quota, clock.clone()), clock)
    }

    #[test]
    fn trips_exactly_after_the_burst_and_refills_at_the_rate() {
        let (l, clock) = limiter("1/min", 3);
        let remaining: Vec<u32> = (0..3).map(|_| l.check_now(b"k").remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = l.check_now(b"k");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
        assert_eq!(refused.reset, Duration::from_secs(180));

        // Just short of one interval: still refused, with the exact wait left.
        clock.advance(Duration::from_secs(59));
        let d = l.check_now(b"k");
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(1));

        clock.advance(Duration::from_secs(1));
        let d = l.check_now(b"k");
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset), (0, Duration::from_secs(180)));
    }

    #[test]
    fn reset_counts_down_exactly() {
        let (l, clock) = limiter("1/min", 3);
        l.check_now(b"k");
        clock.advance(Duration::from_secs(30));
        let d = l.check_now(b"k");
        // One request 30 s ago and one now: 90 s until both allowances are back.
        assert_eq!((d.remaining, d.reset), (1, Duration::from_secs(90)));
    }

    #[test]
    fn distinct_keys_keep_distinct_budgets() {
        let (l, _clock) = limiter("1/h", 1);
        assert!(l.check_now(b"a").allowed);
        assert!(!l.check_now(b"a").allowed);
        assert!(l.check_now(b"b").allowed);
        assert_eq!(l.tracked_keys(), 2);
    }

    #[test]
    fn prune_forgets_only_full_buckets() {
        let (l, clock) = limiter("10/s", 10);
        for i in 0..10_000u32 {
            l.check_now(&i.to_le_bytes());
        }
        l.check_now(b"busy");
        clock.advance(Duration::from_millis(50));
        l.check_now(b"busy");
        assert_eq!(l.tracked_keys(), 10_001);

        // 100 ms on, the one-request keys are full again; `busy` (two requests) is not.
        clock.advance(Duration::from_millis(60));
        l.prune();
        assert_eq!(l.tracked_keys(), 1);
        assert_eq!(l.check_now(b"busy").remaining, 8);
    }

    #[test]
    fn past_the_cap_prune_forgets_the_buckets_nearest_to_full() {
        let clock = FakeRelativeClock::default();
        let quota = Quota::new(parse_rate("1/h").unwrap(), NonZeroU32::new(5));
        let l = LocalLimiter::with_clock_and_cap(quota, clock.clone(), 100);
        // A heavy caller first, then a flood of one-request keys.
        for _ in 0..5 {
            l.check_now(b"heavy");
        }
        for i in 0..1000u32 {
            clock.advance(Duration::from_millis(1));
            l.check_now(&i.to_le_bytes());
        }
        assert_eq!(l.tracked_keys(), 1001);
        l.prune();
        assert_eq!(l.tracked_keys(), 100);
        // The heavy caller's empty bucket is kept, and so are the newest of the flood.
        assert!(!l.check_now(b"heavy").allowed);
        assert_eq!(l.check_now(&999u32.to_le_bytes()).remaining, 3);
        assert_eq!(l.tracked_keys(), 100);
        // An early one was forgotten: it starts again with a full bucket.
        assert_eq!(l.check_now(&0u32.to_le_bytes()).remaining, 4);
    }
}

/// The stated property: over any window, GCRA lets through at most `burst + rate x t`.
#[cfg(test)]
mod properties {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;
    use proptest::prelude::*;

    use super::{LocalLimiter, Quota};

    proptest! {
        #[test]
        fn never_more_than_burst_plus_rate_times_t(
            interval_ms in 1u64..5_000,
            burst in 1u32..10,
            // (wait in ms, requests, prune first)
            steps in prop::collection::vec((0u64..3_000, 0usize..6, any::<bool>()), 1..60),
        ) {
            let clock = FakeRelativeClock::default();
            let quota = Quota {
                burst: NonZeroU32::new(burst).unwrap(),
                interval: Duration::from_millis(interval_ms),
            };
            let limiter = LocalLimiter::with_clock(quota, clock.clone());
            let mut now = 0u64;
            let mut allowed: Vec<u64> = Vec::new();
            for (wait, requests, prune) in steps {
                clock.advance(Duration::from_millis(wait));
                now += wait;
                if prune {
                    limiter.prune_now();
                }
                for _ in 0..requests {
                    if limiter.check_now(b"k").allowed {
                        allowed.push(now);
                    }
                }
            }
            // Every window from one allowed request to a later one, both ends counted.
            for i in 0..allowed.len() {
                for j in i..allowed.len() {
                    let budget = u64::from(burst) + (allowed[j] - allowed[i]) / interval_ms;
                    prop_assert!((j - i + 1) as u64 <= budget, "{} let through in {} ms", j - i + 1, allowed[j] - allowed[i]);
                }
            }
        }
    }
}
