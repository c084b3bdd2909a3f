//! API keys: looked up by the SHA-256 digest of the presented key, so the key itself is never
//! stored; the digest match is confirmed in constant time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiKeyError;
use crate::policy::roles::Grants;
use crate::ratelimit::PolicyId;

/// The recognisable prefix of keys made by `portcullis new-api-key`.
pub(crate) const KEY_PREFIX: &str = "pcs_";

/// One `[[api_keys]]` entry, compiled.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Shown in logs and metrics; the key itself never is.
    pub id: String,
    pub digest: [u8; 32],
    pub subject: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    /// Empty: any client IP.
    pub allowed_ips: Vec<IpNet>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// When a user made it (`None`: a configured key, which counts as made at the epoch):
    /// revocations of its owner made after that spare it.
    pub issued_at: Option<u64>,
    /// The key's own `rate_limit`, checked after the route's policies.
    pub rate_limit: Option<PolicyId>,
    /// Its effective roles and permissions, expanded at load. A key users made has none
    /// here: they depend on the asking config's roles, and `KeyRing::verify` answers them
    /// beside the key.
    pub grants: Arc<Grants>,
    /// `{"sub": subject}`: ownership rules name `sub` by default, and a key's subject answers.
    pub claims: Arc<Map<String, Value>>,
}

/// The claims an API key presents: its subject as `sub`.
pub(crate) fn subject_claims(subject: &str) -> Arc<Map<String, Value>> {
    let mut claims = Map::new();
    claims.insert("sub".into(), subject.into());
    Arc::new(claims)
}

/// Every configured key by digest.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Arc<ApiKey>>,
}

impl ApiKeys {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        ApiKeys {
            by_digest: keys.into_iter().map(|k| (k.digest, Arc::new(k))).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The key for `presented`, if it is configured, unexpired at `now` and allowed from `client`.
    pub fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<Arc<ApiKey>, ApiKeyError> {
        let digest = digest_of(presented)?;
        let key = self.by_digest.get(&digest).ok_or(ApiKeyError::Unknown)?;
        admit(key, &digest, client, now)?;
        Ok(key.clone())
    }
}

/// The digest keys are looked up by; an empty key is refused before it is hashed.
pub(crate) fn digest_of(presented: &str) -> Result<[u8; 32], ApiKeyError> {
    if presented.is_empty() {
        return Err(ApiKeyError::Empty);
    }
    Ok(Sha256::digest(presented.as_bytes()).into())
}

/// The checks after a key was found by `digest`: the digest again (in constant time), the
/// expiry, the allowed networks.
pub(crate) fn admit(
    key: &ApiKey,
    digest: &[u8; 32],
    client: Option<IpAddr>,
    now: u64,
) -> Result<(), ApiKeyError> {
    // The map lookup compares digests, not secrets; confirm in constant time all the same.
    if !bool::from(key.digest.ct_eq(digest)) {
        return Err(ApiKeyError::Unknown);
    }
    if key.expires_at.is_some_and(|exp| now >= exp) {
        return Err(ApiKeyError::Expired);
    }
    if !key.allowed_ips.is_empty() {
        let allowed = client.is_some_and(|ip| key.allowed_ips.iter().any(|n| n.contains(&ip)));
        if !allowed {
            return Err(ApiKeyError::NotFromThisAddress);
        }
    }
    Ok(())
}

/// A new key: the prefix and 256 bits from the OS, base64url.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// RFC 3339 (`2027-01-01T00:00:00Z`, with an offset) -> Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let bad =
        || format!("`{s}` is not an RFC 3339 date-time with an offset (e.g. 2027-01-01T00:00:00Z)");
    let dt: toml::value::Datetime = s.parse().map_err(|_| bad())?;
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        return Err(bad());
    };
    let offset_minutes: i64 = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => minutes as i64,
    };
    let days = days_from_civil(date.year as i64, date.month as i64, date.day as i64);
    let secs =
        days * 86400 + time.hour as i64 * 3600 + time.minute as i64 * 60 + time.second as i64
            - offset_minutes * 60;
    u64::try_from(secs).map_err(|_| bad())
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(allowed: &[&str], expires_at: Option<u64>) -> (ApiKeys, String) {
        let key = generate();
        let k = ApiKey {
            id: "k1".into(),
            digest: Sha256::digest(key.as_bytes()).into(),
            subject: "svc".into(),
            roles: vec![],
            permissions: vec![],
            allowed_ips: allowed.iter().map(|s| s.parse().unwrap()).collect(),
            expires_at,
            issued_at: None,
            rate_limit: None,
            grants: Default::default(),
            claims: subject_claims("svc"),
        };
        (ApiKeys::new(vec![k]), key)
    }

    #[test]
    fn keys_verify_by_digest_with_expiry_and_ip_rules() {
        let (keys, key) = store(&[], Some(1000));
        assert_eq!(keys.verify(&key, None, 999).unwrap().id, "k1");
        assert_eq!(
            keys.verify(&key, None, 1000).unwrap_err(),
            ApiKeyError::Expired
        );
        assert_eq!(
            keys.verify("pcs_wrong", None, 0).unwrap_err(),
            ApiKeyError::Unknown
        );
        let (keys, key) = store(&["10.0.0.0/8", "2001:db8::/32"], None);
        assert!(keys
            .verify(&key, Some("10.1.2.3".parse().unwrap()), 0)
            .is_ok());
        assert!(keys
            .verify(&key, Some("2001:db8::1".parse().unwrap()), 0)
            .is_ok());
        assert!(keys
            .verify(&key, Some("192.0.2.1".parse().unwrap()), 0)
            .is_err());
        assert!(keys.verify(&key, None, 0).is_err());
    }

    #[test]
    fn generated_keys_are_prefixed_and_long() {
        let a = generate();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43, "256 bits in base64url");
        assert_ne!(a, generate());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("2027-01-01T00:00:00Z").unwrap(), 1798761600);
        assert_eq!(
            parse_rfc3339("2027-01-01T01:00:00+01:00").unwrap(),
            1798761600
        );
        assert!(parse_rfc3339("2027-01-01").is_err());
        assert!(parse_rfc3339("2027-01-01T00:00:00").is_err());
    }
}
