//! Serde mirrors of gateway.toml, exactly as written by the operator. Nothing here is checked
//! beyond its TOML type and key names: `validate` turns these into the compiled `Config`.

use std::collections::BTreeMap;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Deserializer};

use crate::auth::keys::parse_algorithm;
use crate::config::{OnFailure, SameSite};
use crate::policy::{AuthMode, CredentialKind};

/// A closed choice of gateway.toml, as read: its value, or why the string is none of them.
/// The validator reports the latter at its key, so that the section's other keys are still
/// checked (a failed serde enum would end the whole section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice<T> {
    Is(T),
    Not(String),
}

/// A type read from a closed set of strings.
pub(crate) trait Choose: Sized {
    fn choose(s: &str) -> Result<Self, String>;
}

impl<T: Default> Default for Choice<T> {
    fn default() -> Self {
        Choice::Is(T::default())
    }
}

impl<'de, T: Choose> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match T::choose(&s) {
            Ok(v) => Choice::Is(v),
            Err(why) => Choice::Not(why),
        })
    }
}

macro_rules! choice {
    ($ty:ty { $($text:literal => $variant:expr),+ $(,)? }) => {
        impl Choose for $ty {
            fn choose(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($variant),)+
                    other => Err(format!(
                        "`{other}` is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

choice!(AuthMode { "required" => AuthMode::Required, "optional" => AuthMode::Optional, "none" => AuthMode::None });
choice!(CredentialKind { "jwt" => CredentialKind::Jwt, "api_key" => CredentialKind::ApiKey, "cookie" => CredentialKind::Cookie, "mtls" => CredentialKind::Mtls });
choice!(OnFailure { "closed" => OnFailure::Closed, "open" => OnFailure::Open });
choice!(SameSite { "Strict" => SameSite::Strict, "Lax" => SameSite::Lax, "None" => SameSite::None });
choice!(BackendKind { "memory" => BackendKind::Memory, "redis" => BackendKind::Redis });
choice!(Scope { "local" => Scope::Local, "global" => Scope::Global });
choice!(Forwarded { "x-forwarded" => Forwarded::XForwardedHeaders, "x-original" => Forwarded::XOriginal, "path" => Forwarded::Path });

/// `[decision] forwarded`: the one place a decision request describes the request judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik, Caddy).
    XForwardedHeaders,
    /// `X-Original-Method` and `X-Original-URI` (nginx, set by the operator).
    XOriginal,
    /// The decision request's own method and path, less `path_prefix` (Envoy `ext_authz`).
    Path,
}

impl Choose for Algorithm {
    fn choose(s: &str) -> Result<Self, String> {
        parse_algorithm(s)
    }
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum BackendKind {
    #[default]
    Memory,
    Redis,
}

/// A rate-limit policy's `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Scope {
    #[default]
    Local,
    Global,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Vec<String>,
    pub admin_listen: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub tls: Option<RawTlsFiles>,
    pub threads: Option<usize>,
    #[serde(default)]
    pub allow_path_semicolons: bool,
    pub ipv6_prefix: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsFiles {
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: Option<String>,
    pub client_auth: Option<String>,
    #[serde(default)]
    pub client_crl_files: Vec<String>,
}

/// `[mtls]`: a client certificate as a credential.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMtls {
    pub subject_from: Option<Vec<String>>,
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub default_roles: Vec<String>,
}

/// `[dpop]`: proofs of possession (RFC 9449).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpop {
    pub algorithms: Option<Vec<String>>,
    pub max_age: Option<String>,
    #[serde(default)]
    pub require_nonce: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(default)]
    pub backend: Choice<BackendKind>,
    /// One URL, or a list: the seed nodes of a Redis Cluster.
    pub redis_url: Option<OneOrMany>,
    /// PEM CA certificates for `rediss://` (default: the system's roots).
    pub redis_ca_file: Option<String>,
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub on_failure: Choice<OnFailure>,
    pub max_staleness: Option<String>,
}

/// `[tokens]` without its `trusted_issuers`, which are read one by one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokens {
    pub issuer: String,
    pub audience: Option<String>,
    #[serde(default = "default_algorithm")]
    pub algorithm: Choice<Algorithm>,
    pub secret: Option<String>,
    pub private_key_file: Option<String>,
    pub key_id: Option<String>,
    #[serde(default)]
    pub previous_keys: Vec<RawPreviousKey>,
    #[serde(default)]
    pub previous_secrets: Vec<String>,
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    pub leeway: Option<String>,
    pub max_ttl: Option<String>,
    /// Tokens issued on a connection with a client certificate carry its `cnf` (RFC 8705).
    #[serde(default)]
    pub bind_to_certificate: bool,
}

fn default_algorithm() -> Choice<Algorithm> {
    Choice::Is(Algorithm::HS256)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPreviousKey {
    pub file: String,
    pub key_id: Option<String>,
    pub algorithm: Option<Choice<Algorithm>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrustedIssuer {
    pub issuer: String,
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<String>,
    pub public_key_file: Option<String>,
    pub secret: Option<String>,
    pub algorithms: Option<Vec<Choice<Algorithm>>>,
    pub roles_claim: Option<String>,
    pub permissions_claim: Option<String>,
    pub jwks_refresh: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogin {
    pub enabled: Option<bool>,
    pub base_path: Option<String>,
    pub users_file: Option<String>,
    pub users_db: Option<String>,
    pub db_key: Option<String>,
    pub registration: Option<RawRegistration>,
    pub password_policy: Option<RawPasswordPolicy>,
    pub max_failed_attempts: Option<u32>,
    pub lockout: Option<String>,
    pub rate_limit: Option<String>,
    pub cookie: Option<RawCookie>,
    pub refresh_reuse_grace: Option<String>,
    pub reauth_within: Option<String>,
    pub max_api_keys_per_user: Option<usize>,
    pub api_key_ttl: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub session_max_lifetime: Option<String>,
    pub max_sessions_per_user: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistration {
    pub enabled: Option<bool>,
    pub roles: Option<Vec<String>>,
    /// A login before the email is verified is refused.
    pub require_verified_email: Option<bool>,
}

/// `[mail]` (docs/CONFIG.md, `[mail]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMail {
    pub smtp_url: String,
    pub starttls: Option<String>,
    pub from: String,
    pub link: Option<String>,
    pub verify_link: Option<String>,
    pub ca_file: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub database: Option<bool>,
    pub retention: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPasswordPolicy {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub reject_common: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCookie {
    pub name: Option<String>,
    pub path: Option<String>,
    pub secure: Option<bool>,
    #[serde(default)]
    pub same_site: Choice<SameSite>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    pub id: String,
    pub key_sha256: String,
    pub subject: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<String>,
    pub rate_limit: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    pub subject_header: Option<String>,
    pub roles_header: Option<String>,
    pub permissions_header: Option<String>,
    pub method_header: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_credentials: bool,
    pub internal_token: Option<RawInternalToken>,
    pub issuer_header: Option<String>,
}

/// `[response]`: headers added to every upstream answer that lacks them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponse {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInternalToken {
    pub header: Option<String>,
    pub ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub rate: String,
    pub burst: Option<u64>,
    pub key: OneOrMany,
    #[serde(default)]
    pub scope: Choice<Scope>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub name: String,
    pub targets: Vec<String>,
    #[serde(default)]
    pub tls: bool,
    pub sni: Option<String>,
    pub ca_file: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub health_check: Option<RawHealthCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    pub path: Option<String>,
    pub interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub name: Option<String>,
    pub path: String,
    pub methods: Option<Vec<String>>,
    pub upstream: String,
    #[serde(default)]
    pub auth: Choice<AuthMode>,
    pub accept: Option<Vec<Choice<CredentialKind>>>,
    #[serde(default)]
    pub roles_any: Vec<String>,
    #[serde(default)]
    pub permissions_all: Vec<String>,
    #[serde(default)]
    pub rate_limit: Vec<String>,
    pub strip_prefix: Option<String>,
    pub owner: Option<RawOwner>,
    /// `false`: the route answers no cross-origin request.
    pub cors: Option<bool>,
    #[serde(default)]
    pub require_mfa: bool,
    /// Only sender-constrained credentials: mTLS, certificate- or DPoP-bound tokens.
    #[serde(default)]
    pub sender_constrained: bool,
    /// `"refuse"` (default) or `"redirect:NAME"`: a browser without a credential is sent to
    /// the `[[oidc]]` provider NAME.
    pub unauthenticated: Option<String>,
    /// Added to the route's upstream answers that lack them, over `[response] headers`.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
}

/// One `[[oidc]]` provider (docs/CONFIG.md, `[[oidc]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_key_file: Option<String>,
    pub redirect_uri: String,
    pub scopes: Option<Vec<String>>,
    pub subject_claim: Option<String>,
    pub roles_claim: Option<String>,
    #[serde(default)]
    pub roles_map: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub default_roles: Vec<String>,
    #[serde(default)]
    pub claims: Vec<String>,
    #[serde(default)]
    pub require: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub allowed_redirects: Vec<String>,
    pub ca_file: Option<String>,
    pub discovery_refresh: Option<String>,
}

/// `[decision]` (docs/DECISION.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDecision {
    pub listen: Vec<String>,
    pub forwarded: Option<Choice<Forwarded>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub path_prefix: Option<String>,
}

/// `[cors]` (docs/CONFIG.md, `[cors]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCors {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Option<Vec<String>>,
    pub allowed_headers: Option<Vec<String>>,
    pub expose_headers: Option<Vec<String>>,
    #[serde(default)]
    pub allow_credentials: bool,
    pub max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOwner {
    pub param: String,
    pub claim: Option<String>,
    #[serde(default)]
    pub unless_roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub token: Option<String>,
}
