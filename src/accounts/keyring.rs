//! The database's API keys in memory: what the proxy checks a presented key against, with no
//! database round trip. The change follower keeps it current; each key notes when it was last
//! used, and a flusher writes that back now and then.
//!
//! There may be millions of keys, most seldom used, and few distinct roles. So what keys have
//! in common is held once: keys made with the same roles by owners with the same roles share
//! one [`KeyRoles`] (and the grants it makes under a config), an owner's keys share its
//! [`Owner`]. And what a request sees of a key (an [`ApiKey`]) is made at the key's first use.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;
use serde_json::{Map, Value};

use super::db::keys::{KeySink, LiveKey};
use crate::auth::apikey::{self, subject_claims, ApiKey};
use crate::error::ApiKeyError;
use crate::policy::roles::{Grants, RoleGraph};

/// One key (its digest is its place in the ring), and when it was last used (0: not since
/// the last flush).
#[derive(Debug)]
struct Entry {
    id: Box<str>,
    allowed_ips: Box<[IpNet]>,
    expires_at: Option<u64>,
    created_at: u64,
    owner: Arc<Owner>,
    roles: Arc<KeyRoles>,
    used: AtomicU64,
    /// The key as requests see it, made at its first use. It has no grants: they depend on
    /// the roles of the asking config, and come from `roles`.
    key: OnceLock<Arc<ApiKey>>,
}

impl Entry {
    fn api_key(&self, digest: &[u8; 32], no_grants: &Arc<Grants>) -> &Arc<ApiKey> {
        self.key.get_or_init(|| {
            Arc::new(ApiKey {
                id: self.id.to_string(),
                digest: *digest,
                subject: self.owner.subject.clone(),
                grants: no_grants.clone(),
                roles: Vec::new(),
                permissions: Vec::new(),
                allowed_ips: self.allowed_ips.to_vec(),
                expires_at: self.expires_at,
                issued_at: Some(self.created_at),
                rate_limit: None,
                claims: self.owner.claims(),
            })
        })
    }
}

/// A user who holds keys, as its keys share it.
#[derive(Debug)]
struct Owner {
    username: String,
    subject: String,
    /// `{"sub": subject}`, made at the first use of one of its keys.
    claims: OnceLock<Arc<Map<String, Value>>>,
}

impl Owner {
    fn claims(&self) -> Arc<Map<String, Value>> {
        self.claims
            .get_or_init(|| subject_claims(&self.subject))
            .clone()
    }
}

/// The roles keys were made with and their owner's now, and the grants those make.
#[derive(Debug)]
struct KeyRoles {
    made_with: Vec<String>,
    owner_roles: Vec<String>,
    /// The grants under the last role graph that asked: each runtime's requests see its own
    /// config's roles, and a reload touches no key until a request of the new one asks.
    granted: ArcSwapOption<Granted>,
}

#[derive(Debug)]
struct Granted {
    roles: Arc<RoleGraph>,
    grants: Arc<Grants>,
}

impl KeyRoles {
    fn granted(&self, roles: &Arc<RoleGraph>) -> Arc<Grants> {
        if let Some(g) = self.granted.load().as_ref() {
            if Arc::ptr_eq(&g.roles, roles) {
                return g.grants.clone();
            }
        }
        // The owner may have lost roles since the key was made: the key keeps only those its
        // owner still has (directly or inherited).
        let owner = roles.grants(&self.owner_roles, &[]);
        let kept: Vec<String> = self
            .made_with
            .iter()
            .filter(|r| owner.roles.contains(*r))
            .cloned()
            .collect();
        let grants = Arc::new(roles.grants(&kept, &[]));
        self.granted.store(Some(Arc::new(Granted {
            roles: roles.clone(),
            grants: grants.clone(),
        })));
        grants
    }
}

/// An owner, and the digests of its keys.
#[derive(Debug)]
struct Owned {
    owner: Arc<Owner>,
    keys: HashSet<[u8; 32]>,
}

#[derive(Debug, Default)]
struct Keys {
    by_digest: HashMap<[u8; 32], Entry>,
    by_id: HashMap<String, [u8; 32]>,
    /// By username.
    owners: HashMap<String, Owned>,
    /// Every [`KeyRoles`] held, by its `made_with` and `owner_roles`.
    roles: HashMap<(Vec<String>, Vec<String>), Arc<KeyRoles>>,
    /// How many `roles` were left at the last pruning.
    roles_kept: usize,
    /// The grants every key's `ApiKey` carries: none, one allocation for all.
    no_grants: Arc<Grants>,
}

impl Keys {
    /// The one [`KeyRoles`] for these lists.
    fn roles_of(&mut self, made_with: Vec<String>, owner_roles: Vec<String>) -> Arc<KeyRoles> {
        let lists = (made_with, owner_roles);
        if let Some(shared) = self.roles.get(&lists) {
            return shared.clone();
        }
        // Sets no key holds any more (their keys deleted, their owners' roles changed) go
        // now and then: pruning when the table has doubled keeps it amortised O(1) a key.
        if self.roles.len() >= 2 * self.roles_kept.max(8) {
            self.roles.retain(|_, r| Arc::strong_count(r) > 1);
            self.roles_kept = self.roles.len();
        }
        let shared = Arc::new(KeyRoles {
            made_with: lists.0.clone(),
            owner_roles: lists.1.clone(),
            granted: ArcSwapOption::empty(),
        });
        self.roles.insert(lists, shared.clone());
        shared
    }

    /// `username`'s [`Owner`], made again when the name is another user's now (a different
    /// subject: the keys of the one before keep theirs until they go).
    fn owner(&mut self, username: &str, subject: &str) -> Arc<Owner> {
        if let Some(held) = self.owners.get(username) {
            if held.owner.subject == subject {
                return held.owner.clone();
            }
        }
        let owner = Arc::new(Owner {
            username: username.to_string(),
            subject: subject.to_string(),
            claims: OnceLock::new(),
        });
        let held = self
            .owners
            .entry(username.to_string())
            .or_insert_with(|| Owned {
                owner: owner.clone(),
                keys: HashSet::new(),
            });
        held.owner = owner.clone();
        owner
    }
}

#[derive(Debug, Default)]
pub(crate) struct KeyRing {
    keys: RwLock<Keys>,
}

impl KeyRing {
    /// The key for `presented`, as `ApiKeys::verify` answers for configured ones, and its
    /// grants under `roles` (the role graph of the caller's config).
    pub(crate) fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        now: u64,
        roles: &Arc<RoleGraph>,
    ) -> Result<(Arc<ApiKey>, Arc<Grants>), ApiKeyError> {
        let digest = apikey::digest_of(presented)?;
        let keys = self.read();
        let (held, entry) = keys
            .by_digest
            .get_key_value(&digest)
            .ok_or(ApiKeyError::Unknown)?;
        let key = entry.api_key(held, &keys.no_grants);
        apikey::admit(key, &digest, client, now)?;
        entry.used.store(now, Ordering::Relaxed);
        Ok((key.clone(), entry.roles.granted(roles)))
    }

    pub(crate) fn len(&self) -> usize {
        self.read().by_digest.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Key `id` as it is now in the database: `None` removes it.
    pub(crate) fn set(&self, id: &str, live: Option<LiveKey>) {
        let mut keys = self.write();
        if let Some(digest) = keys.by_id.get(id).copied() {
            remove(&mut keys, &digest);
        }
        if let Some(k) = live {
            insert(&mut keys, k);
        }
    }

    /// `owner`'s keys as they are now (none, for a user disabled or deleted).
    pub(crate) fn set_owner(&self, owner: &str, live: Vec<LiveKey>) {
        let mut keys = self.write();
        let held: Vec<[u8; 32]> = keys
            .owners
            .get(owner)
            .map(|o| o.keys.iter().copied().collect())
            .unwrap_or_default();
        for digest in held {
            remove(&mut keys, &digest);
        }
        for k in live {
            insert(&mut keys, k);
        }
    }

    /// The keys used since the last call, with when: what the flusher writes back.
    pub(crate) fn take_used(&self) -> Vec<(String, u64)> {
        self.read()
            .by_digest
            .values()
            .filter_map(|e| {
                let at = e.used.swap(0, Ordering::Relaxed);
                (at != 0).then(|| (e.id.to_string(), at))
            })
            .collect()
    }
}

/// The keys read at start, as their rows stream in.
impl KeySink for &KeyRing {
    fn expect(&mut self, rows: usize) {
        let mut keys = self.write();
        keys.by_digest.reserve(rows);
        keys.by_id.reserve(rows);
    }

    fn key(&mut self, live: LiveKey) {
        insert(&mut self.write(), live);
    }
}

fn remove(keys: &mut Keys, digest: &[u8; 32]) {
    let Some(e) = keys.by_digest.remove(digest) else {
        return;
    };
    keys.by_id.remove(&*e.id);
    let name = &e.owner.username;
    if let Some(held) = keys.owners.get_mut(name) {
        held.keys.remove(digest);
        if held.keys.is_empty() {
            keys.owners.remove(name);
        }
    }
}

/// Adds a key; a row that does not read as a key (which only a hand-edited database holds)
/// is left out with a warning.
fn insert(keys: &mut Keys, live: LiveKey) {
    let LiveKey {
        key: row,
        subject,
        owner_roles,
    } = live;
    let digest = hex::decode(&row.key_sha256)
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok());
    let allowed_ips: Option<Box<[IpNet]>> = row
        .allowed_ips
        .iter()
        .map(|s| crate::headers::parse_net(s))
        .collect();
    let (Some(digest), Some(allowed_ips)) = (digest, allowed_ips) else {
        tracing::warn!(id = %row.id, "an API key in users_db is unreadable: left out");
        return;
    };
    // Another key with this digest (only a hand-edited database holds one) gives way, so
    // that the indexes never name an entry that is not there.
    remove(keys, &digest);
    let owner = keys.owner(&row.username, &subject);
    if let Some(held) = keys.owners.get_mut(&row.username) {
        held.keys.insert(digest);
    }
    keys.by_id.insert(row.id.clone(), digest);
    let entry = Entry {
        id: row.id.into_boxed_str(),
        allowed_ips,
        expires_at: row.expires_at,
        created_at: row.created_at,
        owner,
        roles: keys.roles_of(row.roles, owner_roles),
        used: AtomicU64::new(0),
        key: OnceLock::new(),
    };
    keys.by_digest.insert(digest, entry);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::accounts::db::keys::KeyRow;

    fn graph(defs: &[(&str, &[&str], &[&str])]) -> Arc<RoleGraph> {
        let defs: BTreeMap<String, (Vec<String>, Vec<String>)> = defs
            .iter()
            .map(|(name, inherits, perms)| {
                let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
                (name.to_string(), (list(inherits), list(perms)))
            })
            .collect();
        Arc::new(RoleGraph::build(&defs).unwrap())
    }

    fn live(id: &str, owner: &str, key: &str, roles: &[&str], owner_roles: &[&str]) -> LiveKey {
        let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        LiveKey {
            key: KeyRow {
                id: id.into(),
                username: owner.into(),
                name: "ci".into(),
                prefix: key[..8].into(),
                key_sha256: apikey::sha256_hex(key),
                roles: strings(roles),
                allowed_ips: vec![],
                expires_at: None,
                created_at: 0,
                last_used_at: None,
            },
            subject: format!("sub-{owner}"),
            owner_roles: strings(owner_roles),
        }
    }

    fn add(mut ring: &KeyRing, key: LiveKey) {
        ring.key(key);
    }

    fn ring_with(key: &str, roles: &[&str], owner_roles: &[&str]) -> KeyRing {
        let ring = KeyRing::default();
        add(&ring, live("key_1", "ann", key, roles, owner_roles));
        ring
    }

    /// A reload's new roles are seen by requests of the new config only: a request still on
    /// the old one gets the grants of the old roles, before and after the new one asked.
    #[test]
    fn grants_follow_the_role_graph_of_the_asking_config() {
        let key = "pcs_0123456789abcdef0123456789abcdef";
        let ring = ring_with(key, &["ops"], &["ops"]);
        let old = graph(&[("ops", &[], &["deploy"])]);
        let new = graph(&[("ops", &[], &["deploy", "rollback"])]);
        let perms = |g: &Arc<RoleGraph>| {
            let (_, grants) = ring.verify(key, None, 0, g).unwrap();
            grants.permissions.iter().cloned().collect::<Vec<_>>()
        };
        assert_eq!(perms(&old), ["deploy"]);
        assert_eq!(perms(&new), ["deploy", "rollback"]);
        assert_eq!(
            perms(&old),
            ["deploy"],
            "the old config's request, after the reload"
        );
    }

    /// A key keeps only the roles its owner still has, under the asking config's inheritance.
    #[test]
    fn a_key_never_grants_more_than_its_owner_has() {
        let key = "pcs_fedcba9876543210fedcba9876543210";
        let ring = ring_with(key, &["admin", "viewer"], &["viewer"]);
        let g = graph(&[("admin", &["viewer"], &["*"]), ("viewer", &[], &["read"])]);
        let (k, grants) = ring.verify(key, None, 0, &g).unwrap();
        assert_eq!(k.subject, "sub-ann");
        assert_eq!(grants.roles.iter().collect::<Vec<_>>(), ["viewer"]);
        assert!(!grants.has_permission("write"));
        assert_eq!(
            ring.verify("pcs_unknown", None, 0, &g).unwrap_err(),
            ApiKeyError::Unknown
        );
    }

    /// Keys with the same roles share one grants allocation, whoever owns them; an owner's
    /// keys share one claims map. What sets them apart is not shared.
    #[test]
    fn keys_share_their_grants_and_their_owners_claims() {
        let (a, b, c, d) = (
            "pcs_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pcs_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "pcs_cccccccccccccccccccccccccccccccc",
            "pcs_dddddddddddddddddddddddddddddddd",
        );
        let ring = KeyRing::default();
        add(&ring, live("key_a", "ann", a, &["ops"], &["ops"]));
        add(&ring, live("key_b", "bob", b, &["ops"], &["ops"]));
        add(&ring, live("key_c", "ann", c, &["ops"], &["ops"]));
        add(&ring, live("key_d", "dan", d, &["ops"], &["ops", "dev"]));
        let g = graph(&[("ops", &[], &["deploy"]), ("dev", &[], &["build"])]);
        let [a, b, c, d] = [a, b, c, d].map(|k| ring.verify(k, None, 0, &g).unwrap());
        assert!(Arc::ptr_eq(&a.1, &b.1), "same roles, other owners");
        assert!(Arc::ptr_eq(&a.1, &c.1));
        assert!(!Arc::ptr_eq(&a.1, &d.1), "an owner with other roles");
        assert_eq!(a.1, d.1, "the same grants all the same");
        assert!(Arc::ptr_eq(&a.0.claims, &c.0.claims), "one owner");
        assert!(!Arc::ptr_eq(&a.0.claims, &b.0.claims));
        assert_eq!(b.0.claims.get("sub"), Some(&Value::from("sub-bob")));
    }

    /// An owner's keys go with the owner; removed keys no longer verify, and the others do.
    #[test]
    fn an_owners_keys_are_replaced_together() {
        let (a, b) = (
            "pcs_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pcs_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        );
        let ring = KeyRing::default();
        add(&ring, live("key_a", "ann", a, &["ops"], &["ops"]));
        add(&ring, live("key_b", "bob", b, &["ops"], &["ops"]));
        let g = graph(&[("ops", &[], &["deploy"])]);
        ring.set_owner("ann", vec![]);
        assert_eq!(ring.len(), 1);
        assert_eq!(
            ring.verify(a, None, 0, &g).unwrap_err(),
            ApiKeyError::Unknown
        );
        ring.set("key_b", None);
        assert_eq!(ring.len(), 0);
        ring.set("key_a", Some(live("key_a", "ann", a, &["ops"], &["ops"])));
        assert_eq!(ring.verify(a, None, 0, &g).unwrap().0.id, "key_a");
        let keys = ring.read();
        assert!(keys.owners.contains_key("ann") && !keys.owners.contains_key("bob"));
    }
}
