//! `[[oidc]]`: the OpenID Providers browsers sign in with (docs/CONFIG.md, `[[oidc]]`). Checked
//! here without fetching anything: discovery and the provider's keys are the runtime's.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::{root, Validator};
use crate::auth::keys;
use crate::config::raw::RawOidc;
use crate::config::source::KeyPath;
use crate::config::{ClientAuth, LoginSettings, OidcSettings, SameSite, Secret};

const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
const DEFAULT_DISCOVERY_REFRESH: Duration = Duration::from_secs(3600);

impl Validator<'_> {
    /// Every `[[oidc]]` provider, and the public keys of those that authenticate with a key
    /// (served in the JWKS).
    pub(super) fn oidc(
        &self,
        roles: &HashSet<String>,
        login: Option<&LoginSettings>,
        signs: bool,
    ) -> (Vec<OidcSettings>, Vec<jsonwebtoken::jwk::Jwk>) {
        let p = root("oidc");
        let mut providers: Vec<OidcSettings> = Vec::new();
        let mut public = Vec::new();
        for (i, raw) in self.array::<RawOidc>(self.table.get("oidc"), &p) {
            let op = p.index(i);
            let cookie = login.and_then(|l| l.cookie.as_ref());
            if !signs || cookie.is_none() {
                let why = "needs [login] with a cookie and [tokens] that sign: a provider's \
                           login becomes a Portcullis browser session";
                self.err(&op, why);
            }
            if cookie.is_some_and(|c| c.same_site == SameSite::Strict) && i == 0 {
                let why = "with same_site = \"Strict\" the browser does not send the session \
                           cookie on the redirect back from the provider: use \"Lax\"";
                self.warn(&root("login").key("cookie").key("same_site"), why);
            }
            let Some((provider, jwk)) = self.provider(&raw, &op, roles) else {
                continue;
            };
            if providers.iter().any(|o| o.name == provider.name) {
                let why = format!("provider `{}` is configured twice", provider.name);
                self.err(&op.key("name"), why);
            }
            public.extend(jwk);
            providers.push(provider);
        }
        (providers, public)
    }

    fn provider(
        &self,
        raw: &RawOidc,
        p: &KeyPath,
        roles: &HashSet<String>,
    ) -> Option<(OidcSettings, Option<jsonwebtoken::jwk::Jwk>)> {
        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 40
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok {
            self.err(&p.key("name"), "1 to 40 ASCII letters, digits and `-`");
        }
        self.provider_url(&raw.issuer, &p.key("issuer"));
        if raw.client_id.is_empty() {
            self.err(&p.key("client_id"), "must not be empty");
        }
        let redirect_uri = match url::Url::parse(&raw.redirect_uri) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Some(u),
            _ => {
                let at = p.key("redirect_uri");
                self.err(&at, "must be the absolute http(s) URL of the callback");
                None
            }
        };
        for (k, list) in &raw.roles_map {
            self.check_roles(list, &p.key("roles_map").key(k), roles);
        }
        self.check_roles(&raw.default_roles, &p.key("default_roles"), roles);
        for (i, claim) in raw.claims.iter().enumerate() {
            if crate::claims::RESERVED.contains(&claim.as_str()) {
                self.err(
                    &p.key("claims").index(i),
                    format!("`{claim}` is set by Portcullis"),
                );
            }
        }
        let (client_auth, jwk) = self.client_auth(raw, p)?;
        let mut scopes = vec!["openid".to_string()];
        let asked = raw
            .scopes
            .clone()
            .unwrap_or_else(|| DEFAULT_SCOPES.map(String::from).to_vec());
        scopes.extend(asked.into_iter().filter(|s| s != "openid"));
        let path = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        let refresh = self.duration(
            &p.key("discovery_refresh"),
            raw.discovery_refresh.as_deref(),
            DEFAULT_DISCOVERY_REFRESH,
        );
        let settings = OidcSettings {
            name: raw.name.clone(),
            issuer: raw.issuer.trim_end_matches('/').to_string(),
            client_id: raw.client_id.clone(),
            client_auth,
            redirect_uri: redirect_uri?,
            scopes,
            subject_claim: path(raw.subject_claim.as_deref().unwrap_or("sub")),
            roles_claim: raw.roles_claim.as_deref().map(path),
            roles_map: raw.roles_map.clone().into_iter().collect(),
            default_roles: raw.default_roles.clone(),
            claims: raw.claims.clone(),
            require: self.require(raw, p),
            allowed_redirects: self.origins(&raw.allowed_redirects, &p.key("allowed_redirects")),
            ca_certs: match &raw.ca_file {
                Some(f) => Some(self.ca_file(f, &p.key("ca_file"))?),
                None => None,
            },
            discovery_refresh: refresh.as_secs().max(1),
        };
        Some((settings, jwk))
    }

    /// A provider that is also a trusted issuer whose audience would take its ID tokens (of
    /// audience `client_id`) as access tokens.
    pub(super) fn warn_trusted_providers(
        &self,
        providers: &[OidcSettings],
        issuers: &[std::sync::Arc<crate::auth::jwt::Issuer>],
    ) {
        for (i, provider) in providers.iter().enumerate() {
            let trusted = issuers
                .iter()
                .find(|t| t.iss.trim_end_matches('/') == provider.issuer);
            let takes_id_tokens = trusted.is_some_and(|t| {
                t.audience
                    .as_deref()
                    .is_none_or(|a| a == provider.client_id)
            });
            if takes_id_tokens {
                let why = "this provider is also a trusted issuer whose audience would take its \
                           ID tokens as access tokens: give the trusted issuer the audience of \
                           its access tokens";
                self.warn(&root("oidc").index(i).key("issuer"), why);
            }
        }
    }

    /// An issuer (or any provider URL): https, or http with a warning off loopback.
    fn provider_url(&self, url: &str, p: &KeyPath) {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
                let loopback = match u.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                };
                if u.scheme() == "http" && !loopback {
                    self.warn(
                        p,
                        "plain http: the provider's answers can be changed on the way; use https",
                    );
                }
            }
            _ => self.err(p, "must be an https:// (or http://) URL"),
        }
    }

    /// `client_secret` (client_secret_basic) or `client_key_file` (private_key_jwt), one.
    fn client_auth(
        &self,
        raw: &RawOidc,
        p: &KeyPath,
    ) -> Option<(ClientAuth, Option<jsonwebtoken::jwk::Jwk>)> {
        match (&raw.client_secret, &raw.client_key_file) {
            (Some(secret), None) => {
                if secret.is_empty() {
                    self.err(&p.key("client_secret"), "must not be empty");
                }
                Some((ClientAuth::Secret(Secret::new(secret.clone())), None))
            }
            (None, Some(file)) => {
                let at = p.key("client_key_file");
                let pem = self.read_file(&at, file)?;
                let loaded = [Algorithm::RS256, Algorithm::ES256]
                    .into_iter()
                    .find_map(|alg| Some((alg, keys::load_pem(&pem, alg).ok()?)));
                let Some((algorithm, key)) = loaded else {
                    self.err(&at, "must hold an RSA or P-256 private key (PEM)");
                    return None;
                };
                let Some(encoding) = key.encoding else {
                    self.err(&at, "must hold a private key, not a public one");
                    return None;
                };
                let mut jwk = key.jwk;
                let kid = keys::thumbprint(&jwk);
                jwk.common.key_id = Some(kid.clone());
                let auth = ClientAuth::PrivateKey {
                    key: encoding,
                    algorithm,
                    kid,
                };
                Some((auth, Some(jwk)))
            }
            _ => {
                self.err(
                    p,
                    "exactly one of `client_secret`, `client_key_file` is needed",
                );
                None
            }
        }
    }

    /// `require`: claim -> the value it must have (TOML values, compared as JSON).
    fn require(&self, raw: &RawOidc, p: &KeyPath) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        for (claim, value) in &raw.require {
            match serde_json::to_value(value) {
                Ok(v) => out.push((claim.clone(), v)),
                Err(_) => self.err(&p.key("require").key(claim), "not a plain value"),
            }
        }
        out
    }

    /// Serialised origins (scheme, host, port unless the scheme's default).
    fn origins(&self, list: &[String], p: &KeyPath) -> Vec<String> {
        let mut out = Vec::new();
        for (i, o) in list.iter().enumerate() {
            match crate::policy::cors::origin_of(o) {
                Some(origin) if origin == o.trim_end_matches('/') => out.push(origin),
                _ => self.err(
                    &p.index(i),
                    "must be an origin such as \"https://app.example.com\"",
                ),
            }
        }
        out
    }
}
