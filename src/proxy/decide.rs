//! The proxy's door to the pipeline: the request described as itself, steps 2 to 10 run on
//! it, and then it is forwarded or answered here (a built-in endpoint, a preflight, a
//! refusal).

use http::header::CACHE_CONTROL;
use http::{HeaderValue, Method, StatusCode};
use pingora::proxy::Session;

use super::answer::read_body;
use super::ctx::RequestCtx;
use super::forward;
use super::judge::{self, Described, Routed};
use super::pipeline::{self, Destination};
use super::sign_in;
use super::Gateway;
use crate::caller::Asked;
use crate::endpoints::{self, EndpointRequest};
use crate::error::GatewayError;
use crate::policy::cors::Site;
use crate::policy::path;
use crate::response::LocalResponse;

/// What the pipeline decided for a request.
pub(super) enum Decision {
    Forward,
    Respond(LocalResponse),
}

impl Gateway {
    pub(super) async fn decide(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, GatewayError> {
        pipeline::check_header_size(&session.req_header().headers)?;
        // Step 4 on the target as the client sent it: Pingora drops a fragment from an
        // HTTP/1.x target as it parses it. (Over HTTP/2 the `http` crate has cut `:path` at a
        // `#` already, and a space or a control byte resets the stream.)
        if !session.is_http2() {
            path::refuse_raw(received_target(&session.to_h1_raw()))?;
        }
        let runtime = ctx.runtime.clone();
        let config = &runtime.config;
        let now = self.services.clock.now();
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let described = Described {
            forwarded: None,
            proxies: &config.trusted_proxies,
            peer,
            trusted: peer.is_some_and(|p| config.trusted_proxies.contains(&p)),
            tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
            upgrade: session.is_upgrade_req(),
        };
        let matched = match judge::front(config, session.req_header_mut(), &described, ctx)? {
            Routed::Preflight(answer) => return Ok(Decision::Respond(answer)),
            Routed::To(Destination::Jwks) => {
                let resp = LocalResponse::json(StatusCode::OK, config.jwks.clone()).header(
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                return Ok(Decision::Respond(resp));
            }
            Routed::To(Destination::Login(rest)) => {
                return self.builtin(session, ctx, &rest, now).await;
            }
            Routed::To(Destination::Route(m)) => m,
        };

        // 6 to 10: limits, credentials, authorisation, limits by caller.
        let req = session.req_header();
        let asked = Asked {
            headers: &req.headers,
            method: &req.method,
            upgrade: described.upgrade,
            client_ip: ctx.client.ip,
            site: site(ctx),
            authority: req.uri.authority().map(|a| a.as_str()),
            renewed: None,
            sets_cookies: true,
            path: None,
            client_cert: crate::client_tls::of_session(
                session,
                self.services.client_verifier.as_deref(),
            ),
        };
        let checked = judge::check_caller(&self.services, &runtime, ctx, &matched, &asked, now);
        if let Err(refusal) = checked.await {
            let req = session.req_header();
            return match sign_in::redirect(config, matched.route, req, ctx, refusal) {
                Some(answer) => Ok(Decision::Respond(answer)),
                None => Err(refusal),
            };
        }

        // The upstream sees the normalised path, less `strip_prefix`.
        let path = ctx.judged.path.as_deref().unwrap_or_default();
        let uri = forward::upstream_uri(matched.route, req.raw_path(), path, req.uri.query());
        if let Some(uri) = uri {
            forward::set_uri_keeping_host(session.req_header_mut(), uri?);
        }
        Ok(Decision::Forward)
    }

    /// Step 5 under `[login].base_path`: the endpoint answers; its refusal and tally are the
    /// request's.
    async fn builtin(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        sub_path: &str,
        now: u64,
    ) -> Result<Decision, GatewayError> {
        let body = read_body(session).await?;
        let runtime = ctx.runtime.clone();
        let req = session.req_header();
        let method: &Method = &req.method;
        let request = EndpointRequest {
            method,
            sub_path,
            query: req.uri.query(),
            headers: &req.headers,
            body: &body,
            limit_ip: ctx.client.ip.map(|ip| runtime.config.server.limit_ip(ip)),
            client_ip: ctx.client.ip,
            request_id: &ctx.id.text,
            site: site(ctx),
            authority: req.uri.authority().map(|a| a.as_str()),
            path: ctx.judged.path.as_deref().unwrap_or_default(),
            client_cert: crate::client_tls::of_session(
                session,
                self.services.client_verifier.as_deref(),
            ),
        };
        let served = endpoints::serve(&request, &self.services, &runtime, now).await;
        ctx.judged.refusal = served.refusal;
        ctx.judged.rate_limit = served.limits;
        Ok(Decision::Respond(served.response))
    }
}

/// The request-target of an HTTP/1.x request line, as received (a space inside it shows as
/// part of it).
fn received_target(head: &[u8]) -> &[u8] {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line
        .iter()
        .position(|&b| b == b' ')
        .map_or(line.len(), |i| i + 1);
    let end = line.iter().rposition(|&b| b == b' ').unwrap_or(line.len());
    line.get(start..end).unwrap_or_default()
}

/// How the gateway's own origin is told for this connection.
fn site(ctx: &RequestCtx) -> Site {
    Site {
        tls: ctx.client.tls,
        peer_trusted: ctx.client.trusted,
    }
}

#[cfg(test)]
mod tests {
    use super::received_target;

    #[test]
    fn the_target_is_read_off_the_request_line() {
        let t = |head: &[u8]| received_target(head).to_vec();
        assert_eq!(t(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"), b"/a?b=1");
        assert_eq!(
            t(b"GET /admin#/../public HTTP/1.1\r\n"),
            b"/admin#/../public"
        );
        assert_eq!(t(b"GET /a b HTTP/1.1\r\n"), b"/a b");
        assert_eq!(t(b"GET\r\n"), b"");
    }
}
