//! `[identity] internal_token`: a short-lived JWT for the upstream, signed with the gateway's
//! key, carrying the verified identity. `typ = "identity"` and `aud = "internal"`: it is never
//! accepted as an access token. Tokens are reused while more than half their life is left, so
//! that asymmetric signing (RS256 takes a millisecond) is not paid on every request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use http::HeaderName;
use serde_json::{Map, Value};

use super::jwt::Signer;
use super::Identity;

/// Distinct identities whose tokens are kept; past that the cache starts over.
const MAX_CACHED: usize = 65_536;

/// `internal_token = { header, ttl }` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTokenSettings {
    pub header: HeaderName,
    /// Seconds.
    pub ttl: u64,
}

/// Signs (and reuses) the tokens of `internal_token`.
#[derive(Debug)]
pub struct InternalToken {
    pub header: HeaderName,
    /// Seconds.
    pub ttl: u64,
    /// Identity -> (token, exp). Keyed by the identity itself, never a digest of it: no two
    /// identities can share a token.
    cache: Mutex<HashMap<Vec<u8>, (String, u64)>>,
}

impl InternalToken {
    pub fn new(settings: &InternalTokenSettings) -> Self {
        InternalToken {
            header: settings.header.clone(),
            ttl: settings.ttl.max(1),
            cache: Mutex::default(),
        }
    }

    /// The token for `id` at `now`: a cached one while more than half its life is left.
    pub fn token(
        &self,
        signer: &Signer,
        id: &Identity,
        now: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let key = identity_key(id);
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((token, exp)) = cache.get(&key) {
                if *exp > now + self.ttl / 2 {
                    return Ok(token.clone());
                }
            }
        }
        let exp = now + self.ttl;
        let mut claims = Map::new();
        claims.insert("iss".into(), signer.issuer.clone().into());
        claims.insert("sub".into(), id.subject.clone().into());
        claims.insert("aud".into(), "internal".into());
        claims.insert("typ".into(), "identity".into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("auth_method".into(), id.method.as_str().into());
        let list = |set: &std::collections::BTreeSet<String>| -> Value {
            set.iter().cloned().collect::<Vec<_>>().into()
        };
        claims.insert("roles".into(), list(&id.grants.roles));
        claims.insert("permissions".into(), list(&id.grants.permissions));
        let token = signer.sign(&claims)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, (token.clone(), exp));
        Ok(token)
    }
}

/// Everything the token says, each part length-prefixed so that no two identities give the
/// same bytes.
fn identity_key(id: &Identity) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    let mut part = |tag: u8, s: &str| {
        key.push(tag);
        key.extend_from_slice(&(s.len() as u64).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    };
    part(b's', &id.subject);
    part(b'm', id.method.as_str());
    for r in &id.grants.roles {
        part(b'r', r);
    }
    for p in &id.grants.permissions {
        part(b'p', p);
    }
    key
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::AuthMethod;
    use crate::policy::roles::Grants;

    fn id(subject: &str, roles: &[&str], perms: &[&str]) -> Identity {
        Identity {
            subject: subject.into(),
            method: AuthMethod::Jwt,
            grants: Arc::new(Grants::new(
                roles.iter().map(|s| s.to_string()).collect(),
                perms.iter().map(|s| s.to_string()).collect(),
            )),
            claims: Arc::default(),
            api_key: None,
            bound: false,
        }
    }

    #[test]
    fn distinct_identities_never_share_a_key() {
        // Identities whose parts concatenate alike are told apart.
        let all = [
            id("ab", &["c"], &[]),
            id("a", &["bc"], &[]),
            id("a", &["b", "c"], &[]),
            id("a", &[], &["b", "c"]),
            id("a", &["b"], &["c"]),
        ];
        let keys: std::collections::HashSet<Vec<u8>> = all.iter().map(identity_key).collect();
        assert_eq!(keys.len(), all.len());
        assert_eq!(identity_key(&all[0]), identity_key(&id("ab", &["c"], &[])));
    }
}
