//! Steps of the request pipeline as pure functions (the header limit, step 5's routing, step
//! 9's authorisation): each takes what it needs and returns the next fact or a refusal.

use http::{HeaderMap, Method};

use crate::auth::Identity;
use crate::claims::claim_as_segment;
use crate::config::Config;
use crate::error::GatewayError;
use crate::policy::route::{find_route, RouteMatch};
use crate::policy::Route;

/// Request headers beyond this many bytes (names and values) are refused with 431. Pingora's
/// own limit (1 MiB) is far above what any real client sends.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

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

/// Step 9: roles, permissions, ownership.
pub(crate) fn authorize(
    route: &Route,
    captures: &[String],
    identity: Option<&Identity>,
) -> Result<(), GatewayError> {
    let needs_identity = !route.roles_any.is_empty()
        || !route.permissions_all.is_empty()
        || route.owner.is_some()
        || route.require_mfa;
    if !needs_identity {
        return Ok(());
    }
    let Some(id) = identity else {
        return Err(GatewayError::MissingCredentials);
    };
    // Who the caller is comes before what it may do: a missing second factor is a 401 that
    // asks for a stronger login (RFC 9470), before any 403.
    if route.require_mfa && !id.shows_second_factor() {
        return Err(GatewayError::SecondFactorRequired);
    }
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
    use crate::auth::AuthMethod;
    use crate::policy::roles::Grants;
    use crate::policy::route::AuthMode;
    use std::sync::Arc;

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
            bound: false,
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
            auth: AuthMode::Optional,
            roles_any: roles.iter().map(|s| s.to_string()).collect(),
            ..Route::bare(
                crate::policy::route::PathPattern::parse("/**").unwrap(),
                vec![],
            )
        };
        authorize(&route, &[], id)
    }
}
