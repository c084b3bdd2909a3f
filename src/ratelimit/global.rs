//! `scope = "global"`: one budget for every instance, decided by the shared store in one
//! round trip (GCRA in a Lua script), with this instance's own limiter standing in while the
//! store cannot be reached.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Decision, Limiter, LocalLimiter, Quota};

/// The shared buckets could not answer (the store is unreachable or timed out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// Buckets kept where every instance sees them. The Redis store implements it.
#[async_trait]
pub trait SharedBuckets: Send + Sync + std::fmt::Debug {
    /// Counts one request in the bucket `key` (the policy's name and the rendered key):
    /// whether it may pass, and how long until the bucket is full again.
    async fn gcra(&self, key: &[u8], quota: &Quota) -> Result<(bool, Duration), Unreachable>;

    /// Known to be unreachable right now: do not wait for it.
    fn is_down(&self) -> bool;
}

#[derive(Debug)]
pub(crate) struct GlobalLimiter {
    policy: Arc<str>,
    quota: Quota,
    /// `None`: the store has no shared buckets (this instance's own limit applies).
    shared: Option<Arc<dyn SharedBuckets>>,
    /// Stands in while the store is unreachable.
    fallback: LocalLimiter,
    /// The current outage has been logged.
    outage: AtomicBool,
}

impl GlobalLimiter {
    pub(crate) fn new(
        policy: impl Into<Arc<str>>,
        quota: Quota,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Self {
        GlobalLimiter {
            policy: policy.into(),
            quota,
            shared,
            fallback: LocalLimiter::new(quota),
            outage: AtomicBool::new(false),
        }
    }

    fn fall_back(&self, key: &[u8], why: &str) -> Decision {
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                policy = &*self.policy,
                why,
                "global rate limit unreachable: this instance's own limit applies until it is back"
            );
        }
        self.fallback.check_now(key)
    }
}

#[async_trait]
impl Limiter for GlobalLimiter {
    async fn check(&self, key: &[u8]) -> Decision {
        let Some(shared) = &self.shared else {
            return self.fall_back(key, "no shared store");
        };
        if shared.is_down() {
            return self.fall_back(key, "store down");
        }
        let mut bucket = Vec::with_capacity(self.policy.len() + 1 + key.len());
        bucket.extend_from_slice(self.policy.as_bytes());
        bucket.push(0);
        bucket.extend_from_slice(key);
        match shared.gcra(&bucket, &self.quota).await {
            Ok((allowed, until_full)) => {
                if self.outage.swap(false, Ordering::AcqRel) {
                    tracing::info!(policy = &*self.policy, "global rate limit back");
                }
                self.quota.decision(allowed, until_full)
            }
            Err(_) => self.fall_back(key, "store error"),
        }
    }

    fn prune(&self) {
        self.fallback.prune()
    }

    fn tracked_keys(&self) -> usize {
        self.fallback.tracked_keys()
    }
}
