//! The sections of gateway.toml, validated: plain data, no state (docs/CONFIG.md).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use http::HeaderName;

use crate::accounts::policy::PasswordPolicy;
use crate::accounts::users::Users;
use crate::auth::internal::InternalTokenSettings;
pub(crate) use crate::config::raw::Forwarded;
use crate::headers::{ClientHeaders, TrustedProxies, Wired};
use crate::ratelimit::PolicyId;
use crate::store::RedisSettings;

/// A secret from the config: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: String) -> Self {
        Secret(s)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub(crate) struct StoreSettings {
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
pub(crate) enum Backend {
    Memory,
    Redis(RedisSettings),
}

/// What a request that needs revocation state gets when that state is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnFailure {
    /// 503 `unavailable`.
    #[default]
    Closed,
    /// Served; the outage is logged.
    Open,
}

#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
    pub threads: Option<usize>,
    /// `;` in a path is an ordinary character (pipeline step 4); off by default.
    pub allow_path_semicolons: bool,
    /// IPv6 clients are counted by this prefix in `ip`-keyed limits (a host has a /64).
    pub ipv6_prefix: u8,
}

impl ServerSettings {
    /// The address an `ip` rate-limit key counts a client under: IPv4 as it is, IPv6 by its
    /// `ipv6_prefix` network (an IPv4-mapped address as the IPv4 one).
    pub(crate) fn limit_ip(&self, ip: IpAddr) -> IpAddr {
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
pub(crate) struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Client certificates asked for in the handshake.
    pub client: Option<super::sender::ClientCerts>,
}

/// `[identity]`: the headers upstreams receive.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub subject: Wired,
    pub roles: Wired,
    pub permissions: Wired,
    pub method: Wired,
    /// Dotted claim path -> header.
    pub claims: Vec<(Vec<String>, HeaderName)>,
    pub forward_credentials: bool,
    /// `internal_token`: a signed identity for the upstream.
    pub internal_token: Option<InternalTokenSettings>,
    /// `issuer_header`: the verified token's `iss` (`api_key` for keys), so that upstreams key
    /// users by issuer and subject.
    pub issuer: Option<Wired>,
    /// Every header above: stripped from each incoming request.
    pub all: Vec<HeaderName>,
    /// What pipeline step 3 removes from every request: these headers, their `_` aliases, and
    /// the rewrite and forwarding headers.
    pub client_headers: ClientHeaders,
}

/// `[login]`, compiled.
#[derive(Debug)]
pub(crate) struct LoginSettings {
    pub base_path: String,
    /// The read-only users file (none with `users_db`), watched for changes.
    pub users_file: Option<PathBuf>,
    /// Its users (none with `users_db`).
    pub users: Users,
    /// The writable user store.
    pub users_db: Option<UsersDb>,
    /// `POST /auth/register`: on, and the roles it gives.
    pub registration: Option<Vec<String>>,
    /// A login before the user's email is verified is refused (403 `email_unverified`).
    pub require_verified_email: bool,
    pub password_policy: PasswordPolicy,
    pub max_failed_attempts: u32,
    /// Seconds.
    pub lockout: u64,
    /// One budget per client IP over login, token and mfa.
    pub rate_limit: Option<PolicyId>,
    pub cookie: Option<CookieSettings>,
    /// Seconds after a refresh token is spent during which it still yields its successor
    /// (two tabs, a retried request), instead of revoking the session.
    pub refresh_reuse_grace: u64,
    /// Seconds: how recent a login must be to make keys and change MFA.
    pub reauth_within: u64,
    pub max_api_keys_per_user: usize,
    /// Seconds: the lifetime of a key made without `expires_at`, and the longest allowed.
    pub api_key_ttl: u64,
    /// Seconds without a refresh after which a session ends (0: never).
    pub session_idle_timeout: u64,
    /// Seconds after its login after which no refresh succeeds.
    pub session_max_lifetime: u64,
    /// Live sessions a user may hold (0: no cap); the oldest is ended to make room.
    pub max_sessions_per_user: usize,
}

/// `[decision]` (docs/DECISION.md).
#[derive(Debug, Clone)]
pub(crate) struct DecisionSettings {
    pub listen: Vec<SocketAddr>,
    /// Where the judged request is described; the other forms are ignored.
    pub forwarded: Forwarded,
    /// The front proxies that may ask (apart from `[server] trusted_proxies`): their
    /// `X-Forwarded-For`, `-Proto` and `-Host` describe the client.
    pub trusted_proxies: TrustedProxies,
    /// With `forwarded = "path"`: Envoy's `ext_authz` puts this before the path.
    pub path_prefix: Option<String>,
}

/// `[login] users_db` and the `db_key` that seals TOTP secrets in it.
#[derive(Debug, Clone)]
pub(crate) struct UsersDb {
    /// What sqlx connects to (a relative SQLite path made absolute, created when missing).
    pub url: Secret,
    pub db_key: Secret,
}

#[derive(Debug, Clone)]
pub(crate) struct CookieSettings {
    pub name: String,
    pub path: String,
    pub secure: bool,
    pub same_site: SameSite,
}

/// The login cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// The refresh cookie is the session cookie's name and this.
pub(crate) const REFRESH_SUFFIX: &str = "_refresh";

impl CookieSettings {
    /// `Set-Cookie` carrying the access token `token` for `max_age` seconds; an empty token
    /// clears it.
    pub(crate) fn set_cookie(
        &self,
        token: &str,
        max_age: u64,
    ) -> Result<http::HeaderValue, crate::error::GatewayError> {
        self.cookie(&self.name, token, max_age)
    }

    /// The refresh cookie's name.
    pub(crate) fn refresh_name(&self) -> String {
        format!("{}{REFRESH_SUFFIX}", self.name)
    }

    /// `Set-Cookie` carrying the refresh token (same attributes).
    pub(crate) fn set_refresh_cookie(
        &self,
        token: &str,
        max_age: u64,
    ) -> Result<http::HeaderValue, crate::error::GatewayError> {
        self.cookie(&self.refresh_name(), token, max_age)
    }

    /// Both cookies of a token pair.
    pub(crate) fn set_pair(
        &self,
        access: &str,
        access_max_age: u64,
        refresh: &str,
        refresh_max_age: u64,
    ) -> Result<[http::HeaderValue; 2], crate::error::GatewayError> {
        Ok([
            self.set_cookie(access, access_max_age)?,
            self.set_refresh_cookie(refresh, refresh_max_age)?,
        ])
    }

    /// `name=token` with the attributes. The name and path are checked at load and tokens
    /// are ours (ASCII): a value that still is no header value is refused as a fault, never
    /// sent mangled.
    fn cookie(
        &self,
        name: &str,
        token: &str,
        max_age: u64,
    ) -> Result<http::HeaderValue, crate::error::GatewayError> {
        let same_site = match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        };
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={token}; Path={}; Max-Age={max_age}; HttpOnly{secure}; SameSite={same_site}",
            self.path
        );
        http::HeaderValue::try_from(text).map_err(|_| {
            tracing::error!("a session cookie is not a header value: not set");
            crate::error::GatewayError::Unavailable
        })
    }
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

/// One `[[oidc]]` provider, checked (nothing fetched: discovery is the runtime's).
#[derive(Debug, Clone)]
pub(crate) struct OidcSettings {
    /// In the endpoints' paths: ASCII letters, digits and `-`.
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub redirect_uri: url::Url,
    /// `openid` first, always.
    pub scopes: Vec<String>,
    /// Dotted paths into the ID token (then userinfo) claims.
    pub subject_claim: Vec<String>,
    pub roles_claim: Option<Vec<String>>,
    pub roles_map: Vec<(String, Vec<String>)>,
    pub default_roles: Vec<String>,
    pub claims: Vec<String>,
    /// Claim values a user must have.
    pub require: Vec<(String, serde_json::Value)>,
    /// Serialised origins `rd` may name besides the gateway's.
    pub allowed_redirects: Vec<String>,
    /// DER CA certificates the provider's TLS is verified with (else the system's roots).
    pub ca_certs: Option<Vec<Vec<u8>>>,
    /// Seconds between discovery fetches.
    pub discovery_refresh: u64,
}

impl PartialEq for OidcSettings {
    /// The same provider, as fetched: what a reload may carry over.
    fn eq(&self, other: &Self) -> bool {
        self.issuer == other.issuer
            && self.ca_certs == other.ca_certs
            && self.name == other.name
            && self.discovery_refresh == other.discovery_refresh
    }
}

/// How Portcullis authenticates to the provider's token endpoint.
#[derive(Clone)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic`.
    Secret(Secret),
    /// `private_key_jwt` (RFC 7523), its public key in the gateway's JWKS.
    PrivateKey {
        key: jsonwebtoken::EncodingKey,
        algorithm: jsonwebtoken::Algorithm,
        kid: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("client_secret_basic(***)"),
            ClientAuth::PrivateKey { algorithm, kid, .. } => {
                write!(f, "private_key_jwt({algorithm:?}, {kid})")
            }
        }
    }
}

/// `[mail]`: where the reset and verification mails go out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MailSettings {
    /// `smtp://` or `smtps://`, credentials included: never logged.
    pub url: Secret,
    /// `smtp://` only: refuse a server that offers no STARTTLS.
    pub starttls_required: bool,
    /// A checked mailbox: `Name <addr@host>` or `addr@host`.
    pub from: String,
    /// The page of the app that takes a reset token: `{token}` in it.
    pub link: Option<String>,
    /// The same, for a verification token.
    pub verify_link: Option<String>,
    /// DER CA certificates the server's TLS is verified with (else the system's roots).
    pub ca_certs: Option<Vec<Vec<u8>>>,
}

/// `[audit]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AuditSettings {
    /// Every audit event is also stored in `users_db`.
    pub database: bool,
    /// Seconds stored rows are kept.
    pub retention: u64,
}
