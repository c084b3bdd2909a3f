//! The doors of the pipeline on Pingora: [`Gateway`], the proxy (`ProxyHttp`: each phase
//! dispatches to the steps), and [`decision::Decider`], the decision listener. Both describe
//! their request and run the same steps on it (`judge`).

mod answer;
mod ctx;
mod decide;
pub(crate) mod decision;
pub(crate) mod forward;
mod judge;
mod log;
pub(crate) mod pipeline;
mod renew;
mod sign_in;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::header::VARY;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::error::GatewayError;
use crate::headers;
use crate::response::LocalResponse;
use crate::services::Services;
pub(crate) use ctx::RequestCtx;
use decide::Decision;
use forward::Forwarding;

/// Which door a request came through: its metrics and its log line say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    Proxy,
    Decision,
}

/// The proxy: requests on `listen`, forwarded or answered here.
pub(crate) struct Gateway {
    pub services: Arc<Services>,
}

#[async_trait]
impl ProxyHttp for Gateway {
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
        let answered = match self.decide(session, ctx).await {
            Ok(Decision::Forward) => return Ok(false),
            Ok(Decision::Respond(response)) => Ok(response),
            Err(refusal) => Err(refusal),
        };
        answer::respond(session, ctx, answered, self.services.clock.now()).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let route = ctx
            .judged
            .answered
            .route()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route chosen"))?;
        let pool = ctx.runtime.upstream(route.upstream);
        Ok(Box::new(pool.peer(pool.select())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.timing.upstream_start = Some(Instant::now());
        let config = &ctx.runtime.config;
        let forwarding = Forwarding {
            request_id: ctx.id.value.as_ref(),
            signer: config.signer.as_ref(),
            internal_token: ctx.runtime.internal_token.as_ref(),
            now: self.services.clock.now(),
            session_cookie: config.session_cookie(),
            peer: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            peer_trusted: ctx.client.trusted,
            tls: ctx.client.tls,
            identity: ctx.judged.identity.as_ref(),
        };
        forward::rewrite_upstream_request(upstream_request, &config.identity, &forwarding)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let started = ctx.timing.upstream_start.take();
        if let (Some(start), Some(route)) = (started, ctx.judged.answered.route()) {
            let upstream = ctx.runtime.upstream(route.upstream);
            self.services
                .metrics
                .upstream_duration
                .with_label_values(&[upstream.name()])
                .observe(start.elapsed().as_secs_f64());
        }
        if let Some(id) = &ctx.id.value {
            headers::wire::X_REQUEST_ID.replace_on(upstream_response, id.clone());
        }
        ctx.judged
            .rate_limit
            .headers(|name, value| name.replace_on(upstream_response, value));
        // The route's (and `[response]`'s) headers, where the upstream set none of its own.
        if let Some(route) = ctx.judged.answered.route() {
            for (name, value) in &route.response_headers {
                if !upstream_response.headers.contains_key(name) {
                    upstream_response.insert_header(name.clone(), value.clone())?;
                }
            }
        }
        for cookie in &ctx.browser.set_cookies {
            upstream_response.append_header(http::header::SET_COOKIE, cookie.clone())?;
        }
        let config = &ctx.runtime.config;
        if config.dpop.settings.require_nonce {
            let now = self.services.clock.now();
            let request = &session.req_header().headers;
            for (name, value) in crate::caller::bound::answer_headers(config, request, None, now) {
                upstream_response.insert_header(name, value)?;
            }
        }
        // Ours replace whatever CORS headers the upstream set; `Vary` is added to.
        for (name, value) in &ctx.browser.cors {
            if name == VARY {
                upstream_response.append_header(name.clone(), value.clone())?;
            } else {
                upstream_response.insert_header(name.clone(), value.clone())?;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match proxy_failure(e) {
            Some(r) if session.response_written().is_none() => {
                ctx.refused(r);
                let mut resp = LocalResponse::refusal(&r, &ctx.id.text);
                resp.headers.extend(ctx.browser.cors.iter().cloned());
                let (config, now) = (&ctx.runtime.config, self.services.clock.now());
                let request = &session.req_header().headers;
                let dpop = crate::caller::bound::answer_headers(config, request, None, now);
                resp.headers.extend(dpop);
                let renewed = ctx.browser.set_cookies.iter().cloned();
                resp.headers
                    .extend(renewed.map(|c| (http::header::SET_COOKIE, c)));
                if let Err(err) = answer::write(session, resp, &ctx.id).await {
                    tracing::debug!(error = %err, "could not send the error response");
                }
                r.status().as_u16()
            }
            _ => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        log::request_done(&self.services.metrics, Door::Proxy, session, ctx);
    }
}

/// The refusal for a failure to proxy: 504 for timeouts, 400 for a malformed request, else
/// 502; `None` when the client went away (nobody to answer).
fn proxy_failure(e: &Error) -> Option<GatewayError> {
    match (e.esource(), e.etype()) {
        (_, ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout) => {
            Some(GatewayError::GatewayTimeout)
        }
        (
            ErrorSource::Downstream,
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
        ) => None,
        (ErrorSource::Downstream, _) => Some(GatewayError::InvalidRequest("malformed request")),
        _ => Some(GatewayError::BadGateway),
    }
}

#[cfg(test)]
mod tests;
