//! The decision listener's door (docs/DECISION.md): Portcullis as the authorizer of another
//! proxy (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`, Envoy
//! `ext_authz`). Each request here describes another request; the pipeline judges that one
//! and answers 200 with the identity headers, or the refusal the proxy would have given.
//! Nothing is forwarded.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use pingora::http::RequestHeader;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::ctx::RequestCtx;
use super::forward::{self, Forwarding};
use super::judge::{self, Described, Routed};
use super::pipeline::{self, Destination};
use super::{answer, log, Door};
use crate::caller::Asked;
use crate::config::{DecisionSettings, Forwarded};
use crate::error::GatewayError;
use crate::policy::cors::Site;
use crate::response::LocalResponse;
use crate::services::Services;

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
        let decided = match self.decide(session, ctx).await {
            Ok(answer) => answer,
            Err(refusal) => {
                ctx.refused(refusal);
                refused(&refusal, &ctx.id.text)
            }
        };
        answer::respond(session, ctx, Ok(decided), self.services.clock.now()).await?;
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
        let Some(settings) = &config.decision else {
            // A reload removed the section: the listener stays until a restart, answering
            // nothing.
            return Err(GatewayError::NotFound);
        };
        // The described method, target and addresses are believed from the listed front
        // proxies only: anyone else could describe any request.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let Some(peer) = peer.filter(|p| settings.trusted_proxies.contains(p)) else {
            return Err(GatewayError::UntrustedProxy);
        };
        let described = Described {
            forwarded: Some(described(session.req_header(), settings)?),
            proxies: &settings.trusted_proxies,
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
            renewed: None,
            sets_cookies: false,
            path: None,
            client_cert: None,
        };
        judge::check_caller(&self.services, &runtime, ctx, &matched, &asked, now).await?;
        Ok(allowed(&runtime, ctx, now))
    }
}

/// The header that repeats a refusal's JSON body: nginx's `auth_request` keeps the headers of
/// its subrequest's answer but not its body, so the example relays the refusal from it
/// instead of asking twice.
const REFUSAL_HEADER: &str = "x-portcullis-refusal";

/// A refused decision: the refusal as the proxy would answer it, its body repeated in
/// [`REFUSAL_HEADER`].
fn refused(refusal: &GatewayError, request_id: &str) -> LocalResponse {
    let answer = LocalResponse::refusal(refusal, request_id);
    match HeaderValue::from_bytes(&answer.body) {
        Ok(body) => answer.header(http::HeaderName::from_static(REFUSAL_HEADER), body),
        Err(_) => answer,
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

/// The method and target of the request a decision is about, from the one source `forwarded`
/// names: its two headers (both required), or the decision request's own method and target
/// less `path_prefix` (Envoy's `ext_authz`). The target is refused unless it is origin-form
/// visible ASCII: a `#`, a space, a control or a non-ASCII byte would let the front proxy and
/// the upstream read another path than the one judged.
pub(crate) fn described(
    req: &RequestHeader,
    settings: &DecisionSettings,
) -> Result<(Method, String), GatewayError> {
    let pair = match settings.forwarded {
        Forwarded::XForwardedHeaders => ("x-forwarded-method", "x-forwarded-uri"),
        Forwarded::XOriginal => ("x-original-method", "x-original-uri"),
        Forwarded::Path => {
            let target = own_target(req.raw_path(), settings.path_prefix.as_deref())?;
            return Ok((req.method.clone(), target));
        }
    };
    let one = |name: &str| -> Result<&[u8], GatewayError> {
        let mut values = req.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(v.as_bytes()),
            (None, _) => Err(INCOMPLETE),
            (Some(_), Some(_)) => Err(GatewayError::InvalidRequest(
                "a forwarded method or target is repeated",
            )),
        }
    };
    let (method, target) = (one(pair.0)?, one(pair.1)?);
    let method = Method::from_bytes(method)
        .map_err(|_| GatewayError::InvalidRequest("malformed forwarded method"))?;
    Ok((method, origin_form(target)?))
}

/// A forwarded source without its method or its target.
const INCOMPLETE: GatewayError =
    GatewayError::InvalidRequest("the forwarded method and target are both required");

/// The decision request's own target less `prefix`: a target elsewhere is refused.
fn own_target(raw: &[u8], prefix: Option<&str>) -> Result<String, GatewayError> {
    let own = origin_form(raw)?;
    let Some(p) = prefix else {
        return Ok(own);
    };
    match own.strip_prefix(p) {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => Ok(format!("/{rest}")),
        Some(rest) if rest.starts_with('/') => Ok(rest.to_string()),
        _ => Err(GatewayError::InvalidRequest(
            "the path is not under path_prefix",
        )),
    }
}

/// A described target: origin-form (`/` first), visible ASCII only.
fn origin_form(target: &[u8]) -> Result<String, GatewayError> {
    if target.first() != Some(&b'/') {
        return Err(GatewayError::InvalidRequest(
            "a forwarded target must be a path (origin-form)",
        ));
    }
    if target
        .iter()
        .any(|&b| !(0x21..0x7f).contains(&b) || b == b'#')
    {
        return Err(GatewayError::InvalidRequest(
            "a forwarded target holds a fragment, a space, a control or a non-ASCII byte",
        ));
    }
    // Visible ASCII: UTF-8 already.
    Ok(String::from_utf8_lossy(target).into_owned())
}

/// A WebSocket (or other) upgrade, as a front proxy relays it: front proxies do not relay
/// `Connection`, so `Sec-WebSocket-Key` or `Upgrade` alone tells it.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) || headers.contains_key(SEC_WEBSOCKET_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_origin_form_visible_ascii() {
        assert_eq!(origin_form(b"/a/b?c=1").unwrap(), "/a/b?c=1");
        for bad in [
            &b"https://x.test/a?b"[..],
            b"a/b",
            b"",
            b"/admin/secret#/../../public/x",
            b"/a b",
            b"/a\tb",
            b"/a\x7f",
            "/caf\u{e9}".as_bytes(),
        ] {
            assert!(
                origin_form(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_own_target_must_be_under_the_prefix() {
        assert_eq!(
            own_target(b"/check/api/x?y", Some("/check")).unwrap(),
            "/api/x?y"
        );
        assert_eq!(own_target(b"/check?y", Some("/check")).unwrap(), "/?y");
        assert_eq!(own_target(b"/api/x", None).unwrap(), "/api/x");
        assert!(own_target(b"/checking/api", Some("/check")).is_err());
        assert!(own_target(b"/api", Some("/check")).is_err());
    }

    #[test]
    fn upgrades_are_told_without_connection() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert!(is_upgrade(&h));
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, "websocket".parse().unwrap());
        assert!(is_upgrade(&h));
    }
}
