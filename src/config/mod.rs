//! gateway.toml: `raw` mirrors the file, `validate` compiles it into a `Config`, and `source`
//! reports every error with `file:line:col` and its key path.

pub mod duration;
pub mod raw;
pub mod source;
pub mod users;
pub mod validate;

use std::net::{IpAddr, SocketAddr};
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
    /// Until when a revocation made at `now` must hold: as long as any token it covers could
    /// still be accepted (SPEC section 3 step 8).
    pub fn revocation_until(&self, now: u64) -> u64 {
        now + self.verifier.max_ttl + self.verifier.leeway
    }

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
    /// `;` in a path is an ordinary character (SPEC step 4); off by default.
    pub allow_path_semicolons: bool,
    /// IPv6 clients are counted by this prefix in `ip`-keyed limits (a host has a /64).
    pub ipv6_prefix: u8,
}

impl ServerSettings {
    /// The address an `ip` rate-limit key counts a client under: IPv4 as it is, IPv6 by its
    /// `ipv6_prefix` network (an IPv4-mapped address as the IPv4 one).
    pub fn limit_ip(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => ipnet::Ipv6Net::new(v6, self.ipv6_prefix)
                    .map(|n| IpAddr::V6(n.trunc().addr()))
                    .unwrap_or(ip),
            },
        }
    }
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
    /// What SPEC step 3 removes from every request: these headers, their `_` aliases, and
    /// the rewrite and forwarding headers.
    pub client_headers: crate::headers::ClientHeaders,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_network() {
        let server = ServerSettings {
            listen: vec![],
            admin_listen: None,
            tls: None,
            threads: None,
            allow_path_semicolons: false,
            ipv6_prefix: 64,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            server.limit_ip(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            server.limit_ip(ip("2001:db8:1:2::ffff")),
            server.limit_ip(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(
            server.limit_ip(ip("2001:db8:1:2::1")),
            server.limit_ip(ip("2001:db8:1:3::1"))
        );
        assert_eq!(server.limit_ip(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(server.limit_ip(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
