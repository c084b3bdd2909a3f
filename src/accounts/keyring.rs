//! The database's API keys in memory: what the proxy checks a presented key against, with no
//! database round trip. The change follower keeps it current; each key notes when it was last
//! used, and a flusher writes that back now and then.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

use super::db::keys::LiveKey;
use crate::auth::apikey::{self, subject_claims, ApiKey};
use crate::error::ApiKeyError;
use crate::policy::roles::RoleGraph;

/// One key, and when it was last used (0: not since the last flush).
#[derive(Debug)]
struct Entry {
    key: Arc<ApiKey>,
    owner: String,
    used: AtomicU64,
}

#[derive(Debug, Default)]
struct Keys {
    by_digest: HashMap<[u8; 32], Arc<Entry>>,
    by_id: HashMap<String, [u8; 32]>,
    by_owner: HashMap<String, HashSet<String>>,
    /// The rows as loaded, to regrant them when the roles change.
    rows: HashMap<String, LiveKey>,
}

#[derive(Debug, Default)]
pub(crate) struct KeyRing {
    keys: RwLock<Keys>,
    roles: RwLock<Arc<RoleGraph>>,
}

impl KeyRing {
    pub(crate) fn new(roles: Arc<RoleGraph>) -> KeyRing {
        KeyRing {
            keys: RwLock::default(),
            roles: RwLock::new(roles),
        }
    }

    /// The key for `presented`, as `ApiKeys::verify` answers for configured ones.
    pub(crate) fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<Arc<ApiKey>, ApiKeyError> {
        let digest = apikey::digest_of(presented)?;
        let entry = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            keys.by_digest.get(&digest).cloned()
        };
        let entry = entry.ok_or(ApiKeyError::Unknown)?;
        apikey::admit(&entry.key, &digest, client, now)?;
        entry.used.store(now, Ordering::Relaxed);
        Ok(entry.key.clone())
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
        let roles = self.roles();
        let mut fresh = Keys::default();
        for k in live {
            insert(&mut fresh, &roles, k);
        }
        *self.write() = fresh;
    }

    /// Key `id` as it is now in the database: `None` removes it.
    pub(crate) fn set(&self, id: &str, live: Option<LiveKey>) {
        let roles = self.roles();
        let mut keys = self.write();
        remove(&mut keys, id);
        if let Some(k) = live {
            insert(&mut keys, &roles, k);
        }
    }

    /// `owner`'s keys as they are now (none, for a user disabled or deleted).
    pub(crate) fn set_owner(&self, owner: &str, live: Vec<LiveKey>) {
        let roles = self.roles();
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
            insert(&mut keys, &roles, k);
        }
    }

    /// The roles of a new config: every key's grants are expanded again.
    pub(crate) fn set_roles(&self, roles: Arc<RoleGraph>) {
        *self.roles.write().unwrap_or_else(|e| e.into_inner()) = roles.clone();
        let mut keys = self.write();
        let rows: Vec<LiveKey> = keys.rows.values().cloned().collect();
        *keys = Keys::default();
        for k in rows {
            insert(&mut keys, &roles, k);
        }
    }

    /// The keys used since the last call, with when: what the flusher writes back.
    pub(crate) fn take_used(&self) -> Vec<(String, u64)> {
        self.read()
            .by_digest
            .values()
            .filter_map(|e| {
                let at = e.used.swap(0, Ordering::Relaxed);
                (at != 0).then(|| (e.key.id.clone(), at))
            })
            .collect()
    }

    fn roles(&self) -> Arc<RoleGraph> {
        self.roles.read().unwrap_or_else(|e| e.into_inner()).clone()
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
    keys.rows.remove(id);
}

/// Adds a key; a row that does not read as a key (which only a hand-edited database holds)
/// is left out with a warning.
fn insert(keys: &mut Keys, roles: &RoleGraph, live: LiveKey) {
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
    // The owner may have lost roles since the key was made: the key keeps only those its
    // owner still has (directly or inherited).
    let owner = roles.grants(&live.owner_roles, &[]);
    let kept: Vec<String> = row
        .roles
        .iter()
        .filter(|r| owner.roles.contains(*r))
        .cloned()
        .collect();
    let key = ApiKey {
        id: row.id.clone(),
        digest,
        subject: live.subject.clone(),
        grants: Arc::new(roles.grants(&kept, &[])),
        roles: kept,
        permissions: Vec::new(),
        allowed_ips,
        expires_at: row.expires_at,
        rate_limit: None,
        claims: subject_claims(&live.subject),
    };
    let entry = Arc::new(Entry {
        key: Arc::new(key),
        owner: row.username.clone(),
        used: AtomicU64::new(0),
    });
    keys.by_id.insert(row.id.clone(), digest);
    keys.by_owner
        .entry(row.username.clone())
        .or_default()
        .insert(row.id.clone());
    keys.by_digest.insert(digest, entry);
    keys.rows.insert(row.id.clone(), live);
}
