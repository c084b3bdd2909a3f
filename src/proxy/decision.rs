//! The decision listener's door (docs/DECISION.md): Portcullis as the authorizer of another
//! proxy (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`, Envoy
//! `ext_authz`). Each request here describes another request; the pipeline judges that one
//! and answers 200 with the identity headers, or the refusal the proxy would have given.
//! Nothing is forwarded.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::ctx::RequestCtx;
use super::forward::{self, Forwarding};
use super::judge::{self, Described, Routed};
use super::pipeline::{self, Destination};
use super::{answer, log, Door};
use crate::caller::Asked;
use crate::error::GatewayError;
use crate::policy::cors::Site;
use crate::response::LocalResponse;
use crate::services::Services;

/// Where the proxies put the method and target of the request they ask about.
const FORWARDED: [(&str, &str); 2] = [
    // Traefik, Caddy.
    ("x-forwarded-method", "x-forwarded-uri"),
    // nginx (`proxy_set_header X-Original-URI $request_uri`, as its docs show).
    ("x-original-method", "x-original-uri"),
];

/// The decision listener: every request is answered, none forwarded.
pub(crate) struct Decider {
    pub services: Arc<Services>,
}

#[async_trait]
impl ProxyHttp for Decider {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.services.runtime.load_full(), &self.services.in_flight)
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        answer::request_id(session, ctx);
        let decided = self.decide(session, ctx).await;
        answer::respond(session, ctx, decided).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        // Every decision request is answered in `request_filter`.
        Err(Error::explain(
            ErrorType::InternalError,
            "a decision is never forwarded",
        ))
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        log::request_done(&self.services.metrics, Door::Decision, session, ctx);
    }
}

impl Decider {
    /// The answer to one decision request.
    async fn decide(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<LocalResponse, GatewayError> {
        pipeline::check_header_size(&session.req_header().headers)?;
        let runtime = ctx.runtime.clone();
        let config = &runtime.config;
        let now = self.services.clock.now();
        // The forwarded method, target and addresses are believed from trusted proxies only:
        // anyone else could describe any request.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let Some(peer) = peer.filter(|p| config.trusted_proxies.contains(p)) else {
            return Err(GatewayError::UntrustedProxy);
        };
        let prefix = config
            .decision
            .as_ref()
            .and_then(|d| d.path_prefix.as_deref());
        let described = Described {
            forwarded: Some(described(session, prefix)?),
            peer: Some(peer),
            trusted: true,
            // The client's scheme is the proxy's X-Forwarded-Proto.
            tls: false,
            upgrade: is_upgrade(&session.req_header().headers),
        };
        let matched = match judge::front(config, session.req_header_mut(), &described, ctx)? {
            Routed::Preflight(mut answer) => {
                // The front proxy copies the headers onto its own answer: 200 says "allowed".
                answer.status = StatusCode::OK;
                return Ok(answer);
            }
            // The built-in endpoints are not served here.
            Routed::To(Destination::Jwks | Destination::Login(_)) => {
                return Err(GatewayError::NotFound)
            }
            Routed::To(Destination::Route(m)) => m,
        };

        // 6 to 10, on the credentials the proxy relayed.
        let req = session.req_header();
        let method = ctx.judged.method.clone().unwrap_or(Method::GET);
        let asked = Asked {
            headers: &req.headers,
            method: &method,
            upgrade: described.upgrade,
            client_ip: ctx.client.ip,
            // The origin the client called: the proxy's X-Forwarded-Proto and -Host.
            site: Site {
                tls: false,
                peer_trusted: true,
            },
            authority: None,
        };
        judge::check_caller(&self.services, &runtime, ctx, &matched, &asked, now).await?;
        Ok(allowed(&runtime, ctx, now))
    }
}

/// An allowed decision: the identity headers, as the upstream would have received them.
fn allowed(runtime: &crate::runtime::Runtime, ctx: &RequestCtx, now: u64) -> LocalResponse {
    let config = &runtime.config;
    let forwarding = Forwarding {
        request_id: ctx.id.value.as_ref(),
        signer: config.signer.as_ref(),
        internal_token: runtime.internal_token.as_ref(),
        now,
        session_cookie: None,
        peer: None,
        peer_trusted: true,
        tls: false,
        identity: ctx.judged.identity.as_ref(),
    };
    // Every identity header is in the answer, empty when the caller has no such value
    // (an anonymous caller, a claim the token lacks): a front proxy that copies them onto
    // the request then overwrites the client's own copy instead of letting it through
    // (Traefik keeps a header the answer lacks; Caddy 2.6 writes its placeholder).
    let ids = &config.identity;
    let known = forward::identity_headers(ids, &forwarding);
    let mut answer = LocalResponse::empty(StatusCode::OK);
    for name in &ids.all {
        let value = known
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let value = value.unwrap_or_else(|| HeaderValue::from_static(""));
        answer = answer.header(name.clone(), value);
    }
    answer
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
