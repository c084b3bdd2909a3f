//! Raw config -> `Config`. Every problem is collected, with its key path and position, and
//! reported together; nothing half-valid is ever returned. One file a section.

mod api_keys;
mod cors;
mod decision;
mod identity;
mod issuers;
mod login;
mod mail;
mod oidc;
mod rate_limits;
mod response;
mod routes;
mod sender;
mod server;
mod store;
mod tokens;
mod upstreams;
mod users;

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::de::{DeTable, DeValue};

use super::raw::Choice;
use super::source::{deserialize, span_of, ConfigError, ConfigErrors, KeyPath, SourceFile};
use super::{Config, Secret};
use crate::policy::route::CredentialKind;
use crate::policy::RoleGraph;
use crate::ratelimit::{PolicyId, PolicySpec};
use crate::units::parse_duration;

/// A loaded config and the warnings `check` prints.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigError>,
}

const SECTIONS: &[&str] = &[
    "server",
    "mtls",
    "dpop",
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
    "cors",
    "decision",
    "response",
    "oidc",
    "mail",
    "audit",
];

/// Reads, validates and compiles a gateway.toml (and the files it names).
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_source(SourceFile::read(path)?)
}

/// As [`load`], for a text said to be read from `path` (its relative paths resolve there).
pub(crate) fn load_text(path: &Path, text: String) -> Result<Loaded, ConfigErrors> {
    load_source(SourceFile::from_text(path, text))
}

fn load_source(src: SourceFile) -> Result<Loaded, ConfigErrors> {
    let Some(table) = src.parse() else {
        return Err(src.take_errors());
    };
    let config = Validator::new(&src, &table).config();
    if src.has_errors() {
        return Err(src.take_errors());
    }
    Ok(Loaded {
        config: config.expect("no errors means a config"),
        warnings: src.take_warnings(),
    })
}

/// A users file read on its own (`portcullis users import`), its roles checked against
/// `roles`.
pub(crate) fn users_file(
    path: &Path,
    roles: &std::collections::HashSet<String>,
) -> Result<crate::accounts::users::Users, ConfigErrors> {
    users_source(SourceFile::read(path)?, roles)
}

/// As [`users_file`], for a text said to be read from `path`.
pub(crate) fn users_text(
    path: &Path,
    text: String,
    roles: &std::collections::HashSet<String>,
) -> Result<crate::accounts::users::Users, ConfigErrors> {
    users_source(SourceFile::from_text(path, text), roles)
}

fn users_source(
    src: SourceFile,
    roles: &std::collections::HashSet<String>,
) -> Result<crate::accounts::users::Users, ConfigErrors> {
    let Some(table) = src.parse() else {
        return Err(src.take_errors());
    };
    let users = Validator::new(&src, &table).users(roles);
    if src.has_errors() {
        return Err(src.take_errors());
    }
    Ok(users)
}

/// One file being validated: its tree, where its relative paths resolve, and the rate-limit
/// policies found so far (a route's, an API key's and login's own, in order: their ids).
pub(super) struct Validator<'a> {
    src: &'a SourceFile,
    table: &'a DeTable<'a>,
    base: PathBuf,
    policies: RefCell<Vec<PolicySpec>>,
}

fn root(k: &str) -> KeyPath {
    KeyPath::root().key(k)
}

impl<'a> Validator<'a> {
    fn new(src: &'a SourceFile, table: &'a DeTable<'a>) -> Self {
        Validator {
            src,
            table,
            base: src.base_dir(),
            policies: RefCell::default(),
        }
    }

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
        match super::source::read_file(&full) {
            Ok(b) => Some(b),
            Err(e) => {
                self.err(path, format!("cannot read `{}`: {e}", full.display()));
                None
            }
        }
    }

    /// A duration at `path`, or `default` when it is not set (or, reported, malformed).
    fn duration(&self, path: &KeyPath, value: Option<&str>, default: Duration) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.err(path, e);
                default
            }
        }
    }

    /// A closed choice's value; one that is none of them is reported here, and `fallback`
    /// stands in so that the rest is still checked.
    fn choice<T: Clone>(&self, path: &KeyPath, c: &Choice<T>, fallback: T) -> T {
        match c {
            Choice::Is(v) => v.clone(),
            Choice::Not(why) => {
                self.err(path, why.clone());
                fallback
            }
        }
    }

    /// Registers a rate-limit policy; its id is its place in `Config::rate_limits`.
    fn add_policy(&self, spec: PolicySpec) -> PolicyId {
        let mut policies = self.policies.borrow_mut();
        policies.push(spec);
        PolicyId(policies.len() - 1)
    }

    fn unknown_sections(&self) {
        for (k, _) in self.table.iter() {
            if !SECTIONS.contains(&k.get_ref().as_ref()) {
                self.src.error_at(
                    Some(k.span()),
                    None,
                    format!("unknown section `{}`", k.get_ref()),
                );
            }
        }
    }

    /// The credential kinds configured, for routes' `accept` (an invalid section has its own
    /// errors: routes are checked as if it were valid).
    fn credential_kinds(&self, cookie: bool) -> Vec<CredentialKind> {
        let mut configured = Vec::new();
        if self.table.contains_key("tokens") {
            configured.push(CredentialKind::Jwt);
        }
        // With users_db, users make keys at run time.
        let users_db = self
            .table
            .get("login")
            .and_then(|l| l.get_ref().as_table())
            .is_some_and(|l| l.contains_key("users_db"));
        if self.table.contains_key("api_keys") || users_db {
            configured.push(CredentialKind::ApiKey);
        }
        if cookie {
            configured.push(CredentialKind::Cookie);
        }
        if self.table.contains_key("mtls") {
            configured.push(CredentialKind::Mtls);
        }
        configured
    }

    fn config(&self) -> Option<Config> {
        self.unknown_sections();
        let raw_server = self.raw_server();
        let server = raw_server.as_ref().map(|r| self.server(r));
        let trusted_proxies = raw_server
            .as_ref()
            .map(|r| self.trusted_proxies(r))
            .unwrap_or_default();
        let (roles, role_names) = self.roles();
        let tokens = self.tokens();
        let identity = self.identity();
        let upstreams = self.upstreams();
        let store = self.store();
        let shared = matches!(store.backend, crate::config::Backend::Redis(_));
        let named = self.rate_limits(shared);
        let api_keys = self.api_keys(&role_names, roles.as_ref());
        let login = self.login(&role_names, tokens.signer.is_some(), shared);
        let configured = self.credential_kinds(login.as_ref().is_some_and(|l| l.cookie.is_some()));
        let response_headers = self.response_headers();
        let signs = tokens.signer.is_some();
        let (oidc, client_keys) = self.oidc(&role_names, login.as_ref(), signs);
        let providers: Vec<&str> = oidc.iter().map(|o| o.name.as_str()).collect();
        let routes = self.routes(
            &upstreams,
            &role_names,
            &configured,
            &named,
            &response_headers,
            &providers,
        );
        let jwks = with_keys(&tokens.jwks, client_keys);
        self.warn_trusted_providers(&oidc, &tokens.issuers);
        let users_db = login.as_ref().is_some_and(|l| l.users_db.is_some());
        let mail = self.mail(users_db);
        let audit = self.audit(users_db);
        let decision = self.decision();
        let (mtls, dpop) = self.sender(server.as_ref(), &tokens, &role_names);
        self.distinct_listeners(server.as_ref(), decision.as_ref());
        self.warn_unused(&named, &routes);
        if tokens.issuers.len() > 1 && identity.as_ref().is_some_and(|i| i.issuer.is_none()) {
            self.warn(
                &root("identity"),
                "several issuers are trusted without issuer_header: an upstream that keys users by subject alone could mix two users of one subject",
            );
        }
        Some(Config {
            path: self.src.path.clone(),
            server: server?,
            trusted_proxies,
            issuers: tokens.issuers,
            lifetimes: tokens.lifetimes,
            api_keys,
            signer: tokens.signer,
            jwks: jwks.into(),
            roles: std::sync::Arc::new(roles?),
            identity: identity?,
            upstreams: upstreams.settings,
            routes,
            rate_limits: self.policies.take(),
            login,
            store,
            admin_token: self.admin_token(raw_server.as_ref()),
            cors: self.cors(),
            decision,
            oidc: oidc.into_iter().map(std::sync::Arc::new).collect(),
            mail,
            audit,
            mtls,
            dpop,
            bind_to_certificate: tokens.bind_to_certificate,
        })
    }

    /// CIDRs (or single addresses) at `path`; each unreadable one is an error.
    fn networks(&self, list: &[String], path: &KeyPath) -> Vec<IpNet> {
        list.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let net = crate::headers::parse_net(s);
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
        let mut defs = std::collections::BTreeMap::new();
        if let Some(value) = self.table.get("roles") {
            let DeValue::Table(t) = value.get_ref() else {
                self.err(&p, "expected a table of roles");
                return (None, HashSet::new());
            };
            for (name, def) in t.iter() {
                let name = name.get_ref().to_string();
                if let Some(r) = deserialize::<super::raw::RawRole>(self.src, def, &p.key(&name)) {
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

    /// `[admin] token`: at least 16 characters, and only useful with `admin_listen`.
    fn admin_token(&self, server: Option<&super::raw::RawServer>) -> Option<Secret> {
        let raw = self.section::<super::raw::RawAdmin>("admin")?;
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
}

/// The JWKS document `jwks` with `more` keys (the `[[oidc]]` clients' public keys).
fn with_keys(jwks: &[u8], more: Vec<jsonwebtoken::jwk::Jwk>) -> Vec<u8> {
    if more.is_empty() {
        return jwks.to_vec();
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(jwks).unwrap_or_else(|_| serde_json::json!({ "keys": [] }));
    if let Some(keys) = doc.get_mut("keys").and_then(|k| k.as_array_mut()) {
        keys.extend(more.iter().filter_map(|k| serde_json::to_value(k).ok()));
    }
    serde_json::to_vec(&doc).expect("JWKs serialise")
}

#[cfg(test)]
mod tests;
