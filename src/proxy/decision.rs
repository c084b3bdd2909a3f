//! SPEC section 9: Portcullis as the authorizer of another proxy (nginx `auth_request`,
//! Traefik `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz`). Each request on the
//! decision listener describes another request; the pipeline judges that one and answers
//! 200 with the identity headers, or the refusal the proxy would have given. Nothing is
//! forwarded.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, Method, StatusCode};
use pingora::proxy::Session;

use super::ctx::{Answered, RequestCtx};
use super::decide::Caller;
use super::forward::{self, Forwarding};
use super::Gateway;
use crate::error::GatewayError;
use crate::policy::cors::Site;
use crate::policy::path;
use crate::policy::route::find_route;
use crate::response::LocalResponse;

/// Where the proxies put the method and target of the request they ask about.
const FORWARDED: [(&str, &str); 2] = [
    // Traefik, Caddy.
    ("x-forwarded-method", "x-forwarded-uri"),
    // nginx (`proxy_set_header X-Original-URI $request_uri`, as its docs show).
    ("x-original-method", "x-original-uri"),
];

impl Gateway {
    /// The answer to one decision request.
    pub(super) async fn decide_for_proxy(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<LocalResponse, GatewayError> {
        let runtime = ctx.runtime.clone();
        let config = &runtime.config;
        let now = self.clock.now();
        super::pipeline::check_header_size(&session.req_header().headers)?;
        // The forwarded method, target and addresses are believed from trusted proxies only:
        // anyone else could describe any request.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let Some(peer) = peer.filter(|p| config.trusted_proxies.contains(p)) else {
            return Err(GatewayError::UntrustedProxy);
        };
        ctx.peer_trusted = true;
        let headers = &session.req_header().headers;
        ctx.client_ip = Some(config.trusted_proxies.client_ip(peer, headers));
        let prefix = config
            .decision
            .as_ref()
            .and_then(|d| d.path_prefix.as_deref());
        let (method, target) = described(session, prefix)?;
        ctx.decision = Some(method.clone());
        // Step 3 on what the proxy relayed of the client's headers.
        config
            .identity
            .client_headers
            .strip(session.req_header_mut(), true);

        // 4. the target's path, refused or normalised exactly as on the proxy
        let raw_path = target.split('?').next().unwrap_or_default();
        let path = path::normalize(raw_path, config.server.allow_path_semicolons)?;
        ctx.path = Some(path.clone());
        // 5. the route (the built-in endpoints are not served here)
        let matched = find_route(&config.routes, &method, &path).ok_or(GatewayError::NotFound)?;
        ctx.answered = Answered::Route(matched.route.clone());

        // 6 to 10, on the credentials the proxy relayed.
        let req = session.req_header();
        let caller = Caller {
            headers: &req.headers,
            method: &method,
            upgrade: is_upgrade(&req.headers),
            // The origin the client called: the proxy's X-Forwarded-Proto and -Host.
            site: Site {
                tls: false,
                peer_trusted: true,
            },
            authority: None,
        };
        self.check_caller(&runtime, ctx, &matched, caller, now)
            .await?;

        // Allowed: the identity headers, as the upstream would have received them.
        let forwarding = Forwarding {
            request_id: ctx.request_id_value.as_ref(),
            signer: config.signer.as_ref(),
            internal_token: runtime.internal_token.as_ref(),
            now,
            session_cookie: None,
            peer: None,
            peer_trusted: true,
            tls: false,
            identity: ctx.identity.as_ref(),
        };
        // Every identity header is in the answer, empty when the caller has no such value
        // (an anonymous caller, a claim the token lacks): a front proxy that copies them onto
        // the request then overwrites the client's own copy instead of letting it through
        // (Traefik keeps a header the answer lacks; Caddy 2.6 writes its placeholder).
        let ids = &config.identity;
        let known = forward::identity_headers(ids, &forwarding);
        let mut answer = LocalResponse::empty(StatusCode::OK);
        for name in &ids.all {
            let value = known.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let value = value.and_then(|v| v.to_str().ok()).unwrap_or_default();
            answer = answer.header(name.clone(), value);
        }
        Ok(answer)
    }
}

/// The method and target of the request a decision is about: from the forwarded headers, else
/// the decision request's own, less `path_prefix` (Envoy's `ext_authz`).
fn described(session: &Session, prefix: Option<&str>) -> Result<(Method, String), GatewayError> {
    let req = session.req_header();
    let text = |name: &str| -> Result<Option<&str>, GatewayError> {
        match req.headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| {
                GatewayError::InvalidRequest("a forwarded method or target is not text")
            }),
        }
    };
    for (method_header, uri_header) in FORWARDED {
        let Some(uri) = text(uri_header)? else {
            continue;
        };
        let method = match text(method_header)? {
            Some(m) => Method::from_bytes(m.trim().as_bytes())
                .map_err(|_| GatewayError::InvalidRequest("malformed forwarded method"))?,
            None => req.method.clone(),
        };
        return Ok((method, origin_form(uri.trim())?));
    }
    let own = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = match prefix {
        Some(p) => match own.strip_prefix(p) {
            Some(rest) if rest.is_empty() || rest.starts_with('?') => format!("/{rest}"),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => return Err(GatewayError::NotFound),
        },
        None => own.to_string(),
    };
    Ok((req.method.clone(), target))
}

/// A target as a path and query: an absolute URI (some proxies forward one) loses its scheme
/// and authority; anything else must start with `/`.
fn origin_form(uri: &str) -> Result<String, GatewayError> {
    if uri.starts_with('/') {
        return Ok(uri.to_string());
    }
    let parsed: http::Uri = uri
        .parse()
        .map_err(|_| GatewayError::InvalidRequest("malformed forwarded target"))?;
    match (parsed.scheme(), parsed.path_and_query()) {
        (Some(_), Some(pq)) => Ok(pq.as_str().to_string()),
        _ => Err(GatewayError::InvalidRequest("malformed forwarded target")),
    }
}

/// A WebSocket (or other) upgrade, as relayed: `Connection: upgrade` and an `Upgrade`.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_taken_in_origin_form() {
        assert_eq!(origin_form("/a/b?c=1").unwrap(), "/a/b?c=1");
        assert_eq!(origin_form("https://x.test/a?b").unwrap(), "/a?b");
        assert!(origin_form("a/b").is_err());
        assert!(origin_form("").is_err());
    }

    #[test]
    fn upgrades_are_told_by_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, "websocket".parse().unwrap());
        assert!(!is_upgrade(&h));
        h.insert(CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade(&h));
    }
}
