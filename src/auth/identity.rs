//! The verified caller, as later phases read it.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::auth::apikey::ApiKey;
use crate::claims::claim_at;
use crate::policy::roles::Grants;
use crate::ratelimit::Caller;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
    Cookie,
    /// A DPoP-bound token with its proof.
    Dpop,
    /// The connection's client certificate.
    Mtls,
}

impl AuthMethod {
    /// The value of the `method_header` and the `auth_method` log field.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Cookie => "cookie",
            AuthMethod::Dpop => "dpop",
            AuthMethod::Mtls => "mtls",
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
    /// `cnf`: what the token is bound to.
    pub binding: crate::auth::facts::Binding,
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
    /// Sender-constrained: a client certificate, or a token bound to one or to a DPoP key.
    pub bound: bool,
}

impl Identity {
    /// The claim at a dotted path (`org.id`), `sub` included.
    pub fn claim(&self, path: &[String]) -> Option<&Value> {
        claim_at(&self.claims, path)
    }

    /// Whether the credential shows a second factor: its `amr` (RFC 8176) holds `mfa`, as
    /// Portcullis's own tokens after a TOTP or backup code do, and as other issuers say.
    pub fn shows_second_factor(&self) -> bool {
        self.claims
            .get("amr")
            .and_then(|v| v.as_array())
            .is_some_and(|amr| amr.iter().any(|m| m.as_str() == Some("mfa")))
    }

    /// What rate-limit keys read of the caller.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            subject: &self.subject,
            api_key: self.api_key.as_ref().map(|k| k.id.as_str()),
            claims: &self.claims,
        }
    }
}
