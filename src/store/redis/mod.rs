//! The Redis backend: one gateway state shared by many instances.
//!
//! Every write is one atomic command or Lua script, with a TTL, under `key_prefix`.
//! Revocations are also kept in a local view (pipeline step 8 never waits on Redis): each is
//! written to two sorted sets (by expiry, and by a version counter) and published. Instances
//! apply what is published at once, and every 250 ms compare the version counter with what
//! they applied, fetching what they missed: a dropped message or a reconnect costs at most
//! one poll. A Redis that comes back empty (its `epoch` key gone or changed) is refilled from
//! the instances' views.

mod conn;
mod keys;
mod scripts;
mod store;
mod sync;
mod values;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::revocations::RevocationView;
use super::{Revocation, StoreError};
use crate::clock::Clock;
use conn::Conn;
use keys::Keys;
use scripts::Scripts;

/// How often each instance checks that it has every revocation.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(250);
/// A command slower than this counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, the hot path (global rate limits) and the login endpoints skip Redis for
/// this long rather than each waiting for a timeout; the poll keeps probing.
const BACKOFF: Duration = Duration::from_secs(1);
/// The epoch key lives this long, renewed while any instance runs.
const EPOCH_TTL: u64 = 86400;
/// Revocations kept while Redis is away, at most: past it the oldest are written off (each is
/// still in force on this instance).
const MAX_PENDING: usize = 1_000_000;

/// API-key revocations have no token expiry to follow: the revocation keys live at least this
/// long after the last instance holding one stopped renewing them.
const API_KEY_REVOCATION: u64 = 400 * 86400;

/// `[store]` with `backend = "redis"`, validated.
#[derive(Clone)]
pub(crate) struct RedisSettings {
    /// One URL: a single node. Several: a Redis Cluster, through its seed nodes.
    pub urls: Vec<String>,
    pub key_prefix: String,
    /// PEM CA certificates that `rediss://` servers are verified with (else the system's).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry a password.
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisSettings")
            .field("urls", &urls)
            .field("key_prefix", &self.key_prefix)
            .field("ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// `redis://user:secret@host/0` -> `redis://***@host/0`.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

pub(crate) struct RedisStore {
    settings: RedisSettings,
    clock: Clock,
    keys: Keys,
    scripts: Scripts,
    conn: ArcSwapOption<Conn>,
    view: RevocationView,
    /// Every revocation up to this version is in `view`.
    applied: AtomicU64,
    /// The epoch of the Redis this view was synced with.
    epoch: std::sync::Mutex<Option<String>>,
    /// The clock's second of the last poll that reached Redis (0: never).
    fresh_at: AtomicU64,
    /// Milliseconds since `origin` until which Redis counts as down.
    down_until: AtomicU64,
    origin: Instant,
    /// The current outage has been logged.
    outage: AtomicBool,
    /// Revocations decided while Redis could not be written: in force here at once, written
    /// (and so published to every instance) as soon as Redis answers again.
    pending: std::sync::Mutex<std::collections::VecDeque<Revocation>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("settings", &self.settings)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// A revocation as a sorted-set member: kind, until, at, id (last: it may hold any byte).
fn encode(r: &Revocation) -> (String, u64) {
    match r {
        Revocation::Jti { jti, until } => (format!("j\t{until}\t0\t{jti}"), *until),
        Revocation::Session { sid, until } => (format!("s\t{until}\t0\t{sid}"), *until),
        Revocation::Subject { subject, at, until } => {
            (format!("u\t{until}\t{at}\t{subject}"), *until)
        }
        Revocation::Owner { subject, at, until } => {
            (format!("o\t{until}\t{at}\t{subject}"), *until)
        }
        // `until` 0: for ever (as written before keys a user made could expire).
        Revocation::ApiKey { id, until } => (
            format!("k\t{}\t0\t{id}", until.unwrap_or(0)),
            until.unwrap_or(u64::MAX),
        ),
    }
}

fn decode(member: &str) -> Option<Revocation> {
    let mut parts = member.splitn(4, '\t');
    let (kind, until, at, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let until: u64 = until.parse().ok()?;
    let id = id.to_string();
    Some(match kind {
        "j" => Revocation::Jti { jti: id, until },
        "s" => Revocation::Session { sid: id, until },
        "u" => Revocation::Subject {
            subject: id,
            at: at.parse().ok()?,
            until,
        },
        "o" => Revocation::Owner {
            subject: id,
            at: at.parse().ok()?,
            until,
        },
        "k" => Revocation::ApiKey {
            id,
            until: (until != 0).then_some(until),
        },
        _ => return None,
    })
}

impl RedisStore {
    pub(crate) fn new(settings: RedisSettings, clock: Clock) -> Self {
        RedisStore {
            keys: Keys::new(&settings.key_prefix),
            settings,
            clock,
            scripts: Scripts::new(),
            conn: ArcSwapOption::empty(),
            view: RevocationView::default(),
            applied: AtomicU64::new(0),
            epoch: std::sync::Mutex::new(None),
            fresh_at: AtomicU64::new(0),
            down_until: AtomicU64::new(0),
            origin: Instant::now(),
            outage: AtomicBool::new(false),
            pending: std::sync::Mutex::default(),
        }
    }

    /// Whether the last poll reached Redis within `max_staleness` seconds.
    pub(crate) fn fresh_within(&self, max_staleness: u64) -> bool {
        let at = self.fresh_at.load(Ordering::Acquire);
        at != 0 && self.clock.now().saturating_sub(at) <= max_staleness
    }

    fn elapsed_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn is_down(&self) -> bool {
        self.elapsed_ms() < self.down_until.load(Ordering::Acquire)
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        self.down_until.store(
            self.elapsed_ms() + BACKOFF.as_millis() as u64,
            Ordering::Release,
        );
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %e, during = what, "redis unreachable: shared state degraded until it is back");
        }
        StoreError::Unavailable(format!("{what}: {e}"))
    }

    fn recovered(&self) {
        self.down_until.store(0, Ordering::Release);
        if self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!("redis reachable again");
        }
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        if self.is_down() {
            return Err(StoreError::Unavailable("redis is down".into()));
        }
        match self.conn.load_full() {
            Some(c) => Ok((*c).clone()),
            None => Err(StoreError::Unavailable("not connected to redis yet".into())),
        }
    }

    /// Runs one command or script invocation with the timeout, recording failures.
    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(what, e)),
            Err(_) => Err(self.failed(what, "timed out")),
        }
    }

    /// Seconds from now to `until`, at least one.
    fn ttl(&self, until: u64) -> u64 {
        until.saturating_sub(self.clock.now()).max(1)
    }

    /// How a revocation is kept in Redis: its score in `by_until` (the pruner drops members
    /// whose score has passed) and the TTL the revocation keys are given at least. An API key's
    /// never passes; its keys' TTL is renewed while any instance holds one.
    fn expiry(&self, r: &Revocation) -> (String, u64) {
        match r {
            Revocation::ApiKey { until: None, .. } => ("+inf".to_string(), API_KEY_REVOCATION),
            _ => {
                let (_, until) = encode(r);
                (until.to_string(), self.ttl(until))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip() {
        for r in [
            Revocation::Jti {
                jti: "a\tb".into(),
                until: 10,
            },
            Revocation::Session {
                sid: "s".into(),
                until: 11,
            },
            Revocation::Subject {
                subject: "alice".into(),
                at: 5,
                until: 12,
            },
            Revocation::Owner {
                subject: "bob".into(),
                at: 6,
                until: 13,
            },
            Revocation::ApiKey {
                id: "k".into(),
                until: None,
            },
            Revocation::ApiKey {
                id: "k2".into(),
                until: Some(14),
            },
        ] {
            assert_eq!(decode(&encode(&r).0), Some(r));
        }
        assert_eq!(decode("x\t1\t2\t3"), None);
        assert_eq!(decode("j\tnot-a-number\t0\tid"), None);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:secret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://127.0.0.1/0"), "redis://127.0.0.1/0");
    }
}
