//! The memory backend: one instance's state, in this process, until restart.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::revocations::RevocationView;
use super::{Presented, Revocation, Rotation, Store, StoreError};
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
    /// sid -> (current refresh jti, until)
    sessions: HashMap<String, (String, u64)>,
    /// username -> (failures, forgotten at)
    failures: HashMap<String, (u32, u64)>,
    /// username -> locked until
    locks: HashMap<String, u64>,
    /// marker -> until
    spent: HashMap<String, u64>,
    mfa: HashMap<String, PendingMfa>,
}

#[derive(Debug)]
struct PendingMfa {
    username: String,
    wrong_codes: u32,
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
    fn is_revoked(&self, p: &Presented<'_>) -> bool {
        self.revoked.is_revoked(p)
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
        sid: &str,
        refresh_jti: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        self.state()
            .sessions
            .insert(sid.to_string(), (refresh_jti.to_string(), until));
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &str,
        next: &str,
        until: u64,
    ) -> Result<Rotation, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        let Some((current, session_until)) = state.sessions.get_mut(sid) else {
            return Ok(Rotation::Unknown);
        };
        if *session_until <= now {
            state.sessions.remove(sid);
            return Ok(Rotation::Unknown);
        }
        if current != presented {
            return Ok(Rotation::Reused);
        }
        *current = next.to_string();
        *session_until = until;
        Ok(Rotation::Rotated)
    }

    async fn end_session(&self, sid: &str) -> Result<(), StoreError> {
        self.state().sessions.remove(sid);
        Ok(())
    }

    async fn locked_until(&self, username: &str) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .state()
            .locks
            .get(username)
            .copied()
            .filter(|&until| until > now))
    }

    async fn record_failure(
        &self,
        username: &str,
        max: u32,
        lockout: u64,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now();
        let mut state = self.state();
        let entry = state.failures.entry(username.to_string()).or_insert((0, 0));
        if entry.1 <= now {
            *entry = (0, 0);
        }
        entry.0 += 1;
        entry.1 = now + lockout;
        if entry.0 < max {
            return Ok(None);
        }
        state.failures.remove(username);
        let until = now + lockout;
        state.locks.insert(username.to_string(), until);
        Ok(Some(until))
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
                wrong_codes: 0,
                until,
            },
        );
        Ok(())
    }

    async fn mfa_user(&self, id: &str) -> Result<Option<String>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .state()
            .mfa
            .get(id)
            .filter(|m| m.until > now)
            .map(|m| m.username.clone()))
    }

    async fn mfa_wrong_code(&self, id: &str, max: u32) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(m) = state.mfa.get_mut(id) {
            m.wrong_codes += 1;
            if m.wrong_codes >= max {
                state.mfa.remove(id);
            }
        }
        Ok(())
    }

    async fn take_mfa(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        Ok(self.state().mfa.remove(id).is_some_and(|m| m.until > now))
    }

    fn prune(&self) {
        let now = self.clock.now();
        self.revoked.prune(now);
        let mut s = self.state();
        s.sessions.retain(|_, (_, until)| *until > now);
        s.failures.retain(|_, (_, until)| *until > now);
        s.locks.retain(|_, until| *until > now);
        s.spent.retain(|_, until| *until > now);
        s.mfa.retain(|_, m| m.until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (MemoryStore, Clock) {
        let clock = Clock::manual(1_000_000);
        (MemoryStore::new(clock.clone()), clock)
    }

    fn token<'a>(jti: &'a str, sid: &'a str, sub: &'a str, iat: u64) -> Presented<'a> {
        Presented {
            jti: Some(jti),
            sid: Some(sid),
            subject: sub,
            iat: Some(iat),
            api_key: None,
        }
    }

    #[tokio::test]
    async fn revocations_by_jti_session_subject_and_api_key() {
        let (s, clock) = store();
        let now = clock.now();
        assert!(!s.is_revoked(&token("j1", "s1", "alice", now)));
        s.revoke(Revocation::Jti {
            jti: "j1".into(),
            until: now + 60,
        })
        .await
        .unwrap();
        assert!(s.is_revoked(&token("j1", "s9", "bob", now)));
        assert!(!s.is_revoked(&token("j2", "s1", "alice", now)));

        s.revoke(Revocation::Session {
            sid: "s1".into(),
            until: now + 60,
        })
        .await
        .unwrap();
        assert!(s.is_revoked(&token("j3", "s1", "alice", now)));

        // Revoke-all covers tokens issued in that second or before, not after.
        s.revoke(Revocation::Subject {
            subject: "carol".into(),
            at: now,
            until: now + 60,
        })
        .await
        .unwrap();
        assert!(s.is_revoked(&token("j4", "s4", "carol", now)));
        assert!(s.is_revoked(&token("j4", "s4", "carol", now - 100)));
        assert!(!s.is_revoked(&token("j5", "s5", "carol", now + 1)));

        s.revoke(Revocation::ApiKey { id: "k1".into() })
            .await
            .unwrap();
        let key = Presented {
            subject: "svc",
            api_key: Some("k1"),
            ..Presented::default()
        };
        assert!(s.is_revoked(&key));

        // Expired revocations are forgotten; the key's is not.
        clock.advance(61);
        s.prune();
        assert!(!s.is_revoked(&token("j1", "s1", "carol", now)));
        assert!(s.is_revoked(&key));
    }

    #[tokio::test]
    async fn refresh_rotation_and_reuse() {
        let (s, clock) = store();
        let until = clock.now() + 100;
        s.start_session("s1", "r1", until).await.unwrap();
        assert_eq!(
            s.rotate_refresh("s1", "r1", "r2", until).await,
            Ok(Rotation::Rotated)
        );
        assert_eq!(
            s.rotate_refresh("s1", "r1", "r3", until).await,
            Ok(Rotation::Reused)
        );
        assert_eq!(
            s.rotate_refresh("s2", "r1", "r3", until).await,
            Ok(Rotation::Unknown)
        );
        clock.advance(101);
        assert_eq!(
            s.rotate_refresh("s1", "r2", "r3", until).await,
            Ok(Rotation::Unknown)
        );
    }

    #[tokio::test]
    async fn lockout_after_max_failures_until_it_passes() {
        let (s, clock) = store();
        for _ in 0..2 {
            assert_eq!(s.record_failure("alice", 3, 60).await, Ok(None));
        }
        let until = s.record_failure("alice", 3, 60).await.unwrap();
        assert_eq!(until, Some(clock.now() + 60));
        assert_eq!(s.locked_until("alice").await, Ok(until));
        assert_eq!(s.locked_until("bob").await, Ok(None));
        clock.advance(60);
        assert_eq!(s.locked_until("alice").await, Ok(None));
        // The count started again.
        assert_eq!(s.record_failure("alice", 3, 60).await, Ok(None));
        s.clear_failures("alice").await.unwrap();
        assert_eq!(s.record_failure("alice", 3, 60).await, Ok(None));
        assert_eq!(s.record_failure("alice", 3, 60).await, Ok(None));
        // Failures far apart do not add up.
        clock.advance(61);
        assert_eq!(s.record_failure("alice", 3, 60).await, Ok(None));
    }

    #[tokio::test]
    async fn single_use_markers_and_mfa_tokens() {
        let (s, clock) = store();
        let until = clock.now() + 30;
        assert_eq!(s.spend("totp:alice:1", until).await, Ok(true));
        assert_eq!(s.spend("totp:alice:1", until).await, Ok(false));

        s.put_mfa("m1", "alice", until).await.unwrap();
        assert_eq!(s.mfa_user("m1").await, Ok(Some("alice".into())));
        for _ in 0..4 {
            s.mfa_wrong_code("m1", 5).await.unwrap();
        }
        assert!(s.mfa_user("m1").await.unwrap().is_some());
        s.mfa_wrong_code("m1", 5).await.unwrap();
        assert_eq!(s.mfa_user("m1").await, Ok(None), "dead after 5 wrong codes");

        s.put_mfa("m2", "alice", until).await.unwrap();
        assert_eq!(s.take_mfa("m2").await, Ok(true));
        assert_eq!(s.take_mfa("m2").await, Ok(false));
        s.put_mfa("m3", "alice", until).await.unwrap();
        clock.advance(31);
        assert_eq!(s.mfa_user("m3").await, Ok(None));
        assert_eq!(s.take_mfa("m3").await, Ok(false));
    }
}
