//! Shared state (docs/CONFIG.md, `[store]`): revocations, refresh sessions, failed-login counters and
//! lockouts, and the single-use markers of MFA.
//!
//! [`Store`] is the seam between the gateway and where the state lives. The memory backend
//! serves one instance; a Redis backend implements the same trait for many. Revocations are
//! checked on every proxied request, so [`Store::is_revoked`] is synchronous: every backend
//! answers it from a view held in the process, never with a network round trip.

pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod revocations;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use self::redis::RedisSettings;
pub(crate) use self::redis::RedisStore;
use crate::ratelimit::SharedBuckets;
pub use memory::MemoryStore;

/// A revocation, with how long it must be remembered (Unix seconds): past `until`, every
/// token it could refuse has expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token, by `jti`.
    Jti { jti: String, until: u64 },
    /// Every token of a session (`sid`): one login, across its refreshes.
    Session { sid: String, until: u64 },
    /// Every token of a subject issued at or before the second `at` (a new password, a
    /// logout of every session): the keys the user made stay.
    Subject {
        subject: String,
        at: u64,
        until: u64,
    },
    /// Every credential of a subject made at or before `at`, the keys its user made included
    /// (a user disabled or deleted, an operator's revocation of the subject).
    Owner {
        subject: String,
        at: u64,
        until: u64,
    },
    /// An API key, by id: for ever (`None`: a configured key, until restart or until it
    /// leaves the config), or `until` (a key a user made and deleted: every instance has
    /// dropped it by then).
    ApiKey { id: String, until: Option<u64> },
}

impl Revocation {
    /// The audit log's name for it.
    pub fn kind(&self) -> &'static str {
        match self {
            Revocation::Jti { .. } => "jti",
            Revocation::Session { .. } => "session",
            Revocation::Subject { .. } => "subject",
            Revocation::Owner { .. } => "owner",
            Revocation::ApiKey { .. } => "api_key",
        }
    }
}

/// What pipeline step 8 asks about a credential that verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    pub jti: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub subject: &'a str,
    /// `iat` (for a key a user made: when it was made); without one, a credential counts as
    /// issued at the epoch (any revoke-all covers it).
    pub iat: Option<u64>,
    pub api_key: Option<&'a str>,
    /// A key a user made: a revoke-all of the subject's tokens spares it, its owner's
    /// revocation does not.
    pub user_key: bool,
}

/// What a session is, for its owner's list (docs/CONFIG.md, "Users in a database"): kept beside the refresh state,
/// for as long.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub sid: String,
    pub subject: String,
    pub created_at: u64,
    /// The last login or refresh.
    pub last_used_at: u64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What became of a refresh token presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was the session's current one; `next` is now.
    Rotated,
    /// It was spent within the reuse grace, and this is the jti it was rotated to (two tabs
    /// refreshing at once, a retried request): the same successor is handed out again.
    Successor(String),
    /// It was spent already: the session must die.
    Reused,
    /// No such session (ended, expired, or never known to this store).
    Unknown,
}

/// What [`Store::begin_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Evaluate it.
    Allowed,
    /// Refuse it unevaluated, until this Unix second.
    Locked(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached; the text is for the log, never for a response.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Where shared state lives. Times are Unix seconds of the store's clock.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Pipeline step 8: whether a verified credential is revoked at `now`. Answered locally.
    fn is_revoked(&self, presented: &Presented<'_>, now: u64) -> bool;

    /// Whether the revocations this instance knows were confirmed current within
    /// `max_staleness` seconds. Always, for a store in this process alone.
    fn is_fresh(&self, _max_staleness: u64) -> bool {
        true
    }

    /// The shared buckets of `scope = "global"` rate limits, if this backend has them.
    fn shared_buckets(self: Arc<Self>) -> Option<Arc<dyn SharedBuckets>> {
        None
    }

    async fn revoke(&self, revocation: Revocation) -> Result<(), StoreError>;

    /// A new session whose current refresh token is `refresh_jti`, described by `info`.
    async fn start_session(
        &self,
        refresh_jti: &str,
        until: u64,
        info: &SessionInfo,
    ) -> Result<(), StoreError>;

    /// Atomically: if `presented` is the session's current refresh token, `next` replaces
    /// it (and the session was used `now`). Of two callers racing with the same token,
    /// exactly one gets `Rotated`; with a `grace` (seconds), the others, and anyone who
    /// presents it again within `grace` of its rotation, get `Successor` with the jti it was
    /// rotated to, unless that has been rotated in turn.
    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &str,
        next: &str,
        until: u64,
        now: u64,
        grace: u64,
    ) -> Result<Rotation, StoreError>;

    /// The sessions of `subject` that can still refresh at `now` (not ended, not expired;
    /// revocations are the caller's to check).
    async fn sessions(&self, subject: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError>;

    /// Forgets a session, so its refresh token no longer rotates.
    async fn end_session(&self, sid: &str) -> Result<(), StoreError>;

    /// Counts an attempt for `username` before it is evaluated, atomically: of any number of
    /// attempts arriving at once, at most `max` within `lockout` seconds of each other are
    /// [`Attempt::Allowed`]; the others, and every attempt while the username is locked, are
    /// [`Attempt::Locked`]. An allowed attempt stays counted as a failure unless it is given
    /// back ([`Store::return_attempt`]) or the count is cleared ([`Store::clear_failures`]).
    async fn begin_attempt(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Attempt, StoreError>;

    /// An allowed attempt failed: once `max` are counted, the username is locked for
    /// `lockout` seconds and the lock's end is returned.
    async fn attempt_failed(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Option<u64>, StoreError>;

    /// An allowed attempt that was not a failure (a second factor is asked for, or it could
    /// not be evaluated): it no longer counts.
    async fn return_attempt(&self, username: &str) -> Result<(), StoreError>;

    /// A success, or an operator's unlock: the count and any lock are cleared.
    async fn clear_failures(&self, username: &str) -> Result<(), StoreError>;

    /// Marks `marker` (a TOTP code's step, a backup code) used until `until`. `true` for the
    /// first caller only.
    async fn spend(&self, marker: &str, until: u64) -> Result<bool, StoreError>;

    /// A pending MFA login: the token's digest, for `username`, until `until`.
    async fn put_mfa(&self, id: &str, username: &str, until: u64) -> Result<(), StoreError>;

    /// Counts a code attempt against a live MFA token before the code is checked, atomically:
    /// the token's username for at most `max` attempts; `None` for an unknown, expired or
    /// dead token (past `max`, it dies).
    async fn mfa_attempt(&self, id: &str, max: u32) -> Result<Option<String>, StoreError>;

    /// The attempt's code was wrong: at `max` wrong codes the token dies.
    async fn mfa_attempt_failed(&self, id: &str, max: u32) -> Result<(), StoreError>;

    /// Consumes an MFA token after a right code: `true` for exactly one caller.
    async fn take_mfa(&self, id: &str) -> Result<bool, StoreError>;

    /// Keeps `value` under `key` until `until`, for one [`Store::take`] (a sign-in started at
    /// an OpenID Provider, finished on any instance).
    async fn keep(&self, key: &str, value: &str, until: u64) -> Result<(), StoreError>;

    /// The value kept under `key`, removed: for exactly one caller, before `until`.
    async fn take(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Adds `member` to the set `set`, which lives at least until `until` (the sessions
    /// opened from one provider session, for its back-channel logout).
    async fn link(&self, set: &str, member: &str, until: u64) -> Result<(), StoreError>;

    /// The members of `set` (none once it expired).
    async fn linked(&self, set: &str) -> Result<Vec<String>, StoreError>;

    /// Drops whatever has expired. Called in the background every few seconds.
    fn prune(&self);
}
