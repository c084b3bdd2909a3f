//! The verified caller, as later phases read it.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::auth::apikey::ApiKey;
use crate::policy::roles::Grants;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
    Cookie,
}

impl AuthMethod {
    /// The value of the `method_header` and the `auth_method` log field.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Cookie => "cookie",
        }
    }
}

/// A verified JWT, as the token cache keeps it: what every later request with the same token
/// needs, computed once (grants included).
#[derive(Debug)]
pub struct VerifiedJwt {
    pub subject: String,
    pub grants: Arc<Grants>,
    pub claims: Arc<Map<String, Value>>,
    pub jti: Option<String>,
    pub sid: Option<String>,
    pub iat: Option<u64>,
    /// The issuer's fetched key set, whose generation the cache entry must match.
    pub remote: Option<Arc<crate::auth::jwks::RemoteJwks>>,
}

impl VerifiedJwt {
    pub fn keys_generation(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation())
    }
}

/// A caller whose credential verified.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub method: AuthMethod,
    /// Effective roles and permissions (an API key's are made once, at load).
    pub grants: Arc<Grants>,
    /// The verified token's claims (for an API key, just its subject as `sub`).
    pub claims: Arc<Map<String, Value>>,
    /// The API key used, for its own rate limit and the `api_key` rate-limit key.
    pub api_key: Option<Arc<ApiKey>>,
}

impl Identity {
    /// The claim at a dotted path (`org.id`), `sub` included.
    pub fn claim(&self, path: &[String]) -> Option<&Value> {
        claim_at(&self.claims, path)
    }
}

/// Walks a dotted claim path through nested objects.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first)?;
    for key in rest {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

/// A claim as a header value: strings as they are, arrays comma-joined, objects as compact JSON.
pub fn claim_header_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// A claim compared with a path segment (ownership): strings and numbers only.
pub fn claim_as_segment(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values() {
        assert_eq!(claim_header_value(&json!("a")).unwrap(), "a");
        assert_eq!(claim_header_value(&json!(["a", "b", 3])).unwrap(), "a,b,3");
        assert_eq!(
            claim_header_value(&json!({"k": [1]})).unwrap(),
            r#"{"k":[1]}"#
        );
        assert_eq!(claim_header_value(&json!(null)), None);
    }

    #[test]
    fn dotted_paths() {
        let c = json!({"org": {"id": "o1"}, "sub": "u"});
        let m = c.as_object().unwrap();
        assert_eq!(
            claim_at(m, &["org".into(), "id".into()]),
            Some(&json!("o1"))
        );
        assert_eq!(claim_at(m, &["sub".into(), "x".into()]), None);
    }
}
