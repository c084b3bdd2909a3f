//! The memory backend: one instance's state, in this process, until restart.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::revocations::RevocationView;
use super::{Attempt, Presented, Revocation, Rotation, SessionInfo, Store, StoreError};
use crate::clock::Clock;

#[derive(Debug)]
pub struct MemoryStore {
    clock: Clock,
    /// Read on every proxied request; written only by revocations.
    revoked: RevocationView,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    /// username -> (failures, forgotten at)
    failures: HashMap<String, (u32, u64)>,
    /// username -> locked until
    locks: HashMap<String, u64>,
    /// marker -> until
    spent: HashMap<String, u64>,
    mfa: HashMap<String, PendingMfa>,
    /// key -> (value, until): taken once.
    kept: HashMap<String, (String, u64)>,
    /// set -> (members, until)
    links: HashMap<String, (Vec<String>, u64)>,
}

#[derive(Debug)]
struct Session {
    /// The current refresh token's jti.
    current: String,
    /// The one it replaced and when, kept for the reuse grace.
    previous: Option<(String, u64)>,
    until: u64,
    info: SessionInfo,
}

#[derive(Debug)]
struct PendingMfa {
    username: String,
    /// Code attempts counted: wrong, or being checked.
    attempts: u32,
    until: u64,
}

impl MemoryStore {
    pub fn new(clock: Clock) -> Self {
        MemoryStore {
            clock,
            revoked: RevocationView::default(),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the gateway: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn is_revoked(&self, p: &Presented<'_>, now: u64) -> bool {
        self.revoked.is_revoked(p, now)
    }

    async fn revoke(&self, revocation: Revocation) -> Result<(), StoreError> {
        if let Revocation::Session { sid, .. } = &revocation {
            self.state().sessions.remove(sid);
        }
        self.revoked.insert(revocation);
        Ok(())
    }

    async fn start_session(
        &self,
        refresh_jti: &str,
        until: u64,
        info: &SessionInfo,
    ) -> Result<(), StoreError> {
        let session = Session {
            current: refresh_jti.to_string(),
            previous: None,
            until,
            info: info.clone(),
        };
        self.state().sessions.insert(info.sid.clone(), session);
        Ok(())
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
        let mut state = self.state();
        let Some(session) = state.sessions.get_mut(sid) else {
            return Ok(Rotation::Unknown);
        };
        if session.until <= self.clock.now() {
            state.sessions.remove(sid);
            return Ok(Rotation::Unknown);
        }
        if session.current != presented {
            return Ok(match &session.previous {
                Some((spent, at)) if spent == presented && now <= at + grace => {
                    Rotation::Successor(session.current.clone())
                }
                _ => Rotation::Reused,
            });
        }
        session.previous = (grace > 0).then(|| (presented.to_string(), now));
        session.current = next.to_string();
        session.until = until;
        session.info.last_used_at = now;
        Ok(Rotation::Rotated)
    }

    async fn sessions(&self, subject: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        // A scan: one instance's sessions, pruned every few seconds.
        let mut found: Vec<SessionInfo> = self
            .state()
            .sessions
            .values()
            .filter(|s| s.info.subject == subject && s.until > now)
            .map(|s| s.info.clone())
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.sid).cmp(&(b.created_at, &b.sid)));
        Ok(found)
    }

    async fn end_session(&self, sid: &str) -> Result<(), StoreError> {
        self.state().sessions.remove(sid);
        Ok(())
    }

    async fn begin_attempt(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Attempt, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        if let Some(&until) = state.locks.get(username).filter(|&&u| u > now) {
            return Ok(Attempt::Locked(until));
        }
        let entry = state.failures.entry(username.to_string()).or_insert((0, 0));
        if entry.1 <= now {
            *entry = (0, 0);
        }
        if entry.0 >= max {
            // `max` attempts are counted already, failed or still being evaluated.
            return Ok(Attempt::Locked(entry.1));
        }
        entry.0 += 1;
        entry.1 = now + lockout;
        Ok(Attempt::Allowed)
    }

    async fn attempt_failed(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        let counted = state
            .failures
            .get(username)
            .filter(|(_, until)| *until > now)
            .map_or(0, |(n, _)| *n);
        if counted < max {
            return Ok(None);
        }
        state.failures.remove(username);
        let until = now + lockout;
        state.locks.insert(username.to_string(), until);
        Ok(Some(until))
    }

    async fn return_attempt(&self, username: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.state().failures.get_mut(username) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_failures(&self, username: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.failures.remove(username);
        state.locks.remove(username);
        Ok(())
    }

    async fn spend(&self, marker: &str, until: u64) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        match state.spent.get(marker) {
            Some(&t) if t > now => Ok(false),
            _ => {
                state.spent.insert(marker.to_string(), until);
                Ok(true)
            }
        }
    }

    async fn put_mfa(&self, id: &str, username: &str, until: u64) -> Result<(), StoreError> {
        self.state().mfa.insert(
            id.to_string(),
            PendingMfa {
                username: username.to_string(),
                attempts: 0,
                until,
            },
        );
        Ok(())
    }

    async fn mfa_attempt(&self, id: &str, max: u32) -> Result<Option<String>, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        let Some(m) = state.mfa.get_mut(id) else {
            return Ok(None);
        };
        if m.until <= now || m.attempts >= max {
            state.mfa.remove(id);
            return Ok(None);
        }
        m.attempts += 1;
        Ok(Some(m.username.clone()))
    }

    async fn mfa_attempt_failed(&self, id: &str, max: u32) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.mfa.get(id).is_some_and(|m| m.attempts >= max) {
            state.mfa.remove(id);
        }
        Ok(())
    }

    async fn take_mfa(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        Ok(self.state().mfa.remove(id).is_some_and(|m| m.until > now))
    }

    async fn keep(&self, key: &str, value: &str, until: u64) -> Result<(), StoreError> {
        let kept = (value.to_string(), until);
        self.state().kept.insert(key.to_string(), kept);
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        let now = self.clock.now();
        let taken = self.state().kept.remove(key);
        Ok(taken.filter(|(_, until)| *until > now).map(|(v, _)| v))
    }

    async fn link(&self, set: &str, member: &str, until: u64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        let entry = state.links.entry(set.to_string()).or_default();
        if entry.1 <= now {
            *entry = (Vec::new(), 0);
        }
        if !entry.0.iter().any(|m| m == member) {
            entry.0.push(member.to_string());
        }
        entry.1 = entry.1.max(until);
        Ok(())
    }

    async fn linked(&self, set: &str) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        let state = self.state();
        let live = state.links.get(set).filter(|(_, until)| *until > now);
        Ok(live.map(|(m, _)| m.clone()).unwrap_or_default())
    }

    fn prune(&self) {
        let now = self.clock.now();
        self.revoked.prune(now);
        let mut s = self.state();
        s.sessions.retain(|_, session| session.until > now);
        s.failures.retain(|_, (_, until)| *until > now);
        s.locks.retain(|_, until| *until > now);
        s.spent.retain(|_, until| *until > now);
        s.mfa.retain(|_, m| m.until > now);
        s.kept.retain(|_, (_, until)| *until > now);
        s.links.retain(|_, (_, until)| *until > now);
    }
}

#[cfg(test)]
mod tests;
