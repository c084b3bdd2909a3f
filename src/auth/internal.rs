//! `[identity] internal_token`: a short-lived JWT for the upstream, signed with the gateway's
//! key, carrying the verified identity. `typ = "identity"` and `aud = "internal"`: it is never
//! accepted as an access token. Tokens are reused while more than half their life is left, so
//! that asymmetric signing (RS256 takes a millisecond) is not paid on every request.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use http::HeaderName;
use serde_json::{Map, Value};

use super::jwt::Signer;
use super::Identity;

/// Distinct identities whose tokens are kept; past that the cache starts over.
const MAX_CACHED: usize = 65_536;

#[derive(Debug)]
pub struct InternalToken {
    pub header: HeaderName,
    /// Seconds.
    pub ttl: u64,
    /// Identity digest -> (token, exp).
    cache: Mutex<HashMap<u64, (String, u64)>>,
}

impl InternalToken {
    pub fn new(header: HeaderName, ttl: u64) -> Self {
        InternalToken {
            header,
            ttl: ttl.max(1),
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
        let mut h = DefaultHasher::new();
        (
            &id.subject,
            id.method.as_str(),
            &id.grants.roles,
            &id.grants.permissions,
        )
            .hash(&mut h);
        let digest = h.finish();
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((token, exp)) = cache.get(&digest) {
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
        cache.insert(digest, (token.clone(), exp));
        Ok(token)
    }
}
