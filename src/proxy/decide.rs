//! SPEC section 3, steps 2 to 10, for one request: forward it, or answer it here.

use http::header::CACHE_CONTROL;
use http::{Method, StatusCode};
use pingora::proxy::Session;

use super::ctx::{Answered, RequestCtx};
use super::forward;
use super::pipeline::{self, Destination};
use super::write::read_body;
use super::Gateway;
use crate::auth::Identity;
use crate::endpoints::{self, EndpointRequest, Services};
use crate::error::GatewayError;
use crate::policy::path;
use crate::ratelimit::{KeyInput, Stage};
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
        let runtime = ctx.runtime.clone();
        let config = &runtime.config;
        let now = self.clock.now();
        pipeline::check_header_size(&session.req_header().headers)?;
        client_and_headers(session, ctx);

        // 4. path
        let req = session.req_header();
        let path = path::normalize(req.uri.path(), config.server.allow_path_semicolons)?;
        let method = req.method.clone();
        ctx.path = Some(path.clone());

        // 5. built-in endpoints, else the route
        let matched = match pipeline::route(config, &method, &path)? {
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

        // 6. rate limits that need no credential: a flood is refused before any crypto
        let mut limits = KeyInput {
            client_ip: ctx.client_ip.map(|ip| config.server.limit_ip(ip)),
            route: &route.name,
            headers: &req.headers,
            caller: None,
        };
        let early = runtime.route_limits(&route, Stage::BeforeCredentials);
        ctx.rate_limit.check(early, &limits).await?;

        // 7, 8. credentials and verification. Kept at once: a refusal from here on is logged
        // with who was refused.
        let store = self.store.as_ref();
        ctx.identity =
            pipeline::authenticate(&runtime, store, &route, &req.headers, ctx.client_ip, now)?;
        let identity = ctx.identity.as_ref();
        // 9. authorisation
        pipeline::authorize(&route, &matched.captures, identity)?;

        // 10. rate limits by caller, then the API key's own
        limits.caller = identity.map(Identity::caller);
        let late = runtime.route_limits(&route, Stage::AfterAuthorization);
        ctx.rate_limit.check(late, &limits).await?;
        if let Some(own) = identity.and_then(|i| i.api_key.as_ref()?.rate_limit) {
            let own = runtime.policy(own);
            ctx.rate_limit.check([(usize::MAX, own)], &limits).await?;
        }

        // The upstream sees the normalised path, less `strip_prefix`.
        if let Some(uri) = forward::upstream_uri(&route, req.raw_path(), &path, req.uri.query()) {
            session.req_header_mut().set_uri(uri?);
        }
        Ok(Decision::Forward)
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
