//! SPEC section 3, steps 5 to 9, as functions: each takes what it needs and returns the next
//! fact or a refusal. `decide` calls them in order; nothing here touches the network.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::auth::cache::{CachedToken, TokenCache};
use crate::auth::credentials::{self, Credential};
use crate::auth::identity::VerifiedJwt;
use crate::auth::{AuthMethod, Identity};
use crate::claims::claim_as_segment;
use crate::config::{Config, OnFailure};
use crate::error::{ApiKeyError, GatewayError, TokenError};
use crate::login::TokenFacts;
use crate::policy::route::{find_route, AuthMode, RouteMatch};
use crate::policy::Route;
use crate::runtime::Runtime;
use crate::store::{Presented, Store};

/// Request headers beyond this many bytes (names and values) are refused with 431. Pingora's
/// own limit (1 MiB) is far above what any real client sends.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Longer tokens are verified on every request rather than cached.
const MAX_CACHED_TOKEN_BYTES: usize = 8 * 1024;

/// What step 5 decided.
pub(crate) enum Destination<'c> {
    /// A built-in endpoint, served by the gateway.
    Jwks,
    /// Under `[login].base_path`: the rest of the path (an unknown one is 404, never proxied).
    Login(String),
    /// A configured route.
    Route(RouteMatch<'c>),
}

/// 431 before any other work when the headers are oversized.
pub(crate) fn check_header_size(headers: &HeaderMap) -> Result<(), GatewayError> {
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
pub(crate) fn route<'c>(
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
pub(crate) fn authenticate(
    runtime: &Runtime,
    store: &dyn Store,
    route: &Route,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Option<Identity>, GatewayError> {
    let config = &runtime.config;
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
        Credential::Bearer(token) => verify_jwt(runtime, store, token, now, AuthMethod::Jwt)?,
        Credential::Cookie(token) => verify_jwt(runtime, store, token, now, AuthMethod::Cookie)?,
        Credential::ApiKey(key) => verify_api_key(runtime, store, key, client_ip, now)?,
    };
    // A credential that verified is only as good as the revocations it was checked against.
    if !store.is_fresh(config.store.max_staleness) && config.store.on_failure == OnFailure::Closed {
        return Err(GatewayError::Unavailable);
    }
    Ok(Some(identity))
}

fn verify_api_key(
    runtime: &Runtime,
    store: &dyn Store,
    presented: &str,
    client_ip: Option<IpAddr>,
    now: u64,
) -> Result<Identity, GatewayError> {
    // The config's keys, then those users made (held in memory: no database round trip).
    let mut verified = runtime.config.api_keys.verify(presented, client_ip, now);
    let mut made_by_user = false;
    if let (Err(ApiKeyError::Unknown), Some(accounts)) = (&verified, &runtime.accounts) {
        verified = accounts.keys.verify(presented, client_ip, now);
        made_by_user = true;
    }
    let key = verified.map_err(GatewayError::InvalidApiKey)?;
    let presented = Presented {
        subject: &key.subject,
        api_key: Some(&key.id),
        // A key a user made ends with its deletion or its owner's disabling, not with a
        // revocation of the owner's tokens (a new password keeps the user's keys). A
        // configured key counts as issued at the epoch: any revoke-all covers it.
        iat: made_by_user.then_some(u64::MAX),
        ..Presented::default()
    };
    let revoked = store.is_revoked(&presented, now);
    if revoked {
        return Err(GatewayError::InvalidApiKey(ApiKeyError::Revoked));
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
    runtime: &Runtime,
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
            runtime
                .token_cache
                .get(&key, now, VerifiedJwt::keys_generation)
        })
        .flatten();
    let verified = match hit {
        Some(hit) => hit,
        None => {
            let token = runtime
                .verifier
                .verify(token, now)
                .map_err(GatewayError::InvalidToken)?;
            let facts = TokenFacts::of(&token);
            let dies_at = facts.exp.unwrap_or(now) + runtime.verifier.leeway;
            let remote = token
                .claims
                .get("iss")
                .and_then(|v| v.as_str())
                .and_then(|iss| runtime.verifier.remote_keys(iss));
            let value = VerifiedJwt {
                jti: facts.jti.map(str::to_string),
                sid: facts.sid.map(str::to_string),
                iat: facts.iat,
                grants: Arc::new(
                    runtime
                        .config
                        .roles
                        .grants(&token.roles, &token.permissions),
                ),
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
                runtime.token_cache.insert(key, entry, now)
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
        return Err(GatewayError::InvalidToken(TokenError::Revoked));
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
pub(crate) fn authorize(
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
        let route = Route {
            name: "r".into(),
            pattern: crate::policy::route::PathPattern::parse("/**").unwrap(),
            methods: vec![],
            upstream: crate::upstream::UpstreamId(0),
            auth: AuthMode::Optional,
            accept: vec![],
            roles_any: roles.iter().map(|s| s.to_string()).collect(),
            permissions_all: vec![],
            strip_prefix: None,
            owner: None,
            rate_limits: vec![],
            cors: true,
        };
        authorize(&route, &[], id)
    }
}
