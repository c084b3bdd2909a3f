//! The Pingora `ProxyHttp` implementation: each phase dispatches to the pipeline's steps.

pub mod path;
pub mod pipeline;
pub mod respond;
pub mod upstream;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::auth::Identity;
use crate::clock::Clock;
use crate::config::Config;
use crate::endpoints::{self, Services};
use crate::error::GatewayError;
use crate::headers::{self, X_REQUEST_ID};
use crate::login::password::PasswordPool;
use crate::metrics::{metrics, status_label};
use crate::policy::Route;
use crate::ratelimit::{KeyInput, Stage, Tally};
use crate::store::Store;
use pipeline::{Destination, Forwarding};
use respond::LocalResponse;

/// The gateway: the current config snapshot (swapped whole on reload) and what outlives a
/// reload: the shared state, the password workers, the clock.
pub struct Gateway {
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
    pub passwords: PasswordPool,
    pub clock: Clock,
    /// Requests being served, for a graceful shutdown to wait for.
    pub in_flight: Arc<AtomicUsize>,
}

/// Counts a request in flight for as long as its context lives.
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-request state, set by `request_filter` and read by the later phases.
pub struct RequestCtx {
    /// Loaded once: one request never sees two configs.
    pub config: Arc<Config>,
    pub start: Instant,
    pub request_id: String,
    /// The same as a header value, made once for the upstream request and the response.
    pub request_id_value: Option<HeaderValue>,
    pub client_ip: Option<IpAddr>,
    pub peer_trusted: bool,
    /// The normalised path (step 4).
    pub path: Option<String>,
    pub route: Option<Arc<Route>>,
    pub identity: Option<Identity>,
    /// The rate-limit policies passed (or the one that refused): the `RateLimit-*` headers.
    pub rate_limit: Tally,
    /// Why the gateway refused, for the access log.
    pub refusal: Option<GatewayError>,
    /// A built-in endpoint answered (the metrics' route label).
    pub builtin: bool,
    /// When the request went upstream, for the upstream latency histogram.
    pub upstream_start: Option<Instant>,
    _in_flight: InFlight,
}

/// What the pipeline decided for a request.
enum Decision {
    Forward,
    Respond(LocalResponse),
}

impl Gateway {
    /// SPEC section 3, steps 2 to 10, in order.
    async fn decide(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, GatewayError> {
        let config = ctx.config.clone();
        let now = self.clock.now();
        let req = session.req_header();
        pipeline::check_header_size(&req.headers)?;

        // 2. client IP
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        if let Some(peer) = peer {
            ctx.peer_trusted = config.trusted_proxies.contains(&peer);
            ctx.client_ip = Some(config.trusted_proxies.client_ip(peer, &req.headers));
        }
        // 3. identity, rewrite and (from untrusted peers) forwarding headers: never believed
        let trusted = ctx.peer_trusted;
        config
            .identity
            .client_headers
            .strip(session.req_header_mut(), trusted);

        // 4. path
        let req = session.req_header();
        let path = path::normalize(req.uri.path(), config.server.allow_path_semicolons)?;
        let method = req.method.clone();
        ctx.path = Some(path.clone());

        // 5. built-in endpoints, else the route
        let matched = match pipeline::route(&config, &method, &path)? {
            Destination::Jwks => {
                ctx.builtin = true;
                let resp = LocalResponse::json(StatusCode::OK, config.jwks.clone())
                    .header(CACHE_CONTROL, "public, max-age=300");
                return Ok(Decision::Respond(resp));
            }
            Destination::Login(rest) => {
                ctx.builtin = true;
                let services = Services {
                    store: self.store.as_ref(),
                    passwords: &self.passwords,
                    now,
                };
                return Ok(Decision::Respond(
                    endpoints::serve(session, ctx, services, &rest).await,
                ));
            }
            Destination::Route(m) => m,
        };
        ctx.route = Some(matched.route.clone());
        let route = matched.route;

        // 6. rate limits that need no credential: a flood is refused before any crypto
        let mut limits = KeyInput {
            client_ip: ctx.client_ip.map(|ip| config.server.limit_ip(ip)),
            route: &route.name,
            headers: &req.headers,
            identity: None,
        };
        let early = route.rate_limits_at(Stage::BeforeCredentials);
        ctx.rate_limit.check(early, &limits).await?;

        // 7, 8. credentials and verification
        let store = self.store.as_ref();
        // Kept at once: a refusal from here on is logged with who was refused.
        ctx.identity =
            pipeline::authenticate(&config, store, route, &req.headers, ctx.client_ip, now)?;
        let identity = ctx.identity.as_ref();
        // 9. authorisation
        pipeline::authorize(route, &matched.captures, identity)?;

        // 10. rate limits by caller, then the API key's own
        limits.identity = identity;
        let late = route.rate_limits_at(Stage::AfterAuthorization);
        ctx.rate_limit.check(late, &limits).await?;
        if let Some(own) = identity.and_then(|i| i.api_key.as_ref()?.rate_limit.as_ref()) {
            ctx.rate_limit
                .check([(usize::MAX, &**own)], &limits)
                .await?;
        }

        // The upstream sees the normalised path, less `strip_prefix`.
        if let Some(uri) = pipeline::upstream_uri(route, req.raw_path(), &path, req.uri.query()) {
            session.req_header_mut().set_uri(uri?);
        }
        Ok(Decision::Forward)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            config: self.config.load_full(),
            start: Instant::now(),
            request_id: String::new(),
            request_id_value: None,
            client_ip: None,
            peer_trusted: false,
            path: None,
            route: None,
            identity: None,
            rate_limit: Tally::default(),
            refusal: None,
            builtin: false,
            upstream_start: None,
            _in_flight: InFlight::new(&self.in_flight),
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        // 1. request id
        ctx.request_id = headers::request_id(
            session
                .req_header()
                .headers
                .get(X_REQUEST_ID)
                .map(|v| v.as_bytes()),
        );
        // Visible ASCII by construction (a client's is checked, ours is a UUID).
        ctx.request_id_value = HeaderValue::from_str(&ctx.request_id).ok();
        let mut response = match self.decide(session, ctx).await {
            Ok(Decision::Forward) => return Ok(false),
            Ok(Decision::Respond(resp)) => resp,
            Err(refusal) => {
                ctx.refusal = Some(refusal);
                LocalResponse::refusal(&refusal, &ctx.request_id)
            }
        };
        let limits = ctx.rate_limit.headers().into_iter();
        response.headers.extend(limits.map(|(name, value)| {
            // Made from digits: always visible ASCII.
            (name, value.to_str().unwrap_or_default().to_string())
        }));
        respond::write(session, response, &ctx.request_id).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let route = ctx
            .route
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route chosen"))?;
        let pool = &route.upstream;
        Ok(Box::new(pool.peer(pool.select())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.upstream_start = Some(Instant::now());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let forwarding = Forwarding {
            request_id: ctx.request_id_value.as_ref(),
            signer: ctx.config.signer.as_ref(),
            now: self.clock.now(),
            session_cookie: ctx.config.session_cookie(),
            peer: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            peer_trusted: ctx.peer_trusted,
            tls,
            identity: ctx.identity.as_ref(),
        };
        pipeline::rewrite_upstream_request(upstream_request, &ctx.config.identity, &forwarding)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let (Some(start), Some(route)) = (ctx.upstream_start.take(), &ctx.route) {
            metrics()
                .upstream_duration
                .with_label_values(&[route.upstream.name()])
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
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let refusal = match (e.esource(), e.etype()) {
            (
                _,
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
            ) => Some(GatewayError::GatewayTimeout),
            (
                ErrorSource::Downstream,
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
            ) => None,
            (ErrorSource::Downstream, _) => Some(GatewayError::InvalidRequest("malformed request")),
            _ => Some(GatewayError::BadGateway),
        };
        let code = match refusal {
            Some(r) if session.response_written().is_none() => {
                ctx.refusal = Some(r);
                let resp = LocalResponse::refusal(&r, &ctx.request_id);
                if let Err(err) = respond::write(session, resp, &ctx.request_id).await {
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
        let route = ctx.route.as_ref().map(|r| &*r.name).unwrap_or("");
        let subject = ctx
            .identity
            .as_ref()
            .map(|i| i.subject.as_str())
            .unwrap_or("");
        let auth_method = ctx
            .identity
            .as_ref()
            .map(|i| i.method.as_str())
            .unwrap_or("");
        let client_ip = OptionalIp(ctx.client_ip);
        let elapsed = ctx.start.elapsed().as_secs_f64();
        let latency_ms = elapsed * 1000.0;
        record_metrics(ctx, route, status, elapsed);
        tracing::info!(
            target: "access",
            request_id = %ctx.request_id,
            method = %session.req_header().method,
            path = ctx.path.as_deref().unwrap_or(""),
            route,
            status,
            latency_ms,
            client_ip = %client_ip,
            subject,
            auth_method,
        );
        if let Some(refusal) = ctx
            .refusal
            .filter(|r| matches!(r.status().as_u16(), 401 | 403 | 429))
        {
            tracing::info!(
                target: "audit",
                event = "refused",
                reason = refusal.code(),
                description = refusal.description(),
                // Only a rate-limit refusal has a policy to name.
                policy = match refusal {
                    GatewayError::RateLimited => ctx.rate_limit.policy().unwrap_or(""),
                    _ => "",
                },
                route,
                client_ip = %client_ip,
                request_id = %ctx.request_id,
            );
        }
    }
}

/// The request's metrics. Built-in endpoints count under the route `builtin`, requests that
/// matched nothing under `unmatched`.
fn record_metrics(ctx: &RequestCtx, route: &str, status: u16, elapsed: f64) {
    let m = metrics();
    let route = match route {
        "" if ctx.builtin => "builtin",
        "" => "unmatched",
        name => name,
    };
    m.requests
        .with_label_values(&[route, status_label(status)])
        .inc();
    m.request_duration
        .with_label_values(&[route])
        .observe(elapsed);
    match ctx.refusal {
        Some(GatewayError::RateLimited) => {
            let policy = ctx.rate_limit.policy().unwrap_or("");
            m.rate_limited.with_label_values(&[policy]).inc();
        }
        Some(r) if matches!(r.status().as_u16(), 401 | 403) => {
            m.auth_failures.with_label_values(&[r.code()]).inc();
        }
        _ => {}
    }
}

/// The client IP as a log field, formatted only when the event is written.
struct OptionalIp(Option<IpAddr>);

impl std::fmt::Display for OptionalIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => Ok(()),
        }
    }
}
