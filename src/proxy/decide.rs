//! SPEC section 3, steps 2 to 10, for one request: forward it, or answer it here.

use http::header::CACHE_CONTROL;
use http::{HeaderMap, Method, StatusCode};
use pingora::proxy::Session;

use super::ctx::{Answered, RequestCtx};
use super::forward;
use super::pipeline::{self, Destination};
use super::write::read_body;
use super::Gateway;
use crate::auth::{AuthMethod, Identity};
use crate::config::Config;
use crate::endpoints::{self, EndpointRequest, Services};
use crate::error::GatewayError;
use crate::policy::cors::{self, Site};
use crate::policy::path;
use crate::policy::route::RouteMatch;
use crate::ratelimit::{KeyInput, Stage};
use crate::response::LocalResponse;
use crate::runtime::Runtime;

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
        let runtime = ctx.runtime.clone();
        let config = &runtime.config;
        let now = self.clock.now();
        pipeline::check_header_size(&session.req_header().headers)?;
        client_and_headers(session, ctx);
        ctx.upgrade = session.is_upgrade_req();
        // Browsers on an allowed origin read every answer, refusals included.
        if let Some(c) = &config.cors {
            let headers = &session.req_header().headers;
            ctx.vary_origin = headers.contains_key(http::header::ORIGIN);
            ctx.cors_origin = c.allowed_origin(headers).cloned();
        }

        // 4. path
        let req = session.req_header();
        let path = path::normalize(req.uri.path(), config.server.allow_path_semicolons)?;
        let method = req.method.clone();
        ctx.path = Some(path.clone());

        // 5. built-in endpoints, else the route; a preflight is routed as the method it
        // asks about, and answered here (SPEC section 8).
        let preflight = config.cors.is_some() && cors::is_preflight(&method, &req.headers);
        let routed_as = match preflight {
            true => cors::requested_method(&req.headers).unwrap_or(method.clone()),
            false => method.clone(),
        };
        let destination = pipeline::route(config, &routed_as, &path)?;
        if let Destination::Route(m) = &destination {
            if !m.route.cors {
                ctx.cors_origin = None;
            }
        }
        if preflight {
            let allowed = match &destination {
                Destination::Route(m) => m.route.cors,
                Destination::Jwks | Destination::Login(_) => true,
            };
            if let Destination::Route(m) = &destination {
                ctx.answered = Answered::Route(m.route.clone());
            } else {
                ctx.answered = Answered::Builtin;
            }
            // The preflight carries its own CORS headers (none when refused).
            ctx.cors_origin = None;
            ctx.vary_origin = false;
            return Ok(Decision::Respond(preflight_answer(
                config,
                &req.headers,
                allowed,
            )));
        }
        let matched = match destination {
            Destination::Jwks => {
                ctx.answered = Answered::Builtin;
                let resp = LocalResponse::json(StatusCode::OK, config.jwks.clone())
                    .header(CACHE_CONTROL, "public, max-age=300");
                return Ok(Decision::Respond(resp));
            }
            Destination::Login(rest) => {
                ctx.answered = Answered::Builtin;
                return self.builtin(session, ctx, &method, &rest, now).await;
            }
            Destination::Route(m) => m,
        };
        let route = matched.route.clone();
        ctx.answered = Answered::Route(route.clone());

        // 6 to 10: limits, credentials, authorisation, limits by caller.
        let site = own_site(session, ctx);
        let caller = Caller {
            headers: &req.headers,
            method: &method,
            upgrade: ctx.upgrade,
            site,
            authority: req.uri.authority().map(|a| a.as_str()),
        };
        self.check_caller(&runtime, ctx, &matched, caller, now)
            .await?;

        // The upstream sees the normalised path, less `strip_prefix`.
        if let Some(uri) = forward::upstream_uri(&route, req.raw_path(), &path, req.uri.query()) {
            session.req_header_mut().set_uri(uri?);
        }
        Ok(Decision::Forward)
    }

    /// Steps 6 to 10 for a request routed to `matched`: the limits that need no credential,
    /// the credential verified (and, for the session cookie, the CSRF rule), authorisation,
    /// the limits by caller and the API key's own. The identity is kept in `ctx` as soon as it
    /// is known, so that a later refusal is logged with who was refused.
    pub(super) async fn check_caller(
        &self,
        runtime: &Runtime,
        ctx: &mut RequestCtx,
        matched: &RouteMatch<'_>,
        caller: Caller<'_>,
        now: u64,
    ) -> Result<(), GatewayError> {
        let config = &runtime.config;
        let route = matched.route;
        // 6. rate limits that need no credential: a flood is refused before any crypto
        let mut limits = KeyInput {
            client_ip: ctx.client_ip.map(|ip| config.server.limit_ip(ip)),
            route: &route.name,
            headers: caller.headers,
            caller: None,
        };
        let early = runtime.route_limits(route, Stage::BeforeCredentials);
        ctx.rate_limit.check(early, &limits).await?;

        // 7, 8. credentials and verification
        let store = self.store.as_ref();
        ctx.identity =
            pipeline::authenticate(runtime, store, route, caller.headers, ctx.client_ip, now)?;
        let identity = ctx.identity.as_ref();
        // The session cookie rides along on cross-site requests: an unsafe one, or a
        // WebSocket upgrade (cross-site WebSocket hijacking), must come from a known origin.
        let by_cookie = identity.is_some_and(|i| i.method == AuthMethod::Cookie);
        if by_cookie && (caller.upgrade || !cors::is_safe(caller.method)) {
            let own = caller.site.own_origin(caller.headers, caller.authority);
            let cors = config.cors.as_ref();
            if !cors::cross_site_allowed(caller.headers, own.as_deref(), cors) {
                return Err(GatewayError::InvalidOrigin);
            }
        }
        // 9. authorisation
        pipeline::authorize(route, &matched.captures, identity)?;

        // 10. rate limits by caller, then the API key's own
        limits.caller = identity.map(Identity::caller);
        let late = runtime.route_limits(route, Stage::AfterAuthorization);
        ctx.rate_limit.check(late, &limits).await?;
        if let Some(own) = identity.and_then(|i| i.api_key.as_ref()?.rate_limit) {
            let own = runtime.policy(own);
            ctx.rate_limit.check([(usize::MAX, own)], &limits).await?;
        }
        Ok(())
    }

    /// Step 5 under `[login].base_path`: the endpoint answers; its refusal and tally are the
    /// request's.
    async fn builtin(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        method: &Method,
        sub_path: &str,
        now: u64,
    ) -> Result<Decision, GatewayError> {
        let body = read_body(session).await?;
        let runtime = ctx.runtime.clone();
        let own_origin = own_origin(session, ctx);
        let req = session.req_header();
        let request = EndpointRequest {
            method,
            sub_path,
            query: req.uri.query(),
            headers: &req.headers,
            body: &body,
            limit_ip: ctx.client_ip.map(|ip| runtime.config.server.limit_ip(ip)),
            client_ip: ctx.client_ip,
            request_id: &ctx.request_id,
            own_origin,
        };
        let services = Services {
            runtime: &runtime,
            store: self.store.as_ref(),
            passwords: &self.passwords,
            now,
        };
        let served = endpoints::serve(&request, &services).await;
        ctx.refusal = served.refusal;
        ctx.rate_limit = served.limits;
        Ok(Decision::Respond(served.response))
    }
}

/// What steps 6 to 10 read of the request (for a decision: of the request it describes).
pub(super) struct Caller<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    pub upgrade: bool,
    /// How the gateway's own origin is told, and the request's authority (HTTP/2).
    pub site: Site,
    pub authority: Option<&'a str>,
}

/// How the gateway's own origin is told for this connection.
fn own_site(session: &Session, ctx: &RequestCtx) -> Site {
    Site {
        tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
        peer_trusted: ctx.peer_trusted,
    }
}

/// The origin the request was sent to: the connection's scheme and the `Host` (or a
/// trusted proxy's word for them).
fn own_origin(session: &Session, ctx: &RequestCtx) -> Option<String> {
    let req = session.req_header();
    own_site(session, ctx).own_origin(&req.headers, req.uri.authority().map(|a| a.as_str()))
}

/// A preflight's answer: 204, with the `Access-Control-Allow-*` headers when the origin, the
/// method and the headers are allowed (and the route answers cross-origin requests).
fn preflight_answer(config: &Config, headers: &http::HeaderMap, allowed: bool) -> LocalResponse {
    let mut resp = LocalResponse::empty(StatusCode::NO_CONTENT);
    if let (true, Some(c)) = (allowed, &config.cors) {
        for (name, value) in c.preflight(headers) {
            resp = resp.header(name, value.to_str().unwrap_or_default());
        }
    }
    resp.header(http::header::VARY, "Origin")
}

/// Steps 2 and 3: the client IP, then the headers a client may not send removed (identity,
/// rewrite and, from untrusted peers, forwarding headers).
fn client_and_headers(session: &mut Session, ctx: &mut RequestCtx) {
    let config = &ctx.runtime.config;
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    if let Some(peer) = peer {
        ctx.peer_trusted = config.trusted_proxies.contains(&peer);
        ctx.client_ip = Some(
            config
                .trusted_proxies
                .client_ip(peer, &session.req_header().headers),
        );
    }
    config
        .identity
        .client_headers
        .strip(session.req_header_mut(), ctx.peer_trusted);
}
