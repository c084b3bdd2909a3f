//! The database's API keys in memory: what the proxy checks a presented key against, with no
//! database round trip. The change follower keeps it current; each key notes when it was last
//! used, and a flusher writes that back now and then.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;

use super::db::keys::LiveKey;
use crate::auth::apikey::{self, subject_claims, ApiKey};
use crate::error::ApiKeyError;
use crate::policy::roles::RoleGraph;

/// One key, and when it was last used (0: not since the last flush).
#[derive(Debug)]
struct Entry {
    /// The key with no grants yet: they depend on the roles of a config.
    base: ApiKey,
    /// The roles the key was made with, and its owner's now.
    made_with: Vec<String>,
    owner_roles: Vec<String>,
    owner: String,
    used: AtomicU64,
    /// The key granted under the last role graph that asked: each runtime's requests see its
    /// own config's roles, and a reload touches no key until a request of the new one asks.
    granted: ArcSwapOption<Granted>,
}

#[derive(Debug)]
struct Granted {
    roles: Arc<RoleGraph>,
    key: Arc<ApiKey>,
}

impl Entry {
    fn granted(&self, roles: &Arc<RoleGraph>) -> Arc<ApiKey> {
        if let Some(g) = self.granted.load().as_ref() {
            if Arc::ptr_eq(&g.roles, roles) {
                return g.key.clone();
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
        let key = Arc::new(ApiKey {
            grants: Arc::new(roles.grants(&kept, &[])),
            roles: kept,
            ..self.base.clone()
        });
        self.granted.store(Some(Arc::new(Granted {
            roles: roles.clone(),
            key: key.clone(),
        })));
        key
    }
}

#[derive(Debug, Default)]
struct Keys {
    by_digest: HashMap<[u8; 32], Arc<Entry>>,
    by_id: HashMap<String, [u8; 32]>,
    by_owner: HashMap<String, HashSet<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct KeyRing {
    keys: RwLock<Keys>,
}

impl KeyRing {
    /// The key for `presented`, as `ApiKeys::verify` answers for configured ones, granted
    /// under `roles` (the role graph of the caller's config).
    pub(crate) fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        now: u64,
        roles: &Arc<RoleGraph>,
    ) -> Result<Arc<ApiKey>, ApiKeyError> {
        let digest = apikey::digest_of(presented)?;
        let entry = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            keys.by_digest.get(&digest).cloned()
        };
        let entry = entry.ok_or(ApiKeyError::Unknown)?;
        apikey::admit(&entry.base, &digest, client, now)?;
        entry.used.store(now, Ordering::Relaxed);
        Ok(entry.granted(roles))
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

    /// Every key, as loaded at start.
    pub(crate) fn replace_all(&self, live: Vec<LiveKey>) {
        let mut fresh = Keys::default();
        for k in live {
            insert(&mut fresh, k);
        }
        *self.write() = fresh;
    }

    /// Key `id` as it is now in the database: `None` removes it.
    pub(crate) fn set(&self, id: &str, live: Option<LiveKey>) {
        let mut keys = self.write();
        remove(&mut keys, id);
        if let Some(k) = live {
            insert(&mut keys, k);
        }
    }

    /// `owner`'s keys as they are now (none, for a user disabled or deleted).
    pub(crate) fn set_owner(&self, owner: &str, live: Vec<LiveKey>) {
        let mut keys = self.write();
        let ids: Vec<String> = keys
            .by_owner
            .get(owner)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            remove(&mut keys, &id);
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
                (at != 0).then(|| (e.base.id.clone(), at))
            })
            .collect()
    }
}

fn remove(keys: &mut Keys, id: &str) {
    if let Some(digest) = keys.by_id.remove(id) {
        if let Some(e) = keys.by_digest.remove(&digest) {
            if let Some(ids) = keys.by_owner.get_mut(&e.owner) {
                ids.remove(id);
                if ids.is_empty() {
                    keys.by_owner.remove(&e.owner);
                }
            }
        }
    }
}

/// Adds a key; a row that does not read as a key (which only a hand-edited database holds)
/// is left out with a warning.
fn insert(keys: &mut Keys, live: LiveKey) {
    let row = &live.key;
    let digest = hex::decode(&row.key_sha256)
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok());
    let allowed_ips: Option<Vec<IpNet>> = row
        .allowed_ips
        .iter()
        .map(|s| crate::headers::parse_net(s))
        .collect();
    let (Some(digest), Some(allowed_ips)) = (digest, allowed_ips) else {
        tracing::warn!(id = %row.id, "an API key in users_db is unreadable: left out");
        return;
    };
    let base = ApiKey {
        id: row.id.clone(),
        digest,
        subject: live.subject.clone(),
        grants: Arc::default(),
        roles: Vec::new(),
        permissions: Vec::new(),
        allowed_ips,
        expires_at: row.expires_at,
        issued_at: Some(row.created_at),
        rate_limit: None,
        claims: subject_claims(&live.subject),
    };
    let entry = Arc::new(Entry {
        base,
        made_with: row.roles.clone(),
        owner_roles: live.owner_roles.clone(),
        owner: row.username.clone(),
        used: AtomicU64::new(0),
        granted: ArcSwapOption::empty(),
    });
    keys.by_id.insert(row.id.clone(), digest);
    keys.by_owner
        .entry(row.username.clone())
        .or_default()
        .insert(row.id.clone());
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

    fn ring_with(key: &str, roles: &[&str], owner_roles: &[&str]) -> KeyRing {
        let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ring = KeyRing::default();
        ring.replace_all(vec![LiveKey {
            key: KeyRow {
                id: "key_1".into(),
                username: "ann".into(),
                name: "ci".into(),
                prefix: key[..8].into(),
                key_sha256: apikey::sha256_hex(key),
                roles: strings(roles),
                allowed_ips: vec![],
                expires_at: None,
                created_at: 0,
                last_used_at: None,
            },
            subject: "sub-ann".into(),
            owner_roles: strings(owner_roles),
        }]);
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
            let k = ring.verify(key, None, 0, g).unwrap();
            k.grants.permissions.iter().cloned().collect::<Vec<_>>()
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
        let k = ring.verify(key, None, 0, &g).unwrap();
        assert_eq!(k.roles, ["viewer"]);
        assert!(!k.grants.has_permission("write"));
        assert_eq!(
            ring.verify("pcs_unknown", None, 0, &g).unwrap_err(),
            ApiKeyError::Unknown
        );
    }
}
