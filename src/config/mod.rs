//! gateway.toml: `raw` mirrors the file, `validate` compiles it into a `Config`, and `source`
//! reports every error with `file:line:col` and its key path.

pub mod duration;
pub mod raw;
pub mod source;
pub mod users;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderName;

use crate::auth::apikey::ApiKeys;
use crate::auth::jwt::{Signer, Verifier};
use crate::headers::TrustedProxies;
use crate::login::LoginSettings;
use crate::policy::{RoleGraph, Route};
use crate::proxy::upstream::UpstreamPool;
use crate::ratelimit::Policy;
use crate::store::RedisSettings;

pub use source::{ConfigError, ConfigErrors};
pub use validate::{load, load_after, Loaded};

/// A validated configuration: everything the request path needs, compiled.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub server: ServerSettings,
    pub trusted_proxies: TrustedProxies,
    pub verifier: Verifier,
    pub api_keys: ApiKeys,
    /// Signs Portcullis's own tokens; `None` without `[tokens]`.
    pub signer: Option<Signer>,
    /// `/.well-known/jwks.json`, rendered once.
    pub jwks: Bytes,
    pub roles: RoleGraph,
    pub identity: IdentitySettings,
    pub upstreams: Vec<Arc<UpstreamPool>>,
    pub routes: Vec<Arc<Route>>,
    /// Every rate-limit policy, API keys' and login's own included: the pruner walks them.
    pub rate_limits: Vec<Arc<Policy>>,
    /// `[login]`: the built-in endpoints, when enabled.
    pub login: Option<LoginSettings>,
    /// `[store]`.
    pub store: StoreSettings,
    /// `[admin] token`: without it the admin API is off.
    pub admin_token: Option<Secret>,
    /// The trusted issuers' `jwks_url` key sets, fetched in the background.
    pub remote_jwks: Vec<Arc<crate::auth::jwks::RemoteJwks>>,
    /// Verified tokens, by digest. Part of the config: a reload starts it empty.
    pub token_cache: crate::auth::cache::TokenCache<crate::auth::identity::VerifiedJwt>,
}

/// A secret from the config: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub backend: Backend,
    pub on_failure: OnFailure,
    /// Seconds the revocation state may go unconfirmed before `on_failure` applies.
    pub max_staleness: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: Backend::Memory,
            on_failure: OnFailure::Closed,
            max_staleness: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Backend {
    Memory,
    Redis(RedisSettings),
}

/// What a request that needs revocation state gets when that state is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// 503 `unavailable`.
    Closed,
    /// Served; the outage is logged.
    Open,
}

impl Config {
    /// The login cookie's name, when login sets one: a credential like a bearer token.
    pub fn session_cookie(&self) -> Option<&str> {
        self.login
            .as_ref()
            .and_then(|l| l.cookie.as_ref())
            .map(|c| c.name.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
    pub threads: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[identity]`: the headers upstreams receive.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub subject: HeaderName,
    pub roles: HeaderName,
    pub permissions: HeaderName,
    pub method: HeaderName,
    /// Dotted claim path -> header.
    pub claims: Vec<(Vec<String>, HeaderName)>,
    pub forward_credentials: bool,
    /// `internal_token`: a signed identity for the upstream.
    pub internal_token: Option<Arc<crate::auth::internal::InternalToken>>,
    /// Every header above: stripped from each incoming request.
    pub all: Vec<HeaderName>,
}
