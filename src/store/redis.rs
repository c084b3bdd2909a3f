//! The Redis backend: one gateway state shared by many instances.
//!
//! Every write is one atomic command or Lua script, with a TTL, under `key_prefix`.
//! Revocations are also kept in a local view (SPEC step 8 never waits on Redis): each is
//! written to two sorted sets (by expiry, and by a version counter) and published. Instances
//! apply what is published at once, and every 250 ms compare the version counter with what
//! they applied, fetching what they missed: a dropped message or a reconnect costs at most
//! one poll. A Redis that comes back empty (its `epoch` key gone or changed) is refilled from
//! the instances' views.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use sha2::{Digest, Sha256};

use super::revocations::RevocationView;
use super::{Attempt, Presented, Revocation, Rotation, Store, StoreError};
use crate::clock::Clock;
use crate::ratelimit::{Quota, SharedBuckets};

/// How often each instance checks that it has every revocation.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// A command slower than this counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, the hot path (global rate limits) and the login endpoints skip Redis for
/// this long rather than each waiting for a timeout; the poll keeps probing.
const BACKOFF: Duration = Duration::from_secs(1);
/// The epoch key lives this long, renewed while any instance runs.
const EPOCH_TTL: u64 = 86400;
/// API-key revocations have no token expiry to follow: the revocation keys live at least this
/// long after the last instance holding one stopped renewing them.
const API_KEY_REVOCATION: u64 = 400 * 86400;

/// `[store]` with `backend = "redis"`, validated.
#[derive(Clone)]
pub struct RedisSettings {
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
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

/// A connection to one node or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Key names, all under the prefix. The revocation keys share a hash tag, so that the script
/// touching all three lands on one cluster slot.
#[derive(Debug)]
struct Keys {
    prefix: String,
    /// A random id written once: when it changes, Redis has lost what it held.
    epoch: String,
    version: String,
    by_until: String,
    by_version: String,
    channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            epoch: format!("{prefix}{{rev}}:epoch"),
            version: format!("{prefix}{{rev}}:version"),
            by_until: format!("{prefix}{{rev}}:by_until"),
            by_version: format!("{prefix}{{rev}}:by_version"),
            channel: format!("{prefix}revocations"),
        }
    }

    fn session(&self, sid: &str) -> String {
        format!("{}sess:{sid}", self.prefix)
    }

    /// Failures and lock of one username: one hash tag, hex so that no byte of the name can
    /// break it.
    fn login(&self, username: &str) -> (String, String) {
        let tag = hex::encode(username.as_bytes());
        (
            format!("{}login:{{{tag}}}:failures", self.prefix),
            format!("{}login:{{{tag}}}:lock", self.prefix),
        )
    }

    fn spent(&self, marker: &str) -> String {
        format!("{}spent:{marker}", self.prefix)
    }

    fn mfa(&self, id: &str) -> String {
        format!("{}mfa:{id}", self.prefix)
    }

    fn bucket(&self, policy_key: &str) -> String {
        format!("{}rl:{policy_key}", self.prefix)
    }
}

struct Scripts {
    revoke: Script,
    prune: Script,
    rotate: Script,
    attempt: Script,
    attempt_failed: Script,
    attempt_returned: Script,
    mfa_attempt: Script,
    mfa_failed: Script,
    mfa_take: Script,
    gcra: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            // KEYS: version, by_until, by_version. ARGV: member, until, channel, ttl.
            revoke: Script::new(
                r#"
local v = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], v, ARGV[1])
local ttl = tonumber(ARGV[4])
for i = 1, 3 do
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
redis.call('PUBLISH', ARGV[3], v .. '\t' .. ARGV[1])
return v
"#,
            ),
            // KEYS: by_until, by_version. ARGV: now.
            prune: Script::new(
                r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone
"#,
            ),
            // KEYS: session. ARGV: presented, next, ttl. 0 unknown, 1 reused, 2 rotated.
            rotate: Script::new(
                r#"
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 2
"#,
            ),
            // Counts an attempt before it is evaluated. KEYS: failures, lock. ARGV: max,
            // lockout, now. {1, 0} allowed; {0, until} refused, locked (or `max` counted).
            attempt: Script::new(
                r#"
local lock = tonumber(redis.call('GET', KEYS[2]) or '0')
if lock > tonumber(ARGV[3]) then return {0, lock} end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return {0, tonumber(ARGV[3]) + math.max(redis.call('TTL', KEYS[1]), 1)}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, 0}
"#,
            ),
            // KEYS: failures, lock. ARGV: max, lockout, now. The lock's end, or 0.
            attempt_failed: Script::new(
                r#"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  local ends = tonumber(ARGV[3]) + tonumber(ARGV[2])
  redis.call('SET', KEYS[2], string.format('%.0f', ends), 'EX', ARGV[2])
  return ends
end
return 0
"#,
            ),
            // KEYS: failures.
            attempt_returned: Script::new(
                r#"
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
"#,
            ),
            // Counts a code attempt. KEYS: mfa. ARGV: max, now. The username, or false.
            mfa_attempt: Script::new(
                r#"
local m = redis.call('HMGET', KEYS[1], 'u', 't', 'w')
if not m[1] then return false end
if tonumber(m[2]) <= tonumber(ARGV[2]) or tonumber(m[3] or '0') >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HINCRBY', KEYS[1], 'w', 1)
return m[1]
"#,
            ),
            // KEYS: mfa. ARGV: max.
            mfa_failed: Script::new(
                r#"
local w = tonumber(redis.call('HGET', KEYS[1], 'w') or '0')
if w >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return w
"#,
            ),
            // KEYS: mfa. ARGV: now. 1 for the one caller that takes a live token.
            mfa_take: Script::new(
                r#"
local t = redis.call('HGET', KEYS[1], 't')
if not t then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(t) > tonumber(ARGV[1]) then return 1 end
return 0
"#,
            ),
            // GCRA on Redis's own clock, in microseconds. KEYS: bucket. ARGV: interval, burst.
            // Returns {allowed, microseconds until the bucket is full again}.
            gcra: Script::new(
                r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > window then
  return {0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, next_tat - now}
"#,
            ),
        }
    }
}

pub struct RedisStore {
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
        Revocation::ApiKey { id } => (format!("k\t0\t0\t{id}"), u64::MAX),
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
        "k" => Revocation::ApiKey { id },
        _ => return None,
    })
}

impl RedisStore {
    pub fn new(settings: RedisSettings, clock: Clock) -> Self {
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
        }
    }

    /// Whether the last poll reached Redis within `max_staleness` seconds.
    pub fn fresh_within(&self, max_staleness: u64) -> bool {
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

    fn tls_certs(&self) -> Option<redis::TlsCertificates> {
        self.settings
            .ca_pem
            .as_ref()
            .map(|pem| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            })
    }

    /// A client for one node, with the configured CA for `rediss://`.
    fn client(&self, url: &str) -> redis::RedisResult<redis::Client> {
        match self.tls_certs() {
            Some(certs) => redis::Client::build_with_tls(url, certs),
            None => redis::Client::open(url),
        }
    }

    /// Connects (single node or cluster); the connection then reconnects by itself.
    async fn connect(&self) -> Result<Conn, String> {
        if let [url] = self.settings.urls.as_slice() {
            let client = self.client(url).map_err(|e| e.to_string())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(100))
                .set_max_delay(Duration::from_secs(1));
            let manager = tokio::time::timeout(
                Duration::from_secs(2),
                ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
            Ok(Conn::Single(manager))
        } else {
            let mut builder = redis::cluster::ClusterClientBuilder::new(self.settings.urls.clone());
            if let Some(certs) = self.tls_certs() {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(Duration::from_secs(2), client.get_async_connection())
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            Ok(Conn::Cluster(conn))
        }
    }

    /// The background work: connect, follow the published revocations, poll, prune. Runs
    /// until the process stops.
    pub async fn run(self: Arc<Self>, mut shutdown: pingora::server::ShutdownWatch) {
        let mut subscribed = false;
        let mut polls: u64 = 0;
        loop {
            if self.conn.load().is_none() {
                match self.connect().await {
                    Ok(c) => {
                        self.conn.store(Some(Arc::new(c)));
                        tracing::info!(redis = ?self.settings, "connected to redis");
                    }
                    Err(e) => {
                        self.failed("connect", e);
                    }
                }
            }
            if self.conn.load().is_some() {
                if !subscribed && self.settings.urls.len() == 1 {
                    // Cluster mode does without: the poll alone keeps every instance within
                    // one poll interval.
                    tokio::spawn(self.clone().follow());
                    subscribed = true;
                }
                if let Err(e) = self.poll().await {
                    tracing::debug!(error = %e, "revocation poll failed");
                }
                if polls.is_multiple_of(40) {
                    self.prune_shared().await;
                }
                polls += 1;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Applies published revocations as they come, reconnecting when the subscription drops.
    async fn follow(self: Arc<Self>) {
        use futures_util::StreamExt;
        let url = self.settings.urls[0].clone();
        loop {
            let subscribed = async {
                let client = self.client(&url)?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&self.keys.channel).await?;
                redis::RedisResult::Ok(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                Ok(Ok(pubsub)) => {
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        if let Some(r) = payload.split_once('\t').and_then(|(_, m)| decode(m)) {
                            self.view.insert(r);
                        }
                    }
                    tracing::debug!("revocation subscription ended; resubscribing");
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot subscribe to revocations"),
                Err(_) => tracing::debug!("subscribing to revocations timed out"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Brings the view up to Redis's version; refills a Redis that lost its revocations.
    async fn poll(&self) -> Result<(), StoreError> {
        let mut conn = self
            .conn
            .load_full()
            .map(|c| (*c).clone())
            .ok_or_else(|| StoreError::Unavailable("not connected".into()))?;
        let fresh_epoch = uuid::Uuid::new_v4().to_string();
        let (remote, epoch): (Option<u64>, String) = self
            .query(
                "poll",
                redis::pipe()
                    .cmd("GET")
                    .arg(&self.keys.version)
                    .cmd("SET")
                    .arg(&self.keys.epoch)
                    .arg(&fresh_epoch)
                    .arg("NX")
                    .arg("EX")
                    .arg(EPOCH_TTL)
                    .ignore()
                    .cmd("GET")
                    .arg(&self.keys.epoch)
                    .query_async(&mut conn),
            )
            .await?;
        let remote = remote.unwrap_or(0);
        let applied = self.applied.load(Ordering::Acquire);
        let known = self
            .epoch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(epoch.clone());
        let lost = known.is_some_and(|k| k != epoch) || remote < applied;
        if lost {
            tracing::warn!(
                remote,
                applied,
                "redis lost its revocations (restarted empty?): writing back this instance's"
            );
            self.reseed(&mut conn).await?;
            self.applied.store(0, Ordering::Release);
        } else if remote > applied {
            self.fetch_since(&mut conn, applied).await?;
        }
        self.fresh_at.store(self.clock.now(), Ordering::Release);
        self.recovered();
        Ok(())
    }

    async fn fetch_since(&self, conn: &mut Conn, mut applied: u64) -> Result<(), StoreError> {
        const PAGE: usize = 1000;
        loop {
            let page: Vec<(String, f64)> = self
                .query(
                    "fetch revocations",
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&self.keys.by_version)
                        .arg(format!("({applied}"))
                        .arg("+inf")
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(PAGE)
                        .query_async(conn),
                )
                .await?;
            for (member, version) in &page {
                if let Some(r) = decode(member) {
                    self.view.insert(r);
                }
                applied = applied.max(*version as u64);
            }
            self.applied.fetch_max(applied, Ordering::AcqRel);
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    async fn reseed(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let now = self.clock.now();
        // The pipeline below uses EVALSHA: an emptied Redis has forgotten the script too.
        self.query::<String>("load script", self.scripts.revoke.load_async(conn))
            .await?;
        for chunk in self.view.snapshot().chunks(500) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let (member, until) = encode(r);
                if until <= now {
                    continue;
                }
                let (score, ttl) = self.expiry(r);
                pipe.invoke_script(
                    self.scripts
                        .revoke
                        .key(&self.keys.version)
                        .key(&self.keys.by_until)
                        .key(&self.keys.by_version)
                        .arg(&member)
                        .arg(score)
                        .arg(&self.keys.channel)
                        .arg(ttl),
                );
            }
            let replies: Vec<Value> = self
                .query("reseed revocations", pipe.query_async(conn))
                .await?;
            if let Some(Value::ServerError(e)) =
                replies.iter().find(|v| matches!(v, Value::ServerError(_)))
            {
                return Err(self.failed("reseed revocations", format!("{e:?}")));
            }
        }
        Ok(())
    }

    async fn prune_shared(&self) {
        let Ok(mut conn) = self.conn() else { return };
        let now = self.clock.now();
        let _ = self
            .query::<i64>(
                "renew epoch",
                redis::cmd("EXPIRE")
                    .arg(&self.keys.epoch)
                    .arg(EPOCH_TTL)
                    .query_async(&mut conn),
            )
            .await;
        if self.view.has_api_keys() {
            // API-key revocations hold for ever: their keys outlive every instance by a year.
            let mut pipe = redis::pipe();
            for key in [
                &self.keys.version,
                &self.keys.by_until,
                &self.keys.by_version,
            ] {
                pipe.cmd("EXPIRE")
                    .arg(key)
                    .arg(API_KEY_REVOCATION)
                    .arg("GT")
                    .ignore();
            }
            let _ = self
                .query::<()>("renew revocations", pipe.query_async(&mut conn))
                .await;
        }
        let _ = self
            .query::<u64>(
                "prune",
                self.scripts
                    .prune
                    .key(&self.keys.by_until)
                    .key(&self.keys.by_version)
                    .arg(now)
                    .invoke_async(&mut conn),
            )
            .await;
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
            Revocation::ApiKey { .. } => ("+inf".to_string(), API_KEY_REVOCATION),
            _ => {
                let (_, until) = encode(r);
                (until.to_string(), self.ttl(until))
            }
        }
    }

    /// The number of revocations this instance knows (tests, diagnostics).
    pub fn known_revocations(&self) -> usize {
        self.view.len()
    }
}

#[async_trait]
impl Store for RedisStore {
    fn is_revoked(&self, presented: &Presented<'_>, now: u64) -> bool {
        self.view.is_revoked(presented, now)
    }

    fn is_fresh(&self, max_staleness: u64) -> bool {
        self.fresh_within(max_staleness)
    }

    async fn revoke(&self, revocation: Revocation) -> Result<(), StoreError> {
        // This instance refuses at once, whatever Redis says.
        self.view.insert(revocation.clone());
        let mut conn = self.conn()?;
        if let Revocation::Session { sid, .. } = &revocation {
            self.query::<i64>(
                "end session",
                redis::cmd("DEL")
                    .arg(self.keys.session(sid))
                    .query_async(&mut conn),
            )
            .await?;
        }
        let (member, _) = encode(&revocation);
        let (score, ttl) = self.expiry(&revocation);
        self.query::<u64>(
            "revoke",
            self.scripts
                .revoke
                .key(&self.keys.version)
                .key(&self.keys.by_until)
                .key(&self.keys.by_version)
                .arg(&member)
                .arg(score)
                .arg(&self.keys.channel)
                .arg(ttl)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn start_session(
        &self,
        sid: &str,
        refresh_jti: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        self.query::<()>(
            "start session",
            redis::cmd("SET")
                .arg(self.keys.session(sid))
                .arg(refresh_jti)
                .arg("EX")
                .arg(self.ttl(until))
                .query_async(&mut conn),
        )
        .await
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &str,
        next: &str,
        until: u64,
    ) -> Result<Rotation, StoreError> {
        let mut conn = self.conn()?;
        let outcome: i64 = self
            .query(
                "rotate refresh token",
                self.scripts
                    .rotate
                    .key(self.keys.session(sid))
                    .arg(presented)
                    .arg(next)
                    .arg(self.ttl(until))
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(match outcome {
            2 => Rotation::Rotated,
            1 => Rotation::Reused,
            _ => Rotation::Unknown,
        })
    }

    async fn end_session(&self, sid: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        self.query::<i64>(
            "end session",
            redis::cmd("DEL")
                .arg(self.keys.session(sid))
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn begin_attempt(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Attempt, StoreError> {
        let mut conn = self.conn()?;
        let (failures, lock) = self.keys.login(username);
        let (allowed, until): (i64, u64) = self
            .query(
                "count attempt",
                self.scripts
                    .attempt
                    .key(failures)
                    .key(lock)
                    .arg(max)
                    .arg(lockout)
                    .arg(self.clock.now())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(if allowed == 1 {
            Attempt::Allowed
        } else {
            Attempt::Locked(until)
        })
    }

    async fn attempt_failed(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn()?;
        let (failures, lock) = self.keys.login(username);
        let until: u64 = self
            .query(
                "count failure",
                self.scripts
                    .attempt_failed
                    .key(failures)
                    .key(lock)
                    .arg(max)
                    .arg(lockout)
                    .arg(self.clock.now())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok((until > 0).then_some(until))
    }

    async fn return_attempt(&self, username: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let (failures, _) = self.keys.login(username);
        self.query::<i64>(
            "return attempt",
            self.scripts
                .attempt_returned
                .key(failures)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn clear_failures(&self, username: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let (failures, lock) = self.keys.login(username);
        self.query::<i64>(
            "clear failures",
            redis::cmd("DEL")
                .arg(failures)
                .arg(lock)
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn spend(&self, marker: &str, until: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let set: Option<String> = self
            .query(
                "spend",
                redis::cmd("SET")
                    .arg(self.keys.spent(marker))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(self.ttl(until))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn put_mfa(&self, id: &str, username: &str, until: u64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.mfa(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("u")
            .arg(username)
            .arg("w")
            .arg(0)
            .arg("t")
            .arg(until)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.ttl(until))
            .ignore();
        self.query::<()>("start mfa", pipe.query_async(&mut conn))
            .await
    }

    async fn mfa_attempt(&self, id: &str, max: u32) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        self.query(
            "count code attempt",
            self.scripts
                .mfa_attempt
                .key(self.keys.mfa(id))
                .arg(max)
                .arg(self.clock.now())
                .invoke_async(&mut conn),
        )
        .await
    }

    async fn mfa_attempt_failed(&self, id: &str, max: u32) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        self.query::<i64>(
            "count wrong code",
            self.scripts
                .mfa_failed
                .key(self.keys.mfa(id))
                .arg(max)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn take_mfa(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let taken: i64 = self
            .query(
                "take mfa",
                self.scripts
                    .mfa_take
                    .key(self.keys.mfa(id))
                    .arg(self.clock.now())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(taken == 1)
    }

    fn prune(&self) {
        self.view.prune(self.clock.now());
    }

    fn shared_buckets(self: Arc<Self>) -> Option<Arc<dyn SharedBuckets>> {
        Some(self)
    }
}

#[async_trait]
impl SharedBuckets for RedisStore {
    fn is_down(&self) -> bool {
        RedisStore::is_down(self) || self.conn.load().is_none()
    }

    async fn gcra(&self, policy_key: &[u8], quota: &Quota) -> Result<(bool, Duration), StoreError> {
        let mut conn = self.conn()?;
        // The same bucket name on every instance: a digest of the rendered key.
        let digest = Sha256::digest(policy_key);
        let key = self.keys.bucket(&hex::encode(&digest[..16]));
        let (allowed, until_full_us): (i64, i64) = self
            .query(
                "rate limit",
                self.scripts
                    .gcra
                    .key(key)
                    .arg(quota.interval.as_micros().max(1) as u64)
                    .arg(quota.burst.get())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok((
            allowed == 1,
            Duration::from_micros(until_full_us.max(0) as u64),
        ))
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
            Revocation::ApiKey { id: "k".into() },
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
