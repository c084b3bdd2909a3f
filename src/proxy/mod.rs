//! The Pingora `ProxyHttp` implementation: each phase dispatches to the pipeline's steps.

mod ctx;
mod decide;
mod decision;
pub mod forward;
mod log;
pub(crate) mod pipeline;
mod write;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::header::VARY;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::accounts::password::PasswordPool;
use crate::clock::Clock;
use crate::error::GatewayError;
use crate::headers::{self, X_REQUEST_ID};
use crate::metrics::Metrics;
use crate::response::LocalResponse;
use crate::runtime::Runtime;
use crate::store::Store;
pub(crate) use ctx::RequestCtx;
use decide::Decision;
use forward::Forwarding;

/// The gateway: the current runtime (swapped whole on reload) and what outlives a reload:
/// the shared state, the password workers, the clock, the metrics.
pub(crate) struct Gateway {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub store: Arc<dyn Store>,
    pub passwords: PasswordPool,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Requests being served, for a graceful shutdown to wait for.
    pub in_flight: Arc<AtomicUsize>,
    /// The decision listener's (SPEC section 9): every request is answered, none forwarded.
    pub decision: bool,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.runtime.load_full(), &self.in_flight)
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        // 1. request id
        let incoming = session.req_header().headers.get(X_REQUEST_ID);
        ctx.request_id = headers::request_id(incoming.map(|v| v.as_bytes()));
        // Visible ASCII by construction (a client's is checked, ours is a UUID).
        ctx.request_id_value = HeaderValue::from_str(&ctx.request_id).ok();
        let decided = match self.decision {
            true => self
                .decide_for_proxy(session, ctx)
                .await
                .map(Decision::Respond),
            false => self.decide(session, ctx).await,
        };
        let mut response = match decided {
            Ok(Decision::Forward) => return Ok(false),
            Ok(Decision::Respond(resp)) => resp,
            Err(refusal) => {
                ctx.refusal = Some(refusal);
                LocalResponse::refusal(&refusal, &ctx.request_id)
            }
        };
        let limits = ctx.rate_limit.headers().into_iter();
        let cors = cors_headers(ctx).into_iter();
        response
            .headers
            .extend(limits.chain(cors).map(|(name, value)| {
                // Digits, and the origin the request sent: visible ASCII.
                (name, value.to_str().unwrap_or_default().to_string())
            }));
        if ctx.upgrade {
            // A refused upgrade ends the connection: nothing the client sends after it is
            // read as another request, let alone tunnelled.
            session.set_keepalive(None);
        }
        write::write(session, response, &ctx.request_id).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let route = ctx
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
        ctx.upstream_start = Some(Instant::now());
        let config = &ctx.runtime.config;
        let forwarding = Forwarding {
            request_id: ctx.request_id_value.as_ref(),
            signer: config.signer.as_ref(),
            internal_token: ctx.runtime.internal_token.as_ref(),
            now: self.clock.now(),
            session_cookie: config.session_cookie(),
            peer: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            peer_trusted: ctx.peer_trusted,
            tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
            identity: ctx.identity.as_ref(),
        };
        forward::rewrite_upstream_request(upstream_request, &config.identity, &forwarding)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let (Some(start), Some(route)) = (ctx.upstream_start.take(), ctx.answered.route()) {
            let upstream = ctx.runtime.upstream(route.upstream);
            self.metrics
                .upstream_duration
                .with_label_values(&[upstream.name()])
                .observe(start.elapsed().as_secs_f64());
        }
        if let Some(id) = &ctx.request_id_value {
            upstream_response.insert_header(headers::wire::X_REQUEST_ID, id.clone())?;
        }
        for (name, value) in ctx.rate_limit.headers() {
            match crate::ratelimit::wire_name(&name) {
                Some(wire) => upstream_response.insert_header(wire, value)?,
                None => upstream_response.insert_header(name, value)?,
            }
        }
        if ctx.vary_origin {
            // Ours replace whatever CORS headers the upstream set; `Vary` is added to.
            for (name, value) in cors_headers(ctx) {
                if name == VARY {
                    upstream_response.append_header(name, value)?;
                } else {
                    upstream_response.insert_header(name, value)?;
                }
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
                ctx.refusal = Some(r);
                let mut resp = LocalResponse::refusal(&r, &ctx.request_id);
                for (name, value) in cors_headers(ctx) {
                    resp = resp.header(name, value.to_str().unwrap_or_default());
                }
                if let Err(err) = write::write(session, resp, &ctx.request_id).await {
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
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        log::request_done(&self.metrics, &session.req_header().method, status, ctx);
    }
}

/// The CORS headers of this request's answers: those of an allowed origin, and `Vary:
/// Origin` whenever `[cors]` is on and the request named one.
fn cors_headers(ctx: &RequestCtx) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = match (&ctx.cors_origin, &ctx.runtime.config.cors) {
        (Some(origin), Some(c)) => c.response_headers(origin),
        _ => Vec::new(),
    };
    if ctx.vary_origin {
        out.push((VARY, HeaderValue::from_static("Origin")));
    }
    out
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
