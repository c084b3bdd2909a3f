//! gateway.toml: `raw` mirrors the file, `validate` compiles it into a `Config`, and `source`
//! reports every error with `file:line:col` and its key path. A `Config` is plain data: what
//! lives with it (buckets, fetched keys, upstream health, caches) is the runtime's.

pub(crate) mod raw;
pub(crate) mod sender;
mod settings;
pub(crate) mod source;
pub(crate) mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::apikey::ApiKeys;
use crate::auth::jwt::{Issuer, Lifetimes, Signer};
use crate::headers::TrustedProxies;
use crate::policy::{RoleGraph, Route};
use crate::ratelimit::PolicySpec;
use crate::upstream::UpstreamSettings;

pub use settings::IdentitySettings;
pub(crate) use settings::{
    AuditSettings, Backend, ClientAuth, CookieSettings, DecisionSettings, Forwarded, LoginSettings,
    MailSettings, OidcSettings, OnFailure, SameSite, Secret, ServerSettings, StoreSettings,
    TlsFiles, UsersDb, REFRESH_SUFFIX,
};
pub use source::ConfigErrors;
pub use validate::{load, Loaded};
pub(crate) use validate::{load_text, users_file, users_text};

/// A validated configuration: everything the request path needs, compiled.
#[derive(Debug)]
pub struct Config {
    pub(crate) path: PathBuf,
    pub(crate) server: ServerSettings,
    pub(crate) trusted_proxies: TrustedProxies,
    /// Every issuer whose tokens are accepted, Portcullis's own first.
    pub(crate) issuers: Vec<Arc<Issuer>>,
    pub(crate) lifetimes: Lifetimes,
    pub(crate) api_keys: ApiKeys,
    /// Signs Portcullis's own tokens; `None` without `[tokens]`.
    pub(crate) signer: Option<Signer>,
    /// `/.well-known/jwks.json`, rendered once.
    pub(crate) jwks: Bytes,
    pub(crate) roles: Arc<RoleGraph>,
    pub(crate) identity: IdentitySettings,
    /// By [`crate::upstream::UpstreamId`].
    pub(crate) upstreams: Vec<UpstreamSettings>,
    pub(crate) routes: Vec<Arc<Route>>,
    /// Every rate-limit policy, API keys' and login's own included, by
    /// [`crate::ratelimit::PolicyId`].
    pub(crate) rate_limits: Vec<PolicySpec>,
    /// `[login]`: the built-in endpoints, when enabled.
    pub(crate) login: Option<LoginSettings>,
    /// `[store]`.
    pub(crate) store: StoreSettings,
    /// `[admin] token`: without it the admin API is off.
    pub(crate) admin_token: Option<Secret>,
    /// `[cors]`: browsers on other origins.
    pub(crate) cors: Option<crate::policy::cors::Cors>,
    /// `[decision]`: the listener other proxies ask.
    pub(crate) decision: Option<DecisionSettings>,
    /// `[[oidc]]`: the OpenID Providers browsers sign in with.
    pub(crate) oidc: Vec<Arc<OidcSettings>>,
    /// `[mail]`: reset and verification mails (with `users_db`).
    pub(crate) mail: Option<MailSettings>,
    /// `[audit]`.
    pub(crate) audit: AuditSettings,
    /// `[mtls]`: a client certificate as a credential.
    pub(crate) mtls: Option<sender::MtlsSettings>,
    /// `[dpop]`: proofs of possession (verified with its defaults when not configured).
    pub(crate) dpop: sender::Dpop,
    /// `[tokens] bind_to_certificate`.
    pub(crate) bind_to_certificate: bool,
}

impl Config {
    /// Until when a revocation made at `now` must hold: as long as any token it covers could
    /// still be accepted (`max_ttl` and the leeway).
    pub fn revocation_until(&self, now: u64) -> u64 {
        now + self.lifetimes.max_ttl + self.lifetimes.leeway
    }

    /// The rules account changes follow under this config.
    pub(crate) fn account_rules(&self) -> crate::accounts::service::Rules<'_> {
        static DEFAULT_POLICY: std::sync::LazyLock<crate::accounts::policy::PasswordPolicy> =
            std::sync::LazyLock::new(Default::default);
        crate::accounts::service::Rules {
            password_policy: self
                .login
                .as_ref()
                .map_or(&*DEFAULT_POLICY, |l| &l.password_policy),
            roles: &self.roles,
            revocation_memory: self.revocation_until(0),
            issuer: self.signer.as_ref().map_or("", |s| s.issuer.as_str()),
            max_keys: self.login.as_ref().map_or(25, |l| l.max_api_keys_per_user),
            key_ttl: self.login.as_ref().map_or(90 * 86400, |l| l.api_key_ttl),
        }
    }

    /// The login cookie's name, when login sets one: a credential like a bearer token.
    pub fn session_cookie(&self) -> Option<&str> {
        self.login
            .as_ref()
            .and_then(|l| l.cookie.as_ref())
            .map(|c| c.name.as_str())
    }
}
