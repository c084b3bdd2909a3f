//! Raw config -> `Config`. Every problem is collected, with its key path and position, and
//! reported together; nothing half-valid is ever returned.

mod login;
mod rate_limits;
mod store;

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use http::{HeaderName, Method};
use ipnet::IpNet;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use toml::de::{DeTable, DeValue};

use super::duration::parse_duration;
use super::raw::*;
use super::source::{deserialize, span_of, ConfigError, ConfigErrors, KeyPath, SourceFile};
use super::{Config, IdentitySettings, Secret, ServerSettings, TlsFiles};
use crate::auth::apikey::{self, subject_claims, ApiKey, ApiKeys};
use crate::auth::jwks::RemoteJwks;
use crate::auth::jwt::{ClaimPaths, Issuer, Signer, Verifier};
use crate::auth::keys::{self, parse_algorithm, Family, VerifyKey};
use crate::headers::TrustedProxies;
use crate::policy::route::{AuthMode, CredentialKind, Owner, PathPattern, Route};
use crate::policy::RoleGraph;
use crate::proxy::upstream::{HealthCheckSettings, UpstreamPool, UpstreamSettings};
use crate::ratelimit::Policy;
use rate_limits::Policies;

/// Every host on an IPv6 network gets a /64: counting by the full address would give a client
/// 2^64 budgets.
const DEFAULT_IPV6_PREFIX: u8 = 64;

/// `[tokens] max_ttl`: the longest lifetime of a token accepted, and how long revocations last.
const DEFAULT_MAX_TTL: u64 = 30 * 86400;

/// Verified tokens kept per config: enough for the active tokens of a busy deployment.
const TOKEN_CACHE_CAPACITY: usize = 16_384;

/// A loaded config and the warnings `check` prints.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigError>,
}

const SECTIONS: &[&str] = &[
    "server",
    "store",
    "tokens",
    "login",
    "roles",
    "api_keys",
    "identity",
    "rate_limits",
    "upstreams",
    "routes",
    "admin",
];

/// Reads, validates and compiles a gateway.toml.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_after(path, None)
}

/// As `load`, for a reload: rate-limit policies whose name and budget are unchanged keep
/// counting in the running config's limiters, so a reload resets no budget.
pub fn load_after(path: &Path, previous: Option<&Config>) -> Result<Loaded, ConfigErrors> {
    let src = SourceFile::read(path)?;
    let Some(table) = src.parse() else {
        return Err(src.take_errors());
    };
    let v = Validator {
        src: &src,
        table: &table,
        base: src.base_dir(),
        previous,
    };
    let config = v.config();
    if src.has_errors() {
        return Err(src.take_errors());
    }
    Ok(Loaded {
        config: config.expect("no errors means a config"),
        warnings: src.take_warnings(),
    })
}

struct Validator<'a> {
    src: &'a SourceFile,
    table: &'a DeTable<'a>,
    base: PathBuf,
    /// The running config, on a reload.
    previous: Option<&'a Config>,
}

fn root(k: &str) -> KeyPath {
    KeyPath::root().key(k)
}

impl<'a> Validator<'a> {
    fn err(&self, path: &KeyPath, msg: impl Into<String>) {
        self.src
            .error_at(span_of(self.table, path), Some(path.clone()), msg.into());
    }

    fn warn(&self, path: &KeyPath, msg: impl Into<String>) {
        self.src
            .warn_at(span_of(self.table, path), Some(path.clone()), msg.into());
    }

    fn section<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        deserialize(self.src, self.table.get(key)?, &root(key))
    }

    /// An array of tables, each element deserialised on its own so that every bad element is
    /// reported. Returns the elements that parsed, with their indices.
    fn array<T: serde::de::DeserializeOwned>(
        &self,
        value: Option<&toml::Spanned<DeValue<'a>>>,
        path: &KeyPath,
    ) -> Vec<(usize, T)> {
        let Some(value) = value else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.err(path, "expected an array of tables");
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| deserialize(self.src, item, &path.index(i)).map(|t| (i, t)))
            .collect()
    }

    /// The limiter for a policy: the running config's, when it has the same policy.
    fn limiter(
        &self,
        name: &str,
        key: &[crate::ratelimit::KeyPart],
        quota: crate::ratelimit::Quota,
        global: bool,
    ) -> Arc<dyn crate::ratelimit::Limiter> {
        use crate::ratelimit::{GlobalLimiter, LocalLimiter};
        let kept = self.previous.and_then(|c| {
            c.rate_limits
                .iter()
                .find_map(|p| p.limiter_if_same(name, key, quota, global))
        });
        kept.unwrap_or_else(|| {
            if global {
                Arc::new(GlobalLimiter::new(name, quota))
            } else {
                Arc::new(LocalLimiter::new(quota))
            }
        })
    }

    fn resolve(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn read_file(&self, path: &KeyPath, file: &str) -> Option<Vec<u8>> {
        let full = self.resolve(file);
        match std::fs::read(&full) {
            Ok(b) => Some(b),
            Err(e) => {
                self.err(path, format!("cannot read `{}`: {e}", full.display()));
                None
            }
        }
    }

    fn duration(&self, path: &KeyPath, value: Option<&str>, default: &str) -> std::time::Duration {
        let s = value.unwrap_or(default);
        parse_duration(s).unwrap_or_else(|e| {
            self.err(path, e);
            parse_duration(default).expect("defaults parse")
        })
    }

    fn config(&self) -> Option<Config> {
        for (k, _) in self.table.iter() {
            if !SECTIONS.contains(&k.get_ref().as_ref()) {
                self.src.error_at(
                    Some(k.span()),
                    None,
                    format!("unknown section `{}`", k.get_ref()),
                );
            }
        }
        let raw_server = self.raw_server();
        let server = raw_server.as_ref().map(|r| self.server(r));
        let trusted_proxies = raw_server
            .as_ref()
            .map(|r| self.trusted_proxies(r))
            .unwrap_or_default();
        let (roles, role_names) = self.roles();
        let (issuers, signer, jwks, (leeway, max_ttl)) = self.tokens();
        let identity = self.identity();
        let upstreams = self.upstreams();
        let remote_jwks: Vec<Arc<RemoteJwks>> =
            issuers.iter().filter_map(|i| i.remote.clone()).collect();
        let verifier = Verifier::new(issuers, leeway, max_ttl);
        let store = self.store();
        let shared = matches!(store.backend, crate::config::Backend::Redis(_));
        let policies = self.rate_limits(shared);
        let (api_keys, key_policies) = self.api_keys(&role_names, roles.as_ref());
        let login = self.login(&role_names, signer.is_some(), shared);
        // An invalid section has its own errors; routes are checked as if it were valid.
        let mut configured = Vec::new();
        if self.table.contains_key("tokens") {
            configured.push(CredentialKind::Jwt);
        }
        if self.table.contains_key("api_keys") {
            configured.push(CredentialKind::ApiKey);
        }
        if login.as_ref().is_some_and(|l| l.cookie.is_some()) {
            configured.push(CredentialKind::Cookie);
        }
        let routes = self.routes(&upstreams, &role_names, &configured, &policies);
        let listed: Vec<_> = routes
            .iter()
            .flat_map(|r| r.rate_limits.iter().cloned())
            .collect();
        self.warn_unused(&policies, &listed);
        Some(Config {
            path: self.src.path.clone(),
            server: server?,
            trusted_proxies,
            verifier,
            api_keys,
            signer,
            jwks: jwks.into(),
            roles: roles?,
            identity: identity?,
            upstreams: upstreams.into_values().collect(),
            routes,
            rate_limits: policies
                .into_values()
                .chain(key_policies)
                .chain(login.as_ref().and_then(|l| l.rate_limit.clone()))
                .collect(),
            login,
            store,
            admin_token: self.admin_token(raw_server.as_ref()),
            remote_jwks,
            token_cache: crate::auth::cache::TokenCache::new(TOKEN_CACHE_CAPACITY),
        })
    }

    /// `[admin] token`: at least 16 characters, and only useful with `admin_listen`.
    fn admin_token(&self, server: Option<&RawServer>) -> Option<Secret> {
        let raw = self.section::<RawAdmin>("admin")?;
        let token = raw.token?;
        let p = root("admin").key("token");
        if token.len() < 16 {
            self.err(
                &p,
                "must be at least 16 characters (e.g. `openssl rand -base64 32`)",
            );
        }
        if server.is_some_and(|s| s.admin_listen.is_none()) {
            self.warn(
                &p,
                "no [server] admin_listen: the admin API has nowhere to listen",
            );
        }
        Some(Secret::new(token))
    }

    fn raw_server(&self) -> Option<RawServer> {
        if !self.table.contains_key("server") {
            self.src.error_at(
                None,
                None,
                "missing section `[server]` (with `listen`)".into(),
            );
            return None;
        }
        self.section::<RawServer>("server")
    }

    fn server(&self, raw: &RawServer) -> ServerSettings {
        let p = root("server");
        if raw.listen.is_empty() {
            self.err(&p.key("listen"), "at least one address is needed");
        }
        let mut listen = Vec::new();
        for (i, a) in raw.listen.iter().enumerate() {
            match a.parse::<SocketAddr>() {
                Ok(addr) => listen.push(addr),
                Err(_) => self.err(
                    &p.key("listen").index(i),
                    format!("`{a}` is not an IP:port address"),
                ),
            }
        }
        let admin_listen = raw.admin_listen.as_deref().and_then(|a| match a.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.err(
                    &p.key("admin_listen"),
                    format!("`{a}` is not an IP:port address"),
                );
                None
            }
        });
        let tls = raw.tls.as_ref().map(|t| {
            let tp = p.key("tls");
            for (k, f) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
                if let Some(bytes) = self.read_file(&tp.key(k), f) {
                    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
                        self.err(&tp.key(k), "not a PEM file");
                    }
                }
            }
            TlsFiles {
                cert_file: self.resolve(&t.cert_file),
                key_file: self.resolve(&t.key_file),
            }
        });
        if raw.threads == Some(0) {
            self.err(&p.key("threads"), "must be at least 1");
        }
        let ipv6_prefix = raw.ipv6_prefix.unwrap_or(DEFAULT_IPV6_PREFIX);
        if !(1..=128).contains(&ipv6_prefix) {
            self.err(
                &p.key("ipv6_prefix"),
                "must be a prefix length from 1 to 128",
            );
        }
        ServerSettings {
            listen,
            admin_listen,
            tls,
            threads: raw.threads,
            allow_path_semicolons: raw.allow_path_semicolons,
            ipv6_prefix,
        }
    }

    fn trusted_proxies(&self, raw: &RawServer) -> TrustedProxies {
        TrustedProxies(self.networks(&raw.trusted_proxies, &root("server").key("trusted_proxies")))
    }

    /// CIDRs (or single addresses) at `path`; each unreadable one is an error.
    fn networks(&self, list: &[String], path: &KeyPath) -> Vec<IpNet> {
        list.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let net = parse_net(s);
                if net.is_none() {
                    self.err(&path.index(i), format!("`{s}` is not a CIDR or IP address"));
                }
                net
            })
            .collect()
    }

    /// Every role named at `path` must be declared in `[roles]`.
    fn check_roles(&self, list: &[String], path: &KeyPath, declared: &HashSet<String>) {
        for (i, role) in list.iter().enumerate() {
            if !declared.contains(role) {
                self.err(
                    &path.index(i),
                    format!("unknown role `{role}` (declare it in [roles])"),
                );
            }
        }
    }

    /// The compiled graph (when valid) and the declared role names (always, so routes can be
    /// checked against them even when the graph has errors).
    fn roles(&self) -> (Option<RoleGraph>, HashSet<String>) {
        let p = root("roles");
        let mut defs = BTreeMap::new();
        if let Some(value) = self.table.get("roles") {
            let DeValue::Table(t) = value.get_ref() else {
                self.err(&p, "expected a table of roles");
                return (None, HashSet::new());
            };
            for (name, def) in t.iter() {
                let name = name.get_ref().to_string();
                if let Some(r) = deserialize::<RawRole>(self.src, def, &p.key(&name)) {
                    defs.insert(name, (r.inherits, r.permissions));
                }
            }
        }
        let names = defs.keys().cloned().collect();
        match RoleGraph::build(&defs) {
            Ok(g) => (Some(g), names),
            Err(errors) => {
                for (role, msg) in errors {
                    self.err(&p.key(&role), msg);
                }
                (None, names)
            }
        }
    }

    /// `[tokens]` and its trusted issuers: the verifier's issuers, the signer, the JWKS, and
    /// the leeway and `max_ttl` (seconds).
    fn tokens(&self) -> (Vec<Issuer>, Option<Signer>, Vec<u8>, (u64, u64)) {
        let mut issuers = Vec::new();
        let mut jwks: Vec<Jwk> = Vec::new();
        let mut signer = None;
        let mut leeway = 30;
        let mut max_ttl = DEFAULT_MAX_TTL;
        let p = root("tokens");
        if let Some(value) = self.table.get("tokens") {
            let mut without_issuers = value.clone();
            let trusted = match without_issuers.get_mut() {
                DeValue::Table(t) => t.remove("trusted_issuers"),
                _ => None,
            };
            if let Some(raw) = deserialize::<RawTokens>(self.src, &without_issuers, &p) {
                leeway = self
                    .duration(&p.key("leeway"), raw.leeway.as_deref(), "30s")
                    .as_secs();
                max_ttl = self
                    .duration(&p.key("max_ttl"), raw.max_ttl.as_deref(), "30d")
                    .as_secs();
                if max_ttl == 0 {
                    self.err(&p.key("max_ttl"), "must be at least one second");
                }
                if let Some((issuer, s, keys)) = self.own_issuer(&raw, &p, max_ttl) {
                    issuers.push(issuer);
                    signer = Some(s);
                    jwks.extend(keys);
                }
            }
            let tp = p.key("trusted_issuers");
            for (i, raw) in self.array::<RawTrustedIssuer>(trusted.as_ref(), &tp) {
                if let Some(issuer) = self.trusted_issuer(&raw, &tp.index(i)) {
                    if issuers.iter().any(|o: &Issuer| o.iss == issuer.iss) {
                        self.err(
                            &tp.index(i).key("issuer"),
                            format!("issuer `{}` is configured twice", issuer.iss),
                        );
                    }
                    issuers.push(issuer);
                }
            }
        }
        let doc = serde_json::json!({ "keys": jwks });
        (
            issuers,
            signer,
            serde_json::to_vec(&doc).expect("JWKs serialise"),
            (leeway, max_ttl),
        )
    }

    fn own_issuer(
        &self,
        raw: &RawTokens,
        p: &KeyPath,
        max_ttl: u64,
    ) -> Option<(Issuer, Signer, Vec<Jwk>)> {
        if raw.issuer.is_empty() {
            self.err(&p.key("issuer"), "must not be empty");
        }
        let access_ttl = self.duration(&p.key("access_ttl"), raw.access_ttl.as_deref(), "15m");
        let refresh_ttl = self.duration(&p.key("refresh_ttl"), raw.refresh_ttl.as_deref(), "7d");
        for (key, ttl) in [("access_ttl", access_ttl), ("refresh_ttl", refresh_ttl)] {
            if ttl.as_secs() > max_ttl {
                self.err(
                    &p.key(key),
                    format!(
                        "must not be longer than max_ttl ({}s > {max_ttl}s): the gateway would refuse its own tokens",
                        ttl.as_secs()
                    ),
                );
            }
        }
        let alg = match parse_algorithm(&raw.algorithm) {
            Ok(a) => a,
            Err(e) => {
                self.err(&p.key("algorithm"), e);
                return None;
            }
        };
        let mut keys = Vec::new();
        let mut public = Vec::new();
        let (encoding, kid) = if Family::of(alg) == Family::Hmac {
            if raw.private_key_file.is_some() {
                self.err(
                    &p.key("private_key_file"),
                    format!("{alg:?} takes a `secret`, not a key file"),
                );
            }
            if !raw.previous_keys.is_empty() {
                self.err(
                    &p.key("previous_keys"),
                    "HS algorithms rotate with `previous_secrets`",
                );
            }
            let Some(secret) = &raw.secret else {
                self.err(p, format!("{alg:?} needs `secret` (at least 32 bytes)"));
                return None;
            };
            let mut ok = self.check_secret(&p.key("secret"), secret);
            for (i, s) in raw.previous_secrets.iter().enumerate() {
                ok &= self.check_secret(&p.key("previous_secrets").index(i), s);
                keys.push(hmac_key(s, alg, None));
            }
            if !ok {
                return None;
            }
            keys.insert(0, hmac_key(secret, alg, raw.key_id.clone()));
            (
                EncodingKey::from_secret(secret.as_bytes()),
                raw.key_id.clone(),
            )
        } else {
            if raw.secret.is_some() {
                self.err(
                    &p.key("secret"),
                    format!("{alg:?} takes `private_key_file`, not a secret"),
                );
            }
            if !raw.previous_secrets.is_empty() {
                self.err(
                    &p.key("previous_secrets"),
                    "asymmetric algorithms rotate with `previous_keys`",
                );
            }
            let Some(file) = &raw.private_key_file else {
                self.err(p, format!("{alg:?} needs `private_key_file`"));
                return None;
            };
            let kp = p.key("private_key_file");
            let pem = self.read_file(&kp, file)?;
            let key = match keys::load_pem(&pem, alg) {
                Ok(k) => k,
                Err(e) => {
                    self.err(&kp, e);
                    return None;
                }
            };
            let Some(encoding) = key.encoding else {
                self.err(
                    &kp,
                    "the file holds a public key; signing needs the private key",
                );
                return None;
            };
            let kid = raw
                .key_id
                .clone()
                .unwrap_or_else(|| keys::thumbprint(&key.jwk));
            public.push(published(key.jwk, alg, &kid));
            keys.push(VerifyKey {
                kid: Some(kid.clone()),
                algorithms: vec![alg],
                key: key.decoding,
            });
            for (i, prev) in raw.previous_keys.iter().enumerate() {
                let pp = p.key("previous_keys").index(i);
                let palg = match prev
                    .algorithm
                    .as_deref()
                    .map(parse_algorithm)
                    .unwrap_or(Ok(alg))
                {
                    Ok(a) if Family::of(a) != Family::Hmac => a,
                    Ok(_) => {
                        self.err(
                            &pp.key("algorithm"),
                            "previous keys are asymmetric; use previous_secrets for HS",
                        );
                        continue;
                    }
                    Err(e) => {
                        self.err(&pp.key("algorithm"), e);
                        continue;
                    }
                };
                let Some(pem) = self.read_file(&pp.key("file"), &prev.file) else {
                    continue;
                };
                match keys::load_pem(&pem, palg) {
                    Ok(k) => {
                        let pkid = prev
                            .key_id
                            .clone()
                            .unwrap_or_else(|| keys::thumbprint(&k.jwk));
                        public.push(published(k.jwk, palg, &pkid));
                        keys.push(VerifyKey {
                            kid: Some(pkid),
                            algorithms: vec![palg],
                            key: k.decoding,
                        });
                    }
                    Err(e) => self.err(&pp.key("file"), e),
                }
            }
            (encoding, Some(kid))
        };
        let issuer = Issuer {
            iss: raw.issuer.clone(),
            audience: raw.audience.clone(),
            keys,
            remote: None,
            claim_paths: ClaimPaths::default(),
            own: true,
        };
        let signer = Signer {
            issuer: raw.issuer.clone(),
            audience: raw.audience.clone(),
            algorithm: alg,
            kid,
            key: encoding,
            access_ttl: access_ttl.as_secs(),
            refresh_ttl: refresh_ttl.as_secs(),
        };
        Some((issuer, signer, public))
    }

    fn check_secret(&self, path: &KeyPath, secret: &str) -> bool {
        if secret.len() < 32 {
            self.err(
                path,
                format!(
                    "an HS secret needs at least 32 bytes (this one has {})",
                    secret.len()
                ),
            );
            return false;
        }
        true
    }

    /// A `jwks_url`: checked here, fetched at run time (never by `check`). The running config's
    /// key set is kept when the source is unchanged.
    fn remote_jwks(
        &self,
        raw: &RawTrustedIssuer,
        url: &str,
        algorithms: Option<Vec<Algorithm>>,
        p: &KeyPath,
    ) -> Option<Arc<RemoteJwks>> {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => u,
            _ => {
                self.err(p, "must be an https:// (or http://) URL");
                return None;
            }
        };
        if parsed.scheme() == "http" {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                self.warn(
                    p,
                    "plain http: the keys can be swapped on the way; use https",
                );
            }
        }
        let refresh = self
            .duration(
                &p.parent().key("jwks_refresh"),
                raw.jwks_refresh.as_deref(),
                "10m",
            )
            .as_secs();
        let kept = self.previous.and_then(|c| {
            c.remote_jwks
                .iter()
                .find(|r| r.issuer == raw.issuer && r.same_source(url, &algorithms, refresh))
                .cloned()
        });
        Some(
            kept.unwrap_or_else(|| {
                Arc::new(RemoteJwks::new(&raw.issuer, url, algorithms, refresh))
            }),
        )
    }

    fn trusted_issuer(&self, raw: &RawTrustedIssuer, p: &KeyPath) -> Option<Issuer> {
        if raw.issuer.is_empty() {
            self.err(&p.key("issuer"), "must not be empty");
        }
        let sources = [
            raw.jwks_url.is_some(),
            raw.jwks_file.is_some(),
            raw.public_key_file.is_some(),
            raw.secret.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            self.err(
                p,
                "exactly one of `jwks_url`, `jwks_file`, `public_key_file`, `secret` is needed",
            );
            return None;
        }
        let algorithms: Option<Vec<Algorithm>> = raw.algorithms.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, a)| match parse_algorithm(a) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        self.err(&p.key("algorithms").index(i), e);
                        None
                    }
                })
                .collect()
        });
        if algorithms.as_ref().is_some_and(|a| a.is_empty()) {
            self.err(&p.key("algorithms"), "must name at least one algorithm");
        }
        if let Some(r) = &raw.jwks_refresh {
            if let Err(e) = parse_duration(r) {
                self.err(&p.key("jwks_refresh"), e);
            }
        }
        // A key of one family verifies only that family's algorithms, whatever `algorithms` says.
        let pinned = |family: Family, key_path: &KeyPath| -> Option<Vec<Algorithm>> {
            let algs: Vec<Algorithm> = match &algorithms {
                Some(list) => {
                    for a in list {
                        if Family::of(*a) != family {
                            self.err(
                                &p.key("algorithms"),
                                format!("{a:?} does not fit the key of `{}`", key_path),
                            );
                            return None;
                        }
                    }
                    list.clone()
                }
                None => family.algorithms().to_vec(),
            };
            Some(algs)
        };
        let mut remote = None;
        let keys = if let Some(url) = &raw.jwks_url {
            remote = Some(self.remote_jwks(raw, url, algorithms, &p.key("jwks_url"))?);
            Vec::new()
        } else if let Some(secret) = &raw.secret {
            let kp = p.key("secret");
            if !self.check_secret(&kp, secret) {
                return None;
            }
            let algs = pinned(Family::Hmac, &kp)?;
            vec![VerifyKey {
                kid: None,
                algorithms: algs,
                key: DecodingKey::from_secret(secret.as_bytes()),
            }]
        } else if let Some(file) = &raw.public_key_file {
            let kp = p.key("public_key_file");
            let pem = self.read_file(&kp, file)?;
            let family = pem_family(&pem);
            let Some(family) = family else {
                self.err(
                    &kp,
                    "the file holds no RSA, EC (P-256/P-384) or Ed25519 PEM key",
                );
                return None;
            };
            let algs = pinned(family, &kp)?;
            let key = keys::load_pem(&pem, algs[0])
                .map_err(|e| self.err(&kp, e))
                .ok()?;
            vec![VerifyKey {
                kid: None,
                algorithms: algs,
                key: key.decoding,
            }]
        } else {
            let kp = p.key("jwks_file");
            let json = self.read_file(&kp, raw.jwks_file.as_deref().unwrap_or_default())?;
            match keys::keys_from_jwks(&json, algorithms.as_deref()) {
                Ok(k) => {
                    for why in &k.skipped {
                        self.warn(&kp, why.clone());
                    }
                    k.keys
                }
                Err(e) => {
                    self.err(&kp, e);
                    return None;
                }
            }
        };
        let claim_path = |s: &Option<String>, default: &str| -> Vec<String> {
            s.as_deref()
                .unwrap_or(default)
                .split('.')
                .map(str::to_string)
                .collect()
        };
        Some(Issuer {
            iss: raw.issuer.clone(),
            audience: raw.audience.clone(),
            keys,
            remote,
            claim_paths: ClaimPaths {
                roles: claim_path(&raw.roles_claim, "roles"),
                permissions: claim_path(&raw.permissions_claim, "permissions"),
            },
            own: false,
        })
    }

    fn identity(&self) -> Option<IdentitySettings> {
        let raw = match self.table.get("identity") {
            Some(_) => self.section::<RawIdentity>("identity")?,
            None => RawIdentity::default(),
        };
        let p = root("identity");
        let header = |key: &str, value: &Option<String>, default: &str| -> Option<HeaderName> {
            let v = value.as_deref().unwrap_or(default);
            HeaderName::from_str(v)
                .map_err(|_| self.err(&p.key(key), format!("`{v}` is not a valid header name")))
                .ok()
        };
        let subject = header("subject_header", &raw.subject_header, "X-User-Id");
        let roles = header("roles_header", &raw.roles_header, "X-User-Roles");
        let permissions = header(
            "permissions_header",
            &raw.permissions_header,
            "X-User-Permissions",
        );
        let method = header("method_header", &raw.method_header, "X-Auth-Method");
        let mut claims = Vec::new();
        for (claim, h) in &raw.claims {
            match HeaderName::from_str(h) {
                Ok(name) => claims.push((claim.split('.').map(str::to_string).collect(), name)),
                Err(_) => self.err(
                    &p.key("claims").key(claim),
                    format!("`{h}` is not a valid header name"),
                ),
            }
        }
        let internal_token = raw.internal_token.as_ref().and_then(|t| {
            let ip = p.key("internal_token");
            if !self.table.contains_key("tokens") {
                self.err(
                    &ip,
                    "needs [tokens]: the token is signed with the gateway's key",
                );
            }
            let name = t.header.as_deref().unwrap_or("X-Identity-Token");
            let header = HeaderName::from_str(name)
                .map_err(|_| {
                    self.err(
                        &ip.key("header"),
                        format!("`{name}` is not a valid header name"),
                    )
                })
                .ok()?;
            let ttl = self
                .duration(&ip.key("ttl"), t.ttl.as_deref(), "60s")
                .as_secs();
            if ttl == 0 {
                self.err(&ip.key("ttl"), "must be at least one second");
            }
            Some(Arc::new(crate::auth::internal::InternalToken::new(
                header, ttl,
            )))
        });
        let (subject, roles, permissions, method) = (subject?, roles?, permissions?, method?);
        let mut all = vec![
            subject.clone(),
            roles.clone(),
            permissions.clone(),
            method.clone(),
        ];
        all.extend(claims.iter().map(|(_, h)| h.clone()));
        all.extend(internal_token.iter().map(|t| t.header.clone()));
        let mut seen = HashSet::new();
        for h in &all {
            if !seen.insert(h.clone()) {
                self.err(&p, format!("header `{h}` is used twice"));
            }
        }
        Some(IdentitySettings {
            subject,
            roles,
            permissions,
            method,
            claims,
            forward_credentials: raw.forward_credentials,
            internal_token,
            client_headers: crate::headers::ClientHeaders::new(&all),
            all,
        })
    }

    /// The keys, and the policies of those with their own `rate_limit`.
    fn api_keys(
        &self,
        roles: &HashSet<String>,
        graph: Option<&RoleGraph>,
    ) -> (ApiKeys, Vec<Arc<Policy>>) {
        let p = root("api_keys");
        let mut keys: Vec<ApiKey> = Vec::new();
        for (i, raw) in self.array::<RawApiKey>(self.table.get("api_keys"), &p) {
            let kp = p.index(i);
            if raw.id.is_empty() {
                self.err(&kp.key("id"), "must not be empty");
            }
            if keys.iter().any(|k| k.id == raw.id) {
                self.err(
                    &kp.key("id"),
                    format!("API key id `{}` is used twice", raw.id),
                );
            }
            let digest = match hex::decode(&raw.key_sha256) {
                Ok(bytes) if bytes.len() == 32 => {
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&bytes);
                    if keys.iter().any(|k| k.digest == d) {
                        self.err(&kp.key("key_sha256"), "the same key is configured twice");
                    }
                    Some(d)
                }
                _ => {
                    self.err(
                        &kp.key("key_sha256"),
                        "must be a SHA-256 digest: 64 hex characters",
                    );
                    None
                }
            };
            self.check_roles(&raw.roles, &kp.key("roles"), roles);
            let allowed_ips = self.networks(&raw.allowed_ips, &kp.key("allowed_ips"));
            let expires_at = raw.expires_at.as_deref().and_then(|s| {
                apikey::parse_rfc3339(s)
                    .map_err(|e| self.err(&kp.key("expires_at"), e))
                    .ok()
            });
            let rate_limit =
                self.api_key_rate_limit(&raw.id, raw.rate_limit.as_deref(), &kp.key("rate_limit"));
            let subject = raw.subject.clone().unwrap_or_else(|| raw.id.clone());
            if !crate::auth::jwt::can_be_header_value(&subject) {
                let at = if raw.subject.is_some() {
                    "subject"
                } else {
                    "id"
                };
                self.err(
                    &kp.key(at),
                    "must not hold control characters (it is sent as a header)",
                );
            }
            if let Some(digest) = digest {
                let grants = graph.map(|g| g.grants(&raw.roles, &raw.permissions));
                keys.push(ApiKey {
                    claims: subject_claims(&subject),
                    subject,
                    id: raw.id,
                    digest,
                    roles: raw.roles,
                    permissions: raw.permissions,
                    allowed_ips,
                    expires_at,
                    rate_limit,
                    // An invalid [roles] has its own errors, and no config comes of it.
                    grants: Arc::new(grants.unwrap_or_default()),
                });
            }
        }
        let policies = keys.iter().filter_map(|k| k.rate_limit.clone()).collect();
        (ApiKeys::new(keys), policies)
    }

    /// Whether `[[upstreams]]` has an entry of that name, valid or not (an invalid one has
    /// its own errors; the route referring to it is not wrong too).
    fn upstream_declared(&self, name: &str) -> bool {
        match self.table.get("upstreams").map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items.iter().any(|u| {
                u.get_ref()
                    .as_table()
                    .and_then(|t| t.get("name"))
                    .and_then(|n| n.get_ref().as_str())
                    == Some(name)
            }),
            _ => false,
        }
    }

    fn upstreams(&self) -> BTreeMap<String, Arc<UpstreamPool>> {
        let p = root("upstreams");
        let mut pools = BTreeMap::new();
        for (i, raw) in self.array::<RawUpstream>(self.table.get("upstreams"), &p) {
            let up = p.index(i);
            if raw.name.is_empty() {
                self.err(&up.key("name"), "must not be empty");
            }
            if pools.contains_key(&raw.name) {
                self.err(
                    &up.key("name"),
                    format!("upstream `{}` is defined twice", raw.name),
                );
            }
            if raw.targets.is_empty() {
                self.err(&up.key("targets"), "at least one target is needed");
            }
            let mut targets = Vec::new();
            let mut first_host = None;
            for (t, target) in raw.targets.iter().enumerate() {
                match resolve_target(target) {
                    Some((addr, host)) => {
                        first_host.get_or_insert(host);
                        targets.push(addr);
                    }
                    None => self.err(
                        &up.key("targets").index(t),
                        format!("`{target}` is not a resolvable host:port"),
                    ),
                }
            }
            let ca_der = raw.ca_file.as_ref().and_then(|f| {
                let cp = up.key("ca_file");
                let bytes = self.read_file(&cp, f)?;
                let ders: Vec<Vec<u8>> = rustls_pemfile::certs(&mut bytes.as_slice())
                    .filter_map(Result::ok)
                    .map(|c| c.to_vec())
                    .collect();
                let valid = !ders.is_empty()
                    && ders
                        .iter()
                        .all(|d| x509_parser::parse_x509_certificate(d).is_ok());
                if !valid {
                    self.err(&cp, "the file holds no valid PEM certificate");
                    return None;
                }
                Some(ders)
            });
            if raw.ca_file.is_some() && !raw.tls {
                self.err(&up.key("ca_file"), "ca_file needs `tls = true`");
            }
            let health_check = raw.health_check.as_ref().map(|hc| {
                let hp = up.key("health_check");
                if let Some(path) = &hc.path {
                    if !path.starts_with('/') || path.parse::<http::Uri>().is_err() {
                        self.err(&hp.key("path"), "must be a path starting with `/`");
                    }
                }
                HealthCheckSettings {
                    path: hc.path.clone(),
                    interval: self.duration(&hp.key("interval"), hc.interval.as_deref(), "5s"),
                }
            });
            let settings = UpstreamSettings {
                name: raw.name.clone(),
                sni: raw.sni.clone().or(first_host).unwrap_or_default(),
                tls: raw.tls,
                ca_der,
                connect_timeout: self.duration(
                    &up.key("connect_timeout"),
                    raw.connect_timeout.as_deref(),
                    "2s",
                ),
                read_timeout: self.duration(
                    &up.key("read_timeout"),
                    raw.read_timeout.as_deref(),
                    "30s",
                ),
                health_check,
                targets,
            };
            if !settings.targets.is_empty() {
                pools.insert(raw.name, Arc::new(UpstreamPool::new(settings)));
            }
        }
        pools
    }

    fn routes(
        &self,
        upstreams: &BTreeMap<String, Arc<UpstreamPool>>,
        roles: &HashSet<String>,
        configured: &[CredentialKind],
        policies: &Policies,
    ) -> Vec<Arc<Route>> {
        let p = root("routes");
        let mut routes: Vec<Arc<Route>> = Vec::new();
        let mut indices = Vec::new();
        for (i, raw) in self.array::<RawRoute>(self.table.get("routes"), &p) {
            let rp = p.index(i);
            let pattern = PathPattern::parse(&raw.path)
                .map_err(|e| self.err(&rp.key("path"), e))
                .ok();
            let mut methods = Vec::new();
            for (m, name) in raw.methods.iter().flatten().enumerate() {
                match Method::from_bytes(name.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => methods.push(method),
                    Err(_) => self.err(
                        &rp.key("methods").index(m),
                        format!("`{name}` is not an HTTP method"),
                    ),
                }
            }
            let upstream = upstreams.get(&raw.upstream).cloned();
            if upstream.is_none() && !self.upstream_declared(&raw.upstream) {
                self.err(
                    &rp.key("upstream"),
                    format!("unknown upstream `{}`", raw.upstream),
                );
            }
            let auth = match raw.auth.as_str() {
                "required" => Some(AuthMode::Required),
                "optional" => Some(AuthMode::Optional),
                "none" => Some(AuthMode::None),
                other => {
                    self.err(
                        &rp.key("auth"),
                        format!("`{other}` is not one of required, optional, none"),
                    );
                    None
                }
            };
            let accept = match &raw.accept {
                None => configured.to_vec(),
                Some(list) => list
                    .iter()
                    .enumerate()
                    .filter_map(|(a, kind)| {
                        let k = match kind.as_str() {
                            "jwt" => CredentialKind::Jwt,
                            "api_key" => CredentialKind::ApiKey,
                            "cookie" => CredentialKind::Cookie,
                            other => {
                                self.err(
                                    &rp.key("accept").index(a),
                                    format!("`{other}` is not one of jwt, api_key, cookie"),
                                );
                                return None;
                            }
                        };
                        if !configured.contains(&k) {
                            self.err(
                                &rp.key("accept").index(a),
                                format!("`{kind}` credentials are not configured"),
                            );
                            return None;
                        }
                        Some(k)
                    })
                    .collect(),
            };
            if auth == Some(AuthMode::Required) && configured.is_empty() {
                self.err(&rp.key("auth"), "auth is required but no credential kind is configured ([tokens] or [[api_keys]])");
            }
            self.check_roles(&raw.roles_any, &rp.key("roles_any"), roles);
            let rate_limits =
                self.route_rate_limits(&raw.rate_limit, &rp.key("rate_limit"), policies);
            if let Some(prefix) = &raw.strip_prefix {
                if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
                    self.err(
                        &rp.key("strip_prefix"),
                        "must start with `/` and not end with one",
                    );
                }
            }
            let owner = raw.owner.as_ref().and_then(|o| {
                let op = rp.key("owner");
                self.check_roles(&o.unless_roles, &op.key("unless_roles"), roles);
                if auth == Some(AuthMode::None) {
                    self.err(
                        &op,
                        "an ownership rule needs auth = \"required\" or \"optional\"",
                    );
                }
                let index = pattern.as_ref()?.captures().position(|c| c == o.param);
                let Some(capture_index) = index else {
                    self.err(
                        &op.key("param"),
                        format!("the path has no `{{{}}}` segment", o.param),
                    );
                    return None;
                };
                Some(Owner {
                    capture_index,
                    claim: o
                        .claim
                        .as_deref()
                        .unwrap_or("sub")
                        .split('.')
                        .map(str::to_string)
                        .collect(),
                    unless_roles: o.unless_roles.clone(),
                })
            });
            if raw.owner.is_some() && owner.is_none() {
                continue;
            }
            let (Some(pattern), Some(upstream), Some(auth)) = (pattern, upstream, auth) else {
                continue;
            };
            let route = Route {
                name: raw.name.clone().unwrap_or_else(|| raw.path.clone()).into(),
                pattern,
                methods,
                upstream,
                auth,
                accept,
                roles_any: raw.roles_any.clone(),
                permissions_all: raw.permissions_all.clone(),
                strip_prefix: raw.strip_prefix.clone(),
                owner,
                rate_limits,
            };
            for (earlier, &j) in routes.iter().zip(&indices) {
                let methods_covered = earlier.methods.is_empty()
                    || (!route.methods.is_empty()
                        && route.methods.iter().all(|m| earlier.allows_method(m)));
                if methods_covered && route.pattern.is_covered_by(&earlier.pattern) {
                    self.warn(
                        &rp.key("path"),
                        format!(
                            "route `{}` is shadowed by routes[{j}] (`{}`) and never matches",
                            route.name, earlier.name
                        ),
                    );
                    break;
                }
            }
            routes.push(Arc::new(route));
            indices.push(i);
        }
        routes
    }
}

fn hmac_key(secret: &str, alg: Algorithm, kid: Option<String>) -> VerifyKey {
    VerifyKey {
        kid,
        algorithms: vec![alg],
        key: DecodingKey::from_secret(secret.as_bytes()),
    }
}

/// A public JWK as the JWKS endpoint serves it: kid, alg and `use = sig`.
fn published(mut jwk: Jwk, alg: Algorithm, kid: &str) -> Jwk {
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = KeyAlgorithm::from_str(&format!("{alg:?}")).ok();
    jwk
}

/// The family of a PEM key: the configured algorithms are then checked against it.
fn pem_family(pem: &[u8]) -> Option<Family> {
    [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .find(|a| keys::load_pem(pem, *a).is_ok())
    .map(Family::of)
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// `host:port` -> the first address it resolves to, and the host (the default SNI).
fn resolve_target(target: &str) -> Option<(SocketAddr, String)> {
    let (host, _) = target.rsplit_once(':')?;
    let addr = target.to_socket_addrs().ok()?.next()?;
    Some((addr, host.trim_matches(['[', ']']).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(toml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml).unwrap();
        match load(&path) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| {
                        let s = e.to_string();
                        s[s.find("gateway.toml").unwrap()..].to_string()
                    })
                    .collect()
            }
        }
    }

    const BASE: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "0123456789abcdef0123456789abcdef"

[roles]
user = {}

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/**"
upstream = "app"
"#;

    #[test]
    fn a_good_config_loads() {
        assert_eq!(errors_of(BASE), Vec::<String>::new());
    }

    #[test]
    fn every_error_is_reported_with_its_place() {
        let bad = r#"
[server]
listen = ["127.0.0.1:8080"]
bogus = true

[tokens]
issuer = "portcullis"
secret = "short"

[roles]
a = { inherits = ["b"] }
b = { inherits = ["a"] }

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/x"
upstream = "nowhere"
roles_any = ["ghost"]
"#;
        let errs = errors_of(bad);
        let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
        assert!(
            has("gateway.toml:4:1: server.bogus: unknown field `bogus`"),
            "{errs:#?}"
        );
        assert!(
            has("gateway.toml:8:10: tokens.secret: an HS secret needs at least 32 bytes"),
            "{errs:#?}"
        );
        assert!(has("roles.a: role `a` inherits itself"), "{errs:#?}");
        assert!(
            has("gateway.toml:20:12: routes[0].upstream: unknown upstream `nowhere`"),
            "{errs:#?}"
        );
        assert!(
            has("routes[0].roles_any[0]: unknown role `ghost`"),
            "{errs:#?}"
        );
    }
}
