//! The [`Store`] trait on Redis: every write one atomic command or script, with a TTL; and
//! the shared buckets of `scope = "global"` rate limits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{encode, RedisStore};
use crate::ratelimit::{Quota, SharedBuckets, Unreachable};
use crate::store::{Attempt, Presented, Revocation, Rotation, SessionInfo, Store, StoreError};

#[async_trait]
impl Store for RedisStore {
    fn is_revoked(&self, presented: &Presented<'_>, now: u64) -> bool {
        self.view.is_revoked(presented, now)
    }

    fn is_fresh(&self, max_staleness: u64) -> bool {
        self.fresh_within(max_staleness)
    }

    async fn revoke(&self, revocation: Revocation) -> Result<(), StoreError> {
        // This instance refuses at once, whatever Redis says; what Redis could not take is
        // kept and written when it is back: a revocation, once answered, is never lost.
        self.view.insert(revocation.clone());
        if let Err(e) = self.write_revocation(&revocation).await {
            self.keep_pending(revocation, &e);
        }
        Ok(())
    }
    async fn start_session(
        &self,
        refresh_jti: &str,
        until: u64,
        info: &SessionInfo,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let ttl = self.ttl(until);
        self.query::<()>(
            "start session",
            redis::cmd("SET")
                .arg(self.keys.session(&info.sid))
                .arg(refresh_jti)
                .arg("EX")
                .arg(ttl)
                .query_async(&mut conn),
        )
        .await?;
        self.describe_session(info, until).await
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &str,
        next: &str,
        until: u64,
        now: u64,
        grace: u64,
    ) -> Result<Rotation, StoreError> {
        let mut conn = self.conn()?;
        let (outcome, successor): (i64, String) = self
            .query(
                "rotate refresh token",
                self.scripts
                    .rotate
                    .key(self.keys.session(sid))
                    .arg(presented)
                    .arg(next)
                    .arg(self.ttl(until))
                    .arg(grace)
                    .arg(now)
                    .invoke_async(&mut conn),
            )
            .await?;
        let rotation = match (outcome, successor) {
            (2, _) => Rotation::Rotated,
            (3, jti) if !jti.is_empty() => Rotation::Successor(jti),
            (1, _) => Rotation::Reused,
            _ => Rotation::Unknown,
        };
        if rotation == Rotation::Rotated {
            // The description is for the owner's list: best effort, after the rotation that
            // matters has happened atomically.
            // An error here must not turn a done rotation into a 503: the client would
            // retry with the spent token, and be taken for a thief.
            let described = match self.session_info(sid).await {
                Ok(Some(mut info)) => {
                    info.last_used_at = now;
                    self.describe_session(&info, until).await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = described {
                tracing::warn!(error = %e, "a session's last use was not recorded");
            }
        }
        Ok(rotation)
    }

    async fn sessions(&self, subject: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let mut conn = self.conn()?;
        let sids: Vec<String> = self
            .query(
                "list sessions",
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.user_sessions(subject))
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .query_async(&mut conn),
            )
            .await?;
        let mut found = Vec::new();
        for sid in sids {
            let live: bool = self
                .query(
                    "list sessions",
                    redis::cmd("EXISTS")
                        .arg(self.keys.session(&sid))
                        .query_async(&mut conn),
                )
                .await?;
            if let (true, Some(info)) = (live, self.session_info(&sid).await?) {
                found.push(info);
            }
        }
        found.sort_by(|a, b| (a.created_at, &a.sid).cmp(&(b.created_at, &b.sid)));
        Ok(found)
    }

    async fn end_session(&self, sid: &str) -> Result<(), StoreError> {
        self.forget_session(sid).await
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
        self.spend_marker(marker, until).await
    }

    async fn put_mfa(&self, id: &str, username: &str, until: u64) -> Result<(), StoreError> {
        self.start_mfa(id, username, until).await
    }

    async fn mfa_attempt(&self, id: &str, max: u32) -> Result<Option<String>, StoreError> {
        self.count_mfa_attempt(id, max).await
    }

    async fn mfa_attempt_failed(&self, id: &str, max: u32) -> Result<(), StoreError> {
        self.count_wrong_code(id, max).await
    }

    async fn take_mfa(&self, id: &str) -> Result<bool, StoreError> {
        self.end_mfa(id).await
    }

    async fn keep(&self, key: &str, value: &str, until: u64) -> Result<(), StoreError> {
        self.keep_value(key, value, until).await
    }

    async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.take_value(key).await
    }

    async fn link(&self, set: &str, member: &str, until: u64) -> Result<(), StoreError> {
        self.add_link(set, member, until).await
    }

    async fn linked(&self, set: &str) -> Result<Vec<String>, StoreError> {
        self.links(set).await
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

    async fn gcra(
        &self,
        policy_key: &[u8],
        quota: &Quota,
    ) -> Result<(bool, Duration), Unreachable> {
        let mut conn = self.conn().map_err(|_| Unreachable)?;
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
            .await
            .map_err(|_| Unreachable)?;
        Ok((
            allowed == 1,
            Duration::from_micros(until_full_us.max(0) as u64),
        ))
    }
}

/// Sessions' descriptions: `sinfo:<sid>` (JSON) beside `sess:<sid>`, with its TTL, and the
/// owner's index `usess:<subject>` (sids scored by expiry). Separate keys, written after the
/// refresh state: in a cluster they live on different slots.
impl RedisStore {
    /// Writes a revocation to Redis (and ends a revoked session's refresh state there).
    pub(super) async fn write_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        if let Revocation::Session { sid, .. } = revocation {
            self.forget_session(sid).await?;
        }
        let (member, _) = encode(revocation);
        let (score, ttl) = self.expiry(revocation);
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

    fn keep_pending(&self, revocation: Revocation, e: &StoreError) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() >= super::MAX_PENDING {
            pending.pop_front();
            tracing::error!("too many revocations waiting for redis: the oldest is written off");
        }
        pending.push_back(revocation);
        tracing::warn!(error = %e, waiting = pending.len(), "revocation kept: written to redis when it is back");
    }

    /// Writes what waited for Redis, in order; what still fails waits on.
    pub(super) async fn flush_pending(&self) {
        loop {
            let next = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front();
            let Some(revocation) = next else {
                return;
            };
            if let Err(e) = self.write_revocation(&revocation).await {
                self.pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_front(revocation);
                tracing::debug!(error = %e, "revocations still waiting for redis");
                return;
            }
            tracing::info!(
                kind = revocation.kind(),
                "a revocation that waited for redis is written"
            );
        }
    }

    async fn describe_session(&self, info: &SessionInfo, until: u64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let ttl = self.ttl(until);
        let json = serde_json::json!({
            "subject": info.subject,
            "created_at": info.created_at,
            "last_used_at": info.last_used_at,
            "client_ip": info.client_ip,
            "user_agent": info.user_agent,
        });
        self.query::<()>(
            "describe session",
            redis::cmd("SET")
                .arg(self.keys.session_info(&info.sid))
                .arg(json.to_string())
                .arg("EX")
                .arg(ttl)
                .query_async(&mut conn),
        )
        .await?;
        let index = self.keys.user_sessions(&info.subject);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&index)
            .arg(until)
            .arg(&info.sid)
            .ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(until.saturating_sub(ttl))
            .ignore();
        pipe.cmd("EXPIRE").arg(&index).arg(ttl).arg("GT").ignore();
        // A new key has no TTL for GT to compare with: give it one.
        pipe.cmd("EXPIRE").arg(&index).arg(ttl).arg("NX").ignore();
        self.query::<()>("index session", pipe.query_async(&mut conn))
            .await
    }

    async fn session_info(&self, sid: &str) -> Result<Option<SessionInfo>, StoreError> {
        let mut conn = self.conn()?;
        let json: Option<String> = self
            .query(
                "read session",
                redis::cmd("GET")
                    .arg(self.keys.session_info(sid))
                    .query_async(&mut conn),
            )
            .await?;
        let Some(v) = json.and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok()) else {
            return Ok(None);
        };
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let secs = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        Ok(Some(SessionInfo {
            sid: sid.to_string(),
            subject: text("subject").unwrap_or_default(),
            created_at: secs("created_at"),
            last_used_at: secs("last_used_at"),
            client_ip: text("client_ip"),
            user_agent: text("user_agent"),
        }))
    }

    async fn forget_session(&self, sid: &str) -> Result<(), StoreError> {
        let info = self.session_info(sid).await?;
        let mut conn = self.conn()?;
        // One key a command: in a cluster they live on different slots.
        for key in [self.keys.session(sid), self.keys.session_info(sid)] {
            self.query::<i64>(
                "end session",
                redis::cmd("DEL").arg(key).query_async(&mut conn),
            )
            .await?;
        }
        if let Some(info) = info {
            self.query::<i64>(
                "end session",
                redis::cmd("ZREM")
                    .arg(self.keys.user_sessions(&info.subject))
                    .arg(sid)
                    .query_async(&mut conn),
            )
            .await?;
        }
        Ok(())
    }
}
