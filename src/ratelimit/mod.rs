//! Rate limiting (docs/CONFIG.md, `[rate_limits]`): named policies, the key a request is counted under,
//! and the decision with its `RateLimit-*` headers.
//!
//! A policy counts requests in a [`Limiter`]: [`LocalLimiter`] (governor's GCRA in this
//! process) or [`GlobalLimiter`] (`scope = "global"`: GCRA in the shared store, with a local
//! stand-in while the store is unreachable).

mod global;
mod key;
mod local;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderValue;

use crate::error::GatewayError;
use crate::headers::{number, Wired};
use crate::units::Rate;
pub(crate) use global::GlobalLimiter;
pub(crate) use global::{SharedBuckets, Unreachable};
pub(crate) use key::Caller;
pub use key::{KeyInput, KeyPart};
pub(crate) use local::LocalLimiter;

/// A token bucket: `burst` requests at once, one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: NonZeroU32,
    pub interval: Duration,
}

impl Quota {
    /// `rate`, with a bucket of `burst` (default: the N of the rate).
    pub fn new(rate: Rate, burst: Option<NonZeroU32>) -> Self {
        Quota {
            burst: burst.unwrap_or(NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN)),
            interval: rate.interval(),
        }
    }

    /// How long an empty bucket takes to fill: the `w` of `RateLimit-Policy`.
    pub fn window(&self) -> Duration {
        self.interval * self.burst.get()
    }

    /// The decision for a bucket that is full again `until_full` from now.
    fn decision(&self, allowed: bool, until_full: Duration) -> Decision {
        let window = self.window();
        let (remaining, retry_after) = if allowed {
            let free = window.saturating_sub(until_full).as_nanos() / self.interval.as_nanos();
            (free.min(self.burst.get().into()) as u32, Duration::ZERO)
        } else {
            // The next request conforms once one interval's worth of the bucket is free.
            (0, until_full.saturating_sub(window - self.interval))
        };
        Decision {
            allowed,
            limit: self.burst.get(),
            remaining,
            reset: until_full,
            retry_after,
            window,
        }
    }
}

/// One policy's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket size.
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until a refused caller may try again; zero when allowed.
    pub retry_after: Duration,
    /// How long the whole bucket takes to refill.
    pub window: Duration,
}

// With their spelling on the wire (see `headers::Wired`): set on every limited response.
pub(crate) const RATELIMIT_LIMIT: Wired = Wired::fixed("ratelimit-limit", "RateLimit-Limit");
pub(crate) const RATELIMIT_REMAINING: Wired =
    Wired::fixed("ratelimit-remaining", "RateLimit-Remaining");
pub(crate) const RATELIMIT_RESET: Wired = Wired::fixed("ratelimit-reset", "RateLimit-Reset");
pub(crate) const RATELIMIT_POLICY: Wired = Wired::fixed("ratelimit-policy", "RateLimit-Policy");
const RETRY_AFTER: Wired = Wired::fixed("retry-after", "Retry-After");

/// Whether `name` is one of the headers a rate-limited answer carries (`[response] headers`
/// may not name one: the gateway's own are added beside the upstream's, not looked up).
pub(crate) fn is_rate_limit_header(name: &http::HeaderName) -> bool {
    [
        &RATELIMIT_LIMIT,
        &RATELIMIT_REMAINING,
        &RATELIMIT_RESET,
        &RATELIMIT_POLICY,
        &RETRY_AFTER,
    ]
    .iter()
    .any(|ours| ours.name == name)
}

/// What a policy's headers say whatever the request, made once with the policy: its name,
/// `RateLimit-Limit` and `RateLimit-Policy`.
#[derive(Debug)]
pub(crate) struct Shown {
    name: Arc<str>,
    limit: HeaderValue,
    policy: HeaderValue,
}

impl Shown {
    fn new(name: Arc<str>, limit: u32, window: Duration) -> Self {
        let mut policy = itoa::Buffer::new().format(limit).to_string();
        policy.push_str(";w=");
        policy.push_str(itoa::Buffer::new().format(whole_seconds(window)));
        Shown {
            name,
            limit: HeaderValue::from(limit),
            policy: HeaderValue::try_from(policy).expect("digits and ;w= are a header value"),
        }
    }
}

impl Decision {
    /// The `RateLimit-*` headers, and `Retry-After` on a refusal. Seconds round up, at least 1.
    /// This runs on every limited response: what does not change is `shown`'s, made once.
    /// Each header goes to `put` as it is made: no list is built on the way.
    fn headers(&self, shown: &Shown, mut put: impl FnMut(Wired, HeaderValue)) {
        put(RATELIMIT_LIMIT, shown.limit.clone());
        put(RATELIMIT_REMAINING, number(self.remaining.into()));
        put(RATELIMIT_RESET, number(whole_seconds(self.reset)));
        put(RATELIMIT_POLICY, shown.policy.clone());
        if !self.allowed {
            put(RETRY_AFTER, number(whole_seconds(self.retry_after)));
        }
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

/// Where requests are counted. Implemented by the local limiter; a shared backend (Redis)
/// implements it too, which is why `check` is async.
#[async_trait]
pub trait Limiter: Send + Sync + fmt::Debug {
    /// Counts one request under `key` and says whether it may pass.
    async fn check(&self, key: &[u8]) -> Decision;
    /// The decision, when it needs no waiting (a local bucket): `check` without the boxed
    /// future `async_trait` makes of every call.
    fn check_at_once(&self, _key: &[u8]) -> Option<Decision> {
        None
    }
    /// Forgets keys whose bucket is full again: they are indistinguishable from new ones.
    fn prune(&self);
    /// How many keys are held, for tests and diagnostics.
    fn tracked_keys(&self) -> usize;
}

/// When in the pipeline a policy is checked (pipeline steps 6 and 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Keyed only by ip, route or header: checked before any credential work.
    BeforeCredentials,
    /// Keyed by subject, api_key or a claim: checked after authorisation.
    AfterAuthorization,
}

/// A policy's place in the config's list, and in the runtime's table of live policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(pub usize);

/// A named policy as the config describes it: what a request is keyed by, the bucket, and
/// where it is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub name: Arc<str>,
    pub key: Vec<KeyPart>,
    pub quota: Quota,
    /// `scope = "global"`: counted in the shared store.
    pub global: bool,
    pub stage: Stage,
}

impl PolicySpec {
    pub fn new(name: impl Into<Arc<str>>, key: Vec<KeyPart>, quota: Quota, global: bool) -> Self {
        let stage = if key.iter().all(KeyPart::known_before_credentials) {
            Stage::BeforeCredentials
        } else {
            Stage::AfterAuthorization
        };
        PolicySpec {
            name: name.into(),
            key,
            quota,
            global,
            stage,
        }
    }
}

/// A policy counting in its limiter.
#[derive(Debug)]
pub struct Policy {
    pub spec: PolicySpec,
    limiter: Arc<dyn Limiter>,
    shown: Arc<Shown>,
}

impl Policy {
    /// `spec` counted in `limiter`; `kept`: a running policy whose buckets carry on when its
    /// spec is the same (a reload resets no budget).
    pub fn new(
        spec: PolicySpec,
        kept: Option<&Policy>,
        shared: Option<&Arc<dyn SharedBuckets>>,
    ) -> Self {
        let limiter = match kept {
            Some(k) if k.spec == spec => k.limiter.clone(),
            _ if spec.global => Arc::new(GlobalLimiter::new(
                spec.name.clone(),
                spec.quota,
                shared.cloned(),
            )) as Arc<dyn Limiter>,
            _ => Arc::new(LocalLimiter::new(spec.quota)),
        };
        let quota = spec.quota;
        let shown = Shown::new(spec.name.clone(), quota.burst.get(), quota.window());
        Policy {
            spec,
            limiter,
            shown: Arc::new(shown),
        }
    }

    pub async fn check(&self, input: &KeyInput<'_>) -> Decision {
        let mut key = Vec::with_capacity(64);
        key::write(&self.spec.key, input, &mut key);
        match self.limiter.check_at_once(&key) {
            Some(decision) => decision,
            None => self.limiter.check(&key).await,
        }
    }

    pub fn limiter(&self) -> &dyn Limiter {
        self.limiter.as_ref()
    }
}

/// The policies a request has passed so far, reduced to the one its headers describe: the
/// fewest remaining (ties: the first listed), or the policy that refused it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    shown: Option<(usize, Arc<Shown>, Decision)>,
}

impl Tally {
    /// Checks each `(position in the route's list, policy)` in turn; the first refusal ends it.
    pub(crate) async fn check<'p>(
        &mut self,
        policies: impl IntoIterator<Item = (usize, &'p Policy)>,
        input: &KeyInput<'_>,
    ) -> Result<(), GatewayError> {
        for (position, policy) in policies {
            let decision = policy.check(input).await;
            if !decision.allowed {
                self.shown = Some((position, policy.shown.clone(), decision));
                return Err(GatewayError::RateLimited);
            }
            let fewer = match &self.shown {
                None => true,
                Some((p, _, shown)) => (decision.remaining, position) < (shown.remaining, *p),
            };
            if fewer {
                self.shown = Some((position, policy.shown.clone(), decision));
            }
        }
        Ok(())
    }

    /// The name of the policy the headers describe (the refusing one after a 429).
    pub(crate) fn policy(&self) -> Option<&str> {
        self.shown.as_ref().map(|(_, shown, _)| &*shown.name)
    }

    /// The `RateLimit-*` headers (and `Retry-After`), each given to `put`.
    pub(crate) fn headers(&self, put: impl FnMut(Wired, HeaderValue)) {
        if let Some((_, shown, d)) = &self.shown {
            d.headers(shown, put);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn quota(count: u32, per_secs: u64, burst: u32) -> Quota {
        Quota::new(
            Rate {
                count,
                per: Duration::from_secs(per_secs),
            },
            NonZeroU32::new(burst),
        )
    }

    #[test]
    fn header_values_follow_the_spec() {
        // 1/min, burst 3, first request: two left, full again in one interval.
        let q = quota(1, 60, 3);
        let d = q.decision(true, Duration::from_secs(60));
        let mut h = Vec::new();
        d.headers(&Shown::new("p".into(), d.limit, d.window), |k, v| {
            h.push((k, v))
        });
        let get = |n: &HeaderName| {
            h.iter()
                .find(|(k, _)| k.name == n)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(get(&RATELIMIT_LIMIT), Some("3"));
        assert_eq!(get(&RATELIMIT_REMAINING), Some("2"));
        assert_eq!(get(&RATELIMIT_RESET), Some("60"));
        assert_eq!(get(&RATELIMIT_POLICY), Some("3;w=180"));
        assert_eq!(get(&http::header::RETRY_AFTER), None);

        // Refused with the bucket empty: the next request conforms in one interval.
        let d = q.decision(false, Duration::from_secs(180));
        assert_eq!((d.remaining, d.retry_after), (0, Duration::from_secs(60)));
        let mut h = Vec::new();
        d.headers(&Shown::new("p".into(), d.limit, d.window), |k, v| {
            h.push((k, v))
        });
        let get = |n: &HeaderName| {
            h.iter()
                .find(|(k, _)| k.name == n)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(get(&http::header::RETRY_AFTER), Some("60"));
        assert_eq!(get(&RATELIMIT_RESET), Some("180"));
    }

    #[test]
    fn seconds_round_up_and_are_at_least_one() {
        assert_eq!(whole_seconds(Duration::from_millis(10)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        // 100/s, burst 200: the policy window is two seconds.
        assert_eq!(quota(100, 1, 200).window(), Duration::from_secs(2));
    }

    #[test]
    fn wire_names_are_the_same_headers() {
        for wire in [
            RATELIMIT_LIMIT,
            RATELIMIT_REMAINING,
            RATELIMIT_RESET,
            RATELIMIT_POLICY,
            RETRY_AFTER,
        ] {
            assert_eq!(
                HeaderName::from_bytes(wire.case.as_slice()).unwrap(),
                wire.name
            );
        }
        assert_eq!(RETRY_AFTER.name, http::header::RETRY_AFTER);
    }

    #[test]
    fn burst_defaults_to_the_rate_count() {
        assert_eq!(quota(20, 1, 0).burst.get(), 20);
    }
}
