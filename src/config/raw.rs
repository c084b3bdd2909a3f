//! Serde mirrors of gateway.toml, exactly as written by the operator. Nothing here is checked
//! beyond its TOML type and key names: `validate` turns these into the compiled `Config`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
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
pub struct RawTlsFiles {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[serde(default = "default_backend")]
    pub backend: String,
    /// One URL, or a list: the seed nodes of a Redis Cluster.
    pub redis_url: Option<OneOrMany>,
    /// PEM CA certificates for `rediss://` (default: the system's roots).
    pub redis_ca_file: Option<String>,
    pub key_prefix: Option<String>,
    pub on_failure: Option<String>,
    pub max_staleness: Option<String>,
}

fn default_backend() -> String {
    "memory".to_string()
}

/// `[tokens]` without its `trusted_issuers`, which are read one by one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    pub issuer: String,
    pub audience: Option<String>,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
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
}

fn default_algorithm() -> String {
    "HS256".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPreviousKey {
    pub file: String,
    pub key_id: Option<String>,
    pub algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustedIssuer {
    pub issuer: String,
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<String>,
    pub public_key_file: Option<String>,
    pub secret: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub roles_claim: Option<String>,
    pub permissions_claim: Option<String>,
    pub jwks_refresh: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub enabled: Option<bool>,
    pub base_path: Option<String>,
    pub users_file: Option<String>,
    pub max_failed_attempts: Option<u32>,
    pub lockout: Option<String>,
    pub rate_limit: Option<String>,
    pub cookie: Option<RawCookie>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCookie {
    pub name: Option<String>,
    pub path: Option<String>,
    pub secure: Option<bool>,
    pub same_site: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
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
pub struct RawIdentity {
    pub subject_header: Option<String>,
    pub roles_header: Option<String>,
    pub permissions_header: Option<String>,
    pub method_header: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_credentials: bool,
    pub internal_token: Option<RawInternalToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInternalToken {
    pub header: Option<String>,
    pub ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub rate: String,
    pub burst: Option<u64>,
    pub key: OneOrMany,
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
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
pub struct RawHealthCheck {
    pub path: Option<String>,
    pub interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub path: String,
    pub methods: Option<Vec<String>>,
    pub upstream: String,
    #[serde(default = "default_auth")]
    pub auth: String,
    pub accept: Option<Vec<String>>,
    #[serde(default)]
    pub roles_any: Vec<String>,
    #[serde(default)]
    pub permissions_all: Vec<String>,
    #[serde(default)]
    pub rate_limit: Vec<String>,
    pub strip_prefix: Option<String>,
    pub owner: Option<RawOwner>,
}

fn default_auth() -> String {
    "required".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOwner {
    pub param: String,
    pub claim: Option<String>,
    #[serde(default)]
    pub unless_roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token: Option<String>,
}
