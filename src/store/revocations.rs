//! The revocations this process knows, as pipeline step 8 reads them on every request: a local
//! view, written by revocations (and, with Redis, by what other instances publish).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use super::{Presented, Revocation};

#[derive(Debug)]
pub(crate) struct RevocationView {
    revoked: RwLock<Revoked>,
    /// Nothing revoked at all: the common case answers without taking the lock.
    none: AtomicBool,
}

impl Default for RevocationView {
    fn default() -> Self {
        RevocationView {
            revoked: RwLock::default(),
            none: AtomicBool::new(true),
        }
    }
}

#[derive(Debug, Default)]
struct Revoked {
    /// id -> until
    jtis: HashMap<String, u64>,
    sessions: HashMap<String, u64>,
    /// subject -> (at, until): its tokens
    subjects: HashMap<String, (u64, u64)>,
    /// subject -> (at, until): every credential, its user's keys included
    owners: HashMap<String, (u64, u64)>,
    /// id -> until (`None`: for ever)
    api_keys: HashMap<String, Option<u64>>,
}

impl RevocationView {
    /// Whether a revocation in force at `now` covers `p`. One past its `until` no longer
    /// counts, pruned yet or not: the answer does not depend on when the pruner last ran.
    pub(crate) fn is_revoked(&self, p: &Presented<'_>, now: u64) -> bool {
        if self.none.load(Ordering::Acquire) {
            return false;
        }
        let r = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        let live = |until: &u64| *until > now;
        let covers = |(at, until): &(u64, u64)| p.iat.unwrap_or(0) <= *at && live(until);
        p.jti.is_some_and(|j| r.jtis.get(j).is_some_and(live))
            || p.sid.is_some_and(|s| r.sessions.get(s).is_some_and(live))
            || (!p.user_key && r.subjects.get(p.subject).is_some_and(covers))
            || r.owners.get(p.subject).is_some_and(covers)
            || p.api_key.is_some_and(|k| {
                r.api_keys
                    .get(k)
                    .is_some_and(|until| until.is_none_or(|u| u > now))
            })
    }

    pub(crate) fn insert(&self, revocation: Revocation) {
        let mut r = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        match revocation {
            Revocation::Jti { jti, until } => {
                let e = r.jtis.entry(jti).or_insert(until);
                *e = (*e).max(until);
            }
            Revocation::Session { sid, until } => {
                let e = r.sessions.entry(sid).or_insert(until);
                *e = (*e).max(until);
            }
            Revocation::Subject { subject, at, until } => {
                // A later revoke-all covers an earlier one.
                let entry = r.subjects.entry(subject).or_insert((at, until));
                *entry = (entry.0.max(at), entry.1.max(until));
            }
            Revocation::Owner { subject, at, until } => {
                let entry = r.owners.entry(subject).or_insert((at, until));
                *entry = (entry.0.max(at), entry.1.max(until));
            }
            Revocation::ApiKey { id, until } => {
                // For ever wins over any `until`; else the later one.
                let e = r.api_keys.entry(id).or_insert(until);
                *e = match (*e, until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
        self.none.store(false, Ordering::Release);
    }

    /// Forgets what has expired by `now`.
    pub(crate) fn prune(&self, now: u64) {
        let mut r = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        r.jtis.retain(|_, until| *until > now);
        r.sessions.retain(|_, until| *until > now);
        r.subjects.retain(|_, (_, until)| *until > now);
        r.owners.retain(|_, (_, until)| *until > now);
        r.api_keys.retain(|_, until| until.is_none_or(|u| u > now));
        let empty = r.jtis.is_empty()
            && r.sessions.is_empty()
            && r.subjects.is_empty()
            && r.owners.is_empty()
            && r.api_keys.is_empty();
        self.none.store(empty, Ordering::Release);
    }

    /// Everything still in force, to write back to a shared store that lost it.
    pub(crate) fn snapshot(&self) -> Vec<Revocation> {
        let r = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        let mut all = Vec::new();
        all.extend(r.jtis.iter().map(|(jti, &until)| Revocation::Jti {
            jti: jti.clone(),
            until,
        }));
        all.extend(r.sessions.iter().map(|(sid, &until)| Revocation::Session {
            sid: sid.clone(),
            until,
        }));
        all.extend(
            r.subjects
                .iter()
                .map(|(subject, &(at, until))| Revocation::Subject {
                    subject: subject.clone(),
                    at,
                    until,
                }),
        );
        all.extend(
            r.owners
                .iter()
                .map(|(subject, &(at, until))| Revocation::Owner {
                    subject: subject.clone(),
                    at,
                    until,
                }),
        );
        all.extend(r.api_keys.iter().map(|(id, &until)| Revocation::ApiKey {
            id: id.clone(),
            until,
        }));
        all
    }

    /// Whether an API-key revocation holds for ever: the shared keys' lifetime is renewed.
    pub(crate) fn has_api_keys(&self) -> bool {
        let r = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        r.api_keys.values().any(Option::is_none)
    }
}

/// The stated property: a revocation is never forgotten while younger than `max_ttl`, however
/// the pruner, later revocations and a copy into a new view (a store that lost them) fall.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::RevocationView;
    use crate::store::{Presented, Revocation};

    const MAX_TTL: u64 = 100;

    #[derive(Debug, Clone)]
    enum Step {
        Revoke { kind: u8, id: u8 },
        Wait(u64),
        Prune,
        Restore,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..5, 0u8..4).prop_map(|(kind, id)| Step::Revoke { kind, id }),
            (0u64..60).prop_map(Step::Wait),
            Just(Step::Prune),
            Just(Step::Restore),
        ]
    }

    fn revocation(kind: u8, id: String, now: u64) -> Revocation {
        let until = now + MAX_TTL;
        match kind {
            0 => Revocation::Jti { jti: id, until },
            1 => Revocation::Session { sid: id, until },
            2 => Revocation::Subject {
                subject: id,
                at: now,
                until,
            },
            3 => Revocation::Owner {
                subject: id,
                at: now,
                until,
            },
            _ => Revocation::ApiKey {
                id,
                until: Some(until),
            },
        }
    }

    /// A credential the revocation covers: issued at the moment it was revoked.
    fn covered(kind: u8, id: &str, at: u64) -> Presented<'_> {
        let mut p = Presented {
            jti: None,
            sid: None,
            subject: "other",
            iat: Some(at),
            api_key: None,
            user_key: false,
        };
        match kind {
            0 => p.jti = Some(id),
            1 => p.sid = Some(id),
            2 | 3 => p.subject = id,
            _ => p.api_key = Some(id),
        }
        p
    }

    proptest! {
        #[test]
        fn never_forgets_one_younger_than_max_ttl(steps in prop::collection::vec(step(), 1..80)) {
            let mut view = RevocationView::default();
            let mut now = 1_000u64;
            let mut answered: Vec<(u8, String, u64)> = Vec::new();
            for s in steps {
                match s {
                    Step::Revoke { kind, id } => {
                        let id = format!("id-{id}");
                        view.insert(revocation(kind, id.clone(), now));
                        answered.push((kind, id, now));
                    }
                    Step::Wait(dt) => now += dt,
                    Step::Prune => view.prune(now),
                    Step::Restore => {
                        let fresh = RevocationView::default();
                        view.snapshot().into_iter().for_each(|r| fresh.insert(r));
                        view = fresh;
                    }
                }
                for (kind, id, at) in &answered {
                    if now < at + MAX_TTL {
                        prop_assert!(view.is_revoked(&covered(*kind, id, *at), now), "kind {kind} {id} at {at}, now {now}");
                    }
                }
            }
        }
    }
}
