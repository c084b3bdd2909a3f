//! The request pipeline's steps 2 to 10 (docs/ARCHITECTURE.md), shared by the proxy and the
//! decision listener: each door describes its request (the proxy: the request itself; the
//! decision listener: the one the forwarded headers name), and the same steps judge it.

use std::net::IpAddr;

use http::header::{ORIGIN, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use pingora::http::RequestHeader;

use super::ctx::{Answered, Client, RequestCtx};
use super::pipeline::{self, Destination};
use super::renew;
use crate::auth::Identity;
use crate::caller::{self, Accept, Asked};
use crate::config::Config;
use crate::error::GatewayError;
use crate::headers::TrustedProxies;
use crate::policy::cors;
use crate::policy::path;
use crate::policy::route::RouteMatch;
use crate::ratelimit::{KeyInput, Stage};
use crate::response::LocalResponse;
use crate::runtime::Runtime;
use crate::services::Services;

/// The request a door asks the pipeline about.
pub(super) struct Described<'c> {
    /// The method and target (origin-form) of the request judged; `None`: the request's own.
    pub forwarded: Option<(Method, String)>,
    /// The proxies whose `X-Forwarded-For` is believed (step 2).
    pub proxies: &'c TrustedProxies,
    /// The connection's peer, and whether it may speak for the client (forwarding headers).
    pub peer: Option<IpAddr>,
    pub trusted: bool,
    pub tls: bool,
    /// A WebSocket (or other) upgrade.
    pub upgrade: bool,
}

/// Where steps 2 to 5 led.
pub(super) enum Routed<'c> {
    /// A CORS preflight, answered here before any credential or limit: 204, with the
    /// `Access-Control-Allow-*` headers when the origin, method and headers are allowed.
    Preflight(LocalResponse),
    To(Destination<'c>),
}

/// Steps 2 to 5 on `req`, as `described` says: the client, the client's headers stripped,
/// the path refused or normalised, the built-in endpoint or route; and the CORS headers of
/// every answer to this request, worked out once.
pub(super) fn front<'c>(
    config: &'c Config,
    req: &mut RequestHeader,
    described: &Described<'_>,
    ctx: &mut RequestCtx,
) -> Result<Routed<'c>, GatewayError> {
    // 2. the client, 3. the headers a client may not send
    ctx.client = Client {
        ip: described
            .peer
            .map(|peer| described.proxies.client_ip(peer, &req.headers)),
        trusted: described.trusted,
        tls: described.tls,
    };
    config.identity.client_headers.strip(req, described.trusted);
    ctx.browser.upgrade = described.upgrade;
    let (method, target) = match &described.forwarded {
        Some((method, target)) => (method.clone(), target.as_str()),
        None => {
            // 4, on the target as received: what Pingora parsed may be re-encoded already.
            path::refuse_raw(req.raw_path())?;
            (req.method.clone(), req.uri.path())
        }
    };
    let forwarded = described.forwarded.is_some();
    let routed = route(config, &method, target, forwarded, &req.headers, ctx);
    ctx.judged.method = Some(method);
    ctx.browser.cors = cors_headers(config, &req.headers, routed.as_ref().ok());
    routed
}

/// Steps 4 and 5.
fn route<'c>(
    config: &'c Config,
    method: &Method,
    target: &str,
    forwarded: bool,
    headers: &HeaderMap,
    ctx: &mut RequestCtx,
) -> Result<Routed<'c>, GatewayError> {
    let raw_path = target.split('?').next().unwrap_or_default();
    let path = path::normalize(raw_path, config.server.allow_path_semicolons)?;
    // A described request goes upstream as the front proxy forwards it, not as normalised
    // here: a path normalising would change (`/admin/x/../../public`) is refused, so that
    // what is judged is what the upstream gets.
    if forwarded && path != raw_path {
        return Err(GatewayError::InvalidRequest(
            "a described path must be in normal form",
        ));
    }
    // A preflight is routed as the method it asks about.
    let preflight = config.cors.is_some() && cors::is_preflight(method, headers);
    let routed_as = match preflight {
        true => cors::requested_method(headers).unwrap_or(method.clone()),
        false => method.clone(),
    };
    let destination = pipeline::route(config, &routed_as, &path);
    ctx.judged.path = Some(path);
    let destination = destination?;
    ctx.judged.answered = match &destination {
        Destination::Route(m) => Answered::Route(m.route.clone()),
        Destination::Jwks | Destination::Login(_) => Answered::Builtin,
    };
    if !preflight {
        return Ok(Routed::To(destination));
    }
    let allowed = match &destination {
        Destination::Route(m) => m.route.cors,
        Destination::Jwks | Destination::Login(_) => true,
    };
    let mut answer = LocalResponse::empty(StatusCode::NO_CONTENT);
    if let (true, Some(c)) = (allowed, &config.cors) {
        for (name, value) in c.preflight(headers) {
            answer = answer.header(name, value);
        }
    }
    Ok(Routed::Preflight(
        answer.header(VARY, HeaderValue::from_static("Origin")),
    ))
}

/// The CORS headers of every answer to a request that reached `routed` (`None`: refused
/// before a route was found): those of an allowed origin unless the route answers no
/// cross-origin request, and `Vary: Origin` whenever `[cors]` is on and the request named
/// an origin. A preflight carries its own.
fn cors_headers(
    config: &Config,
    headers: &HeaderMap,
    routed: Option<&Routed<'_>>,
) -> Vec<(HeaderName, HeaderValue)> {
    let Some(c) = &config.cors else {
        return Vec::new();
    };
    if !headers.contains_key(ORIGIN) {
        return Vec::new();
    }
    let route_answers = match routed {
        Some(Routed::Preflight(_)) => return Vec::new(),
        Some(Routed::To(Destination::Route(m))) => m.route.cors,
        Some(Routed::To(Destination::Jwks | Destination::Login(_))) | None => true,
    };
    let mut out = match (route_answers, c.allowed_origin(headers)) {
        (true, Some(origin)) => c.response_headers(origin),
        _ => Vec::new(),
    };
    out.push((VARY, HeaderValue::from_static("Origin")));
    out
}

/// Steps 6 to 10 for a request routed to `matched`: the limits that need no credential, the
/// caller identified (the one `identify`), authorisation, the limits by caller and the API
/// key's own. The identity is kept in `ctx` as soon as it is known, so that a later refusal
/// is logged with who was refused.
pub(super) async fn check_caller(
    services: &Services,
    runtime: &Runtime,
    ctx: &mut RequestCtx,
    matched: &RouteMatch<'_>,
    asked: &Asked<'_>,
    now: u64,
) -> Result<(), GatewayError> {
    let config = &runtime.config;
    let route = matched.route;
    // 6. rate limits that need no credential: a flood is refused before any crypto
    let mut limits = KeyInput {
        client_ip: ctx.client.ip.map(|ip| config.server.limit_ip(ip)),
        route: &route.name,
        headers: asked.headers,
        caller: None,
    };
    let early = runtime.route_limits(route, Stage::BeforeCredentials);
    ctx.judged.rate_limit.check(early, &limits).await?;

    // 7, 8. credentials and verification, and the session cookie's origin rule
    let store = services.store.as_ref();
    let keys = services.directory.as_deref().map(|d| d.keys.as_ref());
    let accept = Accept::route(route);
    // A DPoP proof names the normalised path: lent to `identify` while `ctx` is in use.
    let path = ctx.judged.path.take();
    let asked = Asked {
        path: path.as_deref(),
        ..*asked
    };
    let mut outcome = caller::identify(runtime, store, keys, &asked, accept, now).await;
    if asked.sets_cookies {
        let renewed = renew::renewed(services, runtime, ctx, &asked, &outcome, accept, now).await;
        if let Some(token) = renewed {
            let again = Asked {
                renewed: Some(&token),
                ..asked
            };
            outcome = caller::identify(runtime, store, keys, &again, accept, now).await;
        }
    }
    ctx.judged.path = path;
    match outcome {
        Ok(identity) => ctx.judged.identity = identity,
        Err(refused) => {
            ctx.judged.identity = refused.identity;
            ctx.browser.cookie_refused = refused.by_cookie;
            return Err(refused.error);
        }
    }
    let identity = ctx.judged.identity.as_ref();
    // 9. authorisation
    pipeline::authorize(route, &matched.captures, identity)?;

    // 10. rate limits by caller, then the API key's own
    limits.caller = identity.map(Identity::caller);
    let late = runtime.route_limits(route, Stage::AfterAuthorization);
    ctx.judged.rate_limit.check(late, &limits).await?;
    if let Some(own) = identity.and_then(|i| i.api_key.as_ref()?.rate_limit) {
        let own = runtime.policy(own);
        ctx.judged
            .rate_limit
            .check([(usize::MAX, own)], &limits)
            .await?;
    }
    Ok(())
}
