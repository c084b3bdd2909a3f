//! The parsers a client or an operator feeds, behind plain signatures, for the fuzz targets
//! (`fuzz/`) and the properties; and [`reference`], the simple implementations the properties
//! compare against. Not an API: nothing here is used by the gateway itself.

pub mod reference;

#[cfg(test)]
mod found;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderMap, Method};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::auth::credentials::{self, Credential};
use crate::auth::dpop::{self, DpopSettings, Expected, Nonces};
use crate::auth::oidc::{self, Discovery};
use crate::config::{ConfigErrors, DecisionSettings, Forwarded};
use crate::headers::{parse_net, TrustedProxies};
use crate::policy::cors::{Cors, CorsSpec};

pub use crate::config::source::ConfigError;
pub use crate::headers::ClientHeaders;
pub use crate::policy::route::{find_route, PathPattern, Route};
pub use pingora::http::RequestHeader;

/// Pipeline step 4: `Some` with the normalised path, `None` when the path is refused.
pub fn normalize(raw: &str, semicolons: bool) -> Option<String> {
    crate::policy::path::normalize(raw, semicolons).ok()
}

/// The normal form's promise (panics otherwise): a path that starts with `/`, holds no
/// dot-segment, empty segment, encoded `/`, `\` or NUL, no raw `\`, `#` or control, no `;`
/// unless allowed, and normalises to itself.
pub fn assert_normal_form(raw: &str, n: &str, semicolons: bool) {
    assert!(n.starts_with('/'), "{raw:?} -> {n:?}");
    let lower = n.to_ascii_lowercase();
    for bad in ["%2f", "%5c", "%00", "\\", "#", "//", "/./", "/../"] {
        assert!(!lower.contains(bad), "{raw:?} -> {n:?} holds {bad}");
    }
    assert!(
        !n.ends_with("/.") && !n.ends_with("/.."),
        "{raw:?} -> {n:?}"
    );
    assert!(
        n.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "{raw:?} -> {n:?}"
    );
    assert!(semicolons || !n.contains(';'), "{raw:?} -> {n:?}");
    assert_eq!(normalize(n, semicolons).as_deref(), Some(n), "{raw:?}");
}

/// A route that only matches (`auth = "none"`, nothing else set).
pub fn route(pattern: PathPattern, methods: Vec<Method>) -> Arc<Route> {
    Arc::new(Route::bare(pattern, methods))
}

/// The kind and secret of a credential as presented.
pub type Presented<'a> = (&'static str, &'a str);

fn kind_of(c: Credential<'_>) -> Presented<'_> {
    match c {
        Credential::Bearer(t) => ("bearer", t),
        Credential::Dpop(t) => ("dpop", t),
        Credential::ApiKey(t) => ("apikey", t),
        Credential::Cookie(t) => ("cookie", t),
    }
}

/// An `Authorization` value's scheme (one of ours) and token.
pub fn authorization(value: &str) -> Option<Presented<'_>> {
    credentials::parse_authorization(value).map(kind_of)
}

/// Pipeline step 7: the one credential of a request, every kind counting; `Err` when the
/// request is refused (two credentials, a repeated `Authorization`).
pub fn credential<'h>(
    headers: &'h HeaderMap,
    cookie: Option<&'h str>,
) -> Result<Option<Presented<'h>>, &'static str> {
    credentials::find(headers, |_| true, cookie)
        .map(|c| c.map(kind_of))
        .map_err(|_| "refused")
}

/// The `Cookie` values an upstream receives once the session cookie `name` (and its refresh
/// cookie) is taken out of `values`.
pub fn forwarded_cookies(values: &[&[u8]], name: &str) -> Vec<Vec<u8>> {
    let mut req = RequestHeader::build("GET", b"/", None).expect("a valid request");
    for v in values {
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            req.append_header(http::header::COOKIE, v)
                .expect("a valid header");
        }
    }
    crate::proxy::forward::strip_cookie(&mut req, name);
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect()
}

/// The refresh cookie's name beside the session cookie `name`.
pub fn refresh_cookie(name: &str) -> String {
    format!("{name}{}", crate::config::REFRESH_SUFFIX)
}

/// `[cors] allowed_origins` (serialised origins, or `*`): the `Access-Control-Allow-Origin`
/// a request with `headers` gets, if any.
pub fn cors_allowed(origins: &[String], headers: &HeaderMap) -> Option<String> {
    let cors = Cors::new(CorsSpec {
        origins: origins.to_vec(),
        methods: vec![Method::GET],
        headers: vec![],
        expose: vec![],
        credentials: false,
        max_age_secs: 0,
    });
    cors.allowed_origin(headers)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The serialised origin of a URL, or `None` for an opaque one.
pub fn origin_of(url: &str) -> Option<String> {
    crate::policy::cors::origin_of(url)
}

/// Pipeline step 2 with `trusted_proxies` (CIDRs or addresses; unreadable ones dropped).
pub fn client_ip(trusted: &[&str], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let nets = trusted.iter().filter_map(|t| parse_net(t)).collect();
    TrustedProxies(nets).client_ip(peer, headers)
}

/// Whether `ip` is in one of `trusted`.
pub fn is_trusted(trusted: &[&str], ip: &IpAddr) -> bool {
    trusted
        .iter()
        .filter_map(|t| parse_net(t))
        .any(|n| n.contains(ip))
}

/// Where the decision listener reads the judged request from: `[decision] forwarded`.
#[derive(Debug, Clone, Copy)]
pub enum Described {
    XForwarded,
    XOriginal,
    Path,
}

/// The method and target a decision is about, or `None` when the request is refused.
pub fn described(
    req: &RequestHeader,
    from: Described,
    prefix: Option<&str>,
) -> Option<(Method, String)> {
    let settings = DecisionSettings {
        listen: vec![],
        forwarded: match from {
            Described::XForwarded => Forwarded::XForwardedHeaders,
            Described::XOriginal => Forwarded::XOriginal,
            Described::Path => Forwarded::Path,
        },
        trusted_proxies: TrustedProxies::default(),
        path_prefix: prefix.map(str::to_string),
    };
    crate::proxy::decision::described(req, &settings).ok()
}

/// Loads a `gateway.toml` text as if read from `path`: `Ok` when it is a config.
pub fn load_config(path: &Path, text: &str) -> Result<(), Vec<ConfigError>> {
    crate::config::load_text(path, text.to_string())
        .map(drop)
        .map_err(|ConfigErrors(e)| e)
}

/// Loads a users file text, roles `user` and `admin` defined: `Ok` with how many users.
pub fn load_users(path: &Path, text: &str) -> Result<usize, Vec<ConfigError>> {
    let roles: HashSet<String> = ["user", "admin"].map(String::from).into();
    crate::config::users_text(path, text.to_string(), &roles)
        .map(|u| u.len())
        .map_err(|ConfigErrors(e)| e)
}

/// The body of a built-in endpoint (login, refresh, MFA, register, recovery...): its fields,
/// or `None` when it is refused.
pub fn endpoint_fields(content_type: Option<&str>, body: &[u8]) -> Option<Vec<(String, String)>> {
    let fields = crate::endpoints::body::Fields::parse(content_type, body).ok()?;
    Some(fields.into_pairs())
}

/// What the JSON-only bodies read as: `[created key, admin new user, admin change, admin
/// revocation]`, each `true` when accepted.
pub fn json_bodies(content_type: Option<&str>, body: &[u8]) -> [bool; 4] {
    use crate::admin::{ChangeBody, NewUserBody};
    let key = crate::endpoints::body::json::<crate::endpoints::NewKeyBody>(content_type, body);
    let Ok(object) = crate::admin::json_object(body) else {
        return [key.is_ok(), false, false, false];
    };
    [
        key.is_ok(),
        serde_json::from_value::<NewUserBody>(object.clone()).is_ok(),
        serde_json::from_value::<ChangeBody>(object.clone()).is_ok(),
        crate::admin::revocation_of(&object, 1_000, 2_000, 3_000).is_ok(),
    ]
}

/// A DPoP proof checked against a request (ES256, RS256, EdDSA accepted; no nonce): `Ok`
/// with the key's thumbprint.
pub fn dpop_proof(
    proof: &str,
    method: &str,
    htu: &str,
    token: Option<&str>,
    now: u64,
) -> Result<String, String> {
    let settings = DpopSettings {
        algorithms: vec![Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA],
        max_age: 300,
        require_nonce: false,
    };
    let nonces = Nonces::new([7; 32], 60);
    let expected = Expected {
        method,
        htu,
        access_token: token,
        now,
        leeway: 5,
    };
    dpop::verify(proof, &settings, &nonces, &expected)
        .map(|p| p.jkt)
        .map_err(|e| format!("{e:?}"))
}

/// A URL in the form a proof's `htu` is compared in.
pub fn canonical_htu(url: &str) -> Option<String> {
    dpop::canonical_htu(url)
}

/// A provider's discovery document for `issuer`: `Ok` with its endpoints.
pub fn discovery(body: &[u8], issuer: &str) -> Result<Vec<String>, String> {
    let d = Discovery::parse(body, issuer)?;
    let mut urls = vec![d.authorization_endpoint, d.token_endpoint, d.jwks_uri];
    urls.extend(d.end_session_endpoint);
    urls.extend(d.userinfo_endpoint);
    Ok(urls)
}

/// Whether an ID token's claims (signature already checked) pass, for `nonce`.
pub fn id_token_ok(claims: &Map<String, Value>, nonce: &str) -> bool {
    oidc::check_id_token(claims, nonce).is_ok()
}

/// Whether a back-channel logout token's claims pass.
pub fn logout_token_ok(claims: &Map<String, Value>) -> bool {
    oidc::check_logout_token(claims).is_ok()
}
