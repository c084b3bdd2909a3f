//! SPEC section 3 as functions: each step takes what it needs and returns the next fact or a
//! refusal. `request_filter` calls them in order; nothing here touches the network.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{COOKIE, HOST};
use http::{HeaderMap, HeaderValue, Method};
use pingora::http::RequestHeader;

use crate::auth::cache::{CachedToken, TokenCache};
use crate::auth::credentials::{self, Credential};
use crate::auth::identity::VerifiedJwt;
use crate::auth::identity::{claim_as_segment, claim_header_value};
use crate::auth::{AuthMethod, Identity};
use crate::config::{Config, IdentitySettings, OnFailure};
use crate::error::GatewayError;
use crate::headers::{self, wire, X_API_KEY, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use crate::login::TokenFacts;
use crate::policy::route::{find_route, AuthMode, RouteMatch};
use crate::policy::Route;
use crate::store::{Presented, Store};

/// Request headers beyond this many bytes (names and values) are refused with 431. Pingora's
/// own limit (1 MiB) is far above what any real client sends.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Longer tokens are verified on every request rather than cached.
const MAX_CACHED_TOKEN_BYTES: usize = 8 * 1024;

/// What step 5 decided.
pub enum Destination<'c> {
    /// A built-in endpoint, served by the gateway.
    Jwks,
    /// Under `[login].base_path`: the rest of the path (an unknown one is 404, never proxied).
    Login(String),
    /// A configured route.
    Route(RouteMatch<'c>),
}

/// 431 before any other work when the headers are oversized.
pub fn check_header_size(headers: &HeaderMap) -> Result<(), GatewayError> {
    let total: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if total > MAX_HEADER_BYTES {
        return Err(GatewayError::HeadersTooLarge);
    }
    Ok(())
}

/// Step 5: built-in endpoints first, then the first matching route.
pub fn route<'c>(
    config: &'c Config,
    method: &Method,
    path: &str,
) -> Result<Destination<'c>, GatewayError> {
    if path == JWKS_PATH && (method == Method::GET || method == Method::HEAD) {
        return Ok(Destination::Jwks);
    }
    if let Some(login) = &config.login {
        if let Some(rest) = path.strip_prefix(login.base_path.as_str()) {
            if rest.is_empty() || rest.starts_with('/') {
                return Ok(Destination::Login(rest.to_string()));
            }
        }
    }
    find_route(&config.routes, method, path)
        .map(Destination::Route)
        .ok_or(GatewayError::NotFound)
}

/// Steps 7 and 8: the credential of the request, verified, for the route's `auth` mode.
/// `Ok(None)`: an anonymous caller the route lets through.
pub fn authenticate(
    config: &Config,
    store: &dyn Store,
    route: &Route,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Option<Identity>, GatewayError> {
    let ignore_all = route.auth == AuthMode::None;
    let cookie = config.session_cookie();
    let credential = credentials::find(headers, |k| !ignore_all && route.accepts(k), cookie)?;
    let Some(credential) = credential else {
        return match route.auth {
            AuthMode::Required => Err(GatewayError::MissingCredentials),
            AuthMode::Optional | AuthMode::None => Ok(None),
        };
    };
    let identity = match credential {
        Credential::Bearer(token) => verify_jwt(config, store, token, now, AuthMethod::Jwt)?,
        Credential::Cookie(token) => verify_jwt(config, store, token, now, AuthMethod::Cookie)?,
        Credential::ApiKey(key) => verify_api_key(config, store, key, client_ip, now)?,
    };
    // A credential that verified is only as good as the revocations it was checked against.
    if !store.is_fresh(config.store.max_staleness) && config.store.on_failure == OnFailure::Closed {
        return Err(GatewayError::Unavailable);
    }
    Ok(Some(identity))
}

fn verify_api_key(
    config: &Config,
    store: &dyn Store,
    presented: &str,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Identity, GatewayError> {
    let key = config
        .api_keys
        .verify(presented, client_ip, now)
        .map_err(GatewayError::InvalidToken)?;
    let presented = Presented {
        subject: &key.subject,
        api_key: Some(&key.id),
        ..Presented::default()
    };
    let revoked = store.is_revoked(&presented, now);
    if revoked {
        return Err(GatewayError::InvalidToken("API key revoked"));
    }
    Ok(Identity {
        subject: key.subject.clone(),
        method: AuthMethod::ApiKey,
        grants: key.grants.clone(),
        claims: key.claims.clone(),
        api_key: Some(key),
    })
}

fn verify_jwt(
    config: &Config,
    store: &dyn Store,
    token: &str,
    now: u64,
    method: AuthMethod,
) -> Result<Identity, GatewayError> {
    // Only tokens of a usual size are cached, so that the cache's memory stays bounded by its
    // entry count (16,384 x at most 8 KiB of claims).
    let cacheable = token.len() <= MAX_CACHED_TOKEN_BYTES;
    let key = TokenCache::<VerifiedJwt>::key(token);
    let hit = cacheable
        .then(|| {
            config
                .token_cache
                .get(&key, now, VerifiedJwt::keys_generation)
        })
        .flatten();
    let verified = match hit {
        Some(hit) => hit,
        None => {
            let token = config
                .verifier
                .verify(token, now)
                .map_err(GatewayError::InvalidToken)?;
            let facts = TokenFacts::of(&token);
            let dies_at = facts.exp.unwrap_or(now) + config.verifier.leeway;
            let remote = token
                .claims
                .get("iss")
                .and_then(|v| v.as_str())
                .and_then(|iss| config.verifier.remote_keys(iss));
            let value = VerifiedJwt {
                jti: facts.jti.map(str::to_string),
                sid: facts.sid.map(str::to_string),
                iat: facts.iat,
                grants: Arc::new(config.roles.grants(&token.roles, &token.permissions)),
                subject: token.subject,
                claims: Arc::new(token.claims),
                remote,
            };
            let entry = CachedToken {
                keys_generation: value.keys_generation(),
                value,
                dies_at,
            };
            if cacheable {
                config.token_cache.insert(key, entry, now)
            } else {
                Arc::new(entry)
            }
        }
    };
    let v = &verified.value;
    // Revocation is never cached: checked on every request.
    let presented = Presented {
        jti: v.jti.as_deref(),
        sid: v.sid.as_deref(),
        subject: &v.subject,
        iat: v.iat,
        api_key: None,
    };
    if store.is_revoked(&presented, now) {
        return Err(GatewayError::InvalidToken("token revoked"));
    }
    Ok(Identity {
        subject: v.subject.clone(),
        method,
        grants: v.grants.clone(),
        claims: v.claims.clone(),
        api_key: None,
    })
}

/// Step 9: roles, permissions, ownership.
pub fn authorize(
    route: &Route,
    captures: &[String],
    identity: Option<&Identity>,
) -> Result<(), GatewayError> {
    let needs_identity =
        !route.roles_any.is_empty() || !route.permissions_all.is_empty() || route.owner.is_some();
    if !needs_identity {
        return Ok(());
    }
    let Some(id) = identity else {
        return Err(GatewayError::MissingCredentials);
    };
    if !route.roles_any.is_empty() && !id.grants.has_any_role(&route.roles_any) {
        return Err(GatewayError::InsufficientScope(
            "a required role is missing",
        ));
    }
    if !route
        .permissions_all
        .iter()
        .all(|p| id.grants.has_permission(p))
    {
        return Err(GatewayError::InsufficientScope(
            "a required permission is missing",
        ));
    }
    if let Some(owner) = &route.owner {
        if !id.grants.has_any_role(&owner.unless_roles) {
            let segment = &captures[owner.capture_index];
            let own = id.claim(&owner.claim).and_then(claim_as_segment);
            if own.as_deref() != Some(segment.as_str()) {
                return Err(GatewayError::InsufficientScope(
                    "not the owner of this resource",
                ));
            }
        }
    }
    Ok(())
}

/// What step 11 writes: facts gathered by the earlier steps.
pub struct Forwarding<'a> {
    pub request_id: Option<&'a HeaderValue>,
    /// Signs `internal_token`s; `now` dates them.
    pub signer: Option<&'a crate::auth::jwt::Signer>,
    pub now: u64,
    /// The session cookie's name, when login cookies are configured: removed like any
    /// credential.
    pub session_cookie: Option<&'a str>,
    pub peer: Option<IpAddr>,
    pub peer_trusted: bool,
    pub tls: bool,
    pub identity: Option<&'a Identity>,
}

/// Step 11 on the upstream request: credentials removed unless forwarded, identity headers set
/// (they were already stripped at step 3), request id and forwarded headers.
pub fn rewrite_upstream_request(
    req: &mut RequestHeader,
    ids: &IdentitySettings,
    f: &Forwarding<'_>,
) -> pingora::Result<()> {
    if !ids.forward_credentials {
        strip_credentials(req, f.session_cookie);
    }
    if let Some(id) = f.identity {
        set_identity(req, ids, id)?;
        if let (Some(internal), Some(signer)) = (&ids.internal_token, f.signer) {
            match internal.token(signer, id, f.now) {
                Ok(token) => insert_checked(req, &internal.header, &token)?,
                Err(e) => tracing::error!(error = %e, "could not sign the internal identity token"),
            }
        }
    }
    if let Some(id) = f.request_id {
        req.insert_header(wire::X_REQUEST_ID, id.clone())?;
    }

    if let Some(peer) = f.peer {
        let mut chain = String::new();
        if f.peer_trusted {
            // Every line, in order, is one list (HAProxy's `option forwardfor` adds a line):
            // the same list step 2 read the client IP from.
            for line in req.headers.get_all(&X_FORWARDED_FOR) {
                let line = String::from_utf8_lossy(line.as_bytes());
                let line = line.trim().trim_matches(',');
                if !line.is_empty() {
                    chain.push_str(line);
                    chain.push_str(", ");
                }
            }
        }
        use std::fmt::Write;
        let _ = write!(chain, "{peer}");
        req.insert_header(wire::X_FORWARDED_FOR, chain)?;
    }
    if !(f.peer_trusted && req.headers.contains_key(&X_FORWARDED_PROTO)) {
        let proto = HeaderValue::from_static(if f.tls { "https" } else { "http" });
        req.insert_header(wire::X_FORWARDED_PROTO, proto)?;
    }
    if !(f.peer_trusted && req.headers.contains_key(&X_FORWARDED_HOST)) {
        let host = req.headers.get(HOST).cloned().or_else(|| {
            req.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        match host {
            Some(h) => req.insert_header(wire::X_FORWARDED_HOST, h)?,
            None => {
                req.remove_header(&X_FORWARDED_HOST);
            }
        }
    }
    Ok(())
}

/// Removes the credentials Portcullis consumes: a Bearer/ApiKey `Authorization` (other schemes
/// are not ours and pass untouched), `X-API-Key`, and the session cookie (other cookies stay).
fn strip_credentials(req: &mut RequestHeader, session_cookie: Option<&str>) {
    if let Some(name) = session_cookie {
        strip_cookie(req, name);
    }
    let ours = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| credentials::parse_authorization(v).is_some());
    if ours {
        req.remove_header(&http::header::AUTHORIZATION);
    }
    headers::strip_all(req, [&X_API_KEY]);
}

/// Rewrites every `Cookie` header without the pairs named `name`.
fn strip_cookie(req: &mut RequestHeader, name: &str) {
    let has_it = |v: &str| {
        v.split(';')
            .any(|p| p.trim().split_once('=').is_some_and(|(k, _)| k == name))
    };
    let values: Vec<String> = req
        .headers
        .get_all(COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if !values.iter().any(|v| has_it(v)) {
        return;
    }
    headers::strip_all(req, [&COOKIE]);
    for v in values {
        let kept: Vec<&str> = v
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty() && p.split_once('=').is_none_or(|(k, _)| k != name))
            .collect();
        if !kept.is_empty() {
            // Built from a valid header value minus some pairs: still a valid value.
            let _ = req.append_header(COOKIE, kept.join("; "));
        }
    }
}

fn set_identity(
    req: &mut RequestHeader,
    ids: &IdentitySettings,
    id: &Identity,
) -> pingora::Result<()> {
    insert_checked(req, &ids.subject, &id.subject)?;
    // The joined roles and permissions are header values made once per grant set.
    for (name, value) in [
        (&ids.roles, id.grants.roles_value()),
        (&ids.permissions, id.grants.permissions_value()),
    ] {
        match value {
            Some(v) => req.insert_header(name.clone(), v.clone())?,
            None => {
                tracing::warn!(header = %name, "identity value is not a valid header value; left out")
            }
        }
    }
    req.insert_header(ids.method.clone(), id.method.as_str())?;
    for (path, header) in &ids.claims {
        if let Some(value) = id.claim(path).and_then(claim_header_value) {
            insert_checked(req, header, &value)?;
        }
    }
    Ok(())
}

/// Sets a header whose value came from a token; a value that cannot be a header value (a
/// control character) is left out rather than forwarded mangled.
fn insert_checked(
    req: &mut RequestHeader,
    name: &http::HeaderName,
    value: &str,
) -> pingora::Result<()> {
    match HeaderValue::from_str(value) {
        Ok(v) => req.insert_header(name.clone(), v),
        Err(_) => {
            tracing::warn!(header = %name, "identity value is not a valid header value; left out");
            Ok(())
        }
    }
}

/// The URI sent upstream: the normalised path (less `strip_prefix`) and the untouched query.
/// `None` when the request target as received (`raw_target`, the bytes Pingora would send) is
/// exactly that already: the common case, with nothing to rebuild.
pub fn upstream_uri(
    route: &Route,
    raw_target: &[u8],
    normalized: &str,
    query: Option<&str>,
) -> Option<Result<http::Uri, GatewayError>> {
    let path = route.upstream_path(normalized);
    let unchanged = raw_target
        .strip_prefix(path.as_bytes())
        .is_some_and(|rest| match query {
            None => rest.is_empty(),
            Some(q) => rest.strip_prefix(b"?") == Some(q.as_bytes()),
        });
    if unchanged {
        return None;
    }
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    Some(
        uri.parse()
            .map_err(|_| GatewayError::InvalidRequest("malformed request target")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::roles::Grants;

    fn identity(roles: &[&str], perms: &[&str], sub: &str) -> Identity {
        Identity {
            subject: sub.into(),
            method: AuthMethod::Jwt,
            grants: Arc::new(Grants::new(
                roles.iter().map(|s| s.to_string()).collect(),
                perms.iter().map(|s| s.to_string()).collect(),
            )),
            claims: Arc::new(serde_json::json!({"sub": sub}).as_object().unwrap().clone()),
            api_key: None,
        }
    }

    #[test]
    fn header_size_limit() {
        let mut h = HeaderMap::new();
        h.insert("x-big", "a".repeat(MAX_HEADER_BYTES).parse().unwrap());
        assert_eq!(check_header_size(&h), Err(GatewayError::HeadersTooLarge));
        assert_eq!(check_header_size(&HeaderMap::new()), Ok(()));
    }

    #[test]
    fn anonymous_callers_on_guarded_routes_need_credentials() {
        let id = identity(&["user"], &[], "u1");
        assert!(matches!(
            authorize_roles(&["user"], None),
            Err(GatewayError::MissingCredentials)
        ));
        assert!(authorize_roles(&["user"], Some(&id)).is_ok());
        assert!(matches!(
            authorize_roles(&["admin"], Some(&id)),
            Err(GatewayError::InsufficientScope(_))
        ));
    }

    fn authorize_roles(roles: &[&str], id: Option<&Identity>) -> Result<(), GatewayError> {
        let pool = Arc::new(crate::proxy::upstream::UpstreamPool::new(
            crate::proxy::upstream::UpstreamSettings {
                name: "u".into(),
                targets: vec!["127.0.0.1:1".parse().unwrap()],
                tls: false,
                sni: String::new(),
                ca_der: None,
                connect_timeout: std::time::Duration::from_secs(1),
                read_timeout: std::time::Duration::from_secs(1),
                health_check: None,
            },
        ));
        let route = Route {
            name: "r".into(),
            pattern: crate::policy::PathPattern::parse("/**").unwrap(),
            methods: vec![],
            upstream: pool,
            auth: AuthMode::Optional,
            accept: vec![],
            roles_any: roles.iter().map(|s| s.to_string()).collect(),
            permissions_all: vec![],
            strip_prefix: None,
            owner: None,
            rate_limits: vec![],
        };
        authorize(&route, &[], id)
    }
}
