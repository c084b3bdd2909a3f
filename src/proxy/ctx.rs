//! Per-request state: set by `request_filter`, read by the later phases.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;

use crate::auth::Identity;
use crate::error::GatewayError;
use crate::policy::Route;
use crate::ratelimit::Tally;
use crate::runtime::Runtime;

/// Counts a request in flight for as long as its context lives.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What answered a request: the metrics' `route` label and the access log's.
#[derive(Debug, Clone, Default)]
pub(crate) enum Answered {
    /// No route matched (or the request was refused before routing).
    #[default]
    Unmatched,
    /// A built-in endpoint (login, the JWKS).
    Builtin,
    Route(Arc<Route>),
}

impl Answered {
    /// The route's name, `builtin` or `unmatched` (metrics).
    pub(crate) fn label(&self) -> &str {
        match self {
            Answered::Unmatched => "unmatched",
            Answered::Builtin => "builtin",
            Answered::Route(r) => &r.name,
        }
    }

    /// The route's name, or nothing (the access log's `route` field).
    pub(crate) fn route_name(&self) -> &str {
        match self {
            Answered::Route(r) => &r.name,
            Answered::Unmatched | Answered::Builtin => "",
        }
    }

    pub(crate) fn route(&self) -> Option<&Arc<Route>> {
        match self {
            Answered::Route(r) => Some(r),
            Answered::Unmatched | Answered::Builtin => None,
        }
    }
}

pub(crate) struct RequestCtx {
    /// Loaded once: one request never sees two configs.
    pub runtime: Arc<Runtime>,
    pub start: Instant,
    pub request_id: String,
    /// The same as a header value, made once for the upstream request and the response.
    pub request_id_value: Option<HeaderValue>,
    pub client_ip: Option<IpAddr>,
    pub peer_trusted: bool,
    /// The normalised path (step 4).
    pub path: Option<String>,
    pub answered: Answered,
    /// Set as soon as a credential verified: refused requests are logged with it too.
    pub identity: Option<Identity>,
    /// The rate-limit policies passed (or the one that refused): the `RateLimit-*` headers.
    pub rate_limit: Tally,
    /// Why the gateway refused, for the access log and the metrics.
    pub refusal: Option<GatewayError>,
    /// When the request went upstream, for the upstream latency histogram.
    pub upstream_start: Option<Instant>,
    /// The request's `Origin`, when `[cors]` allows it and the route answers cross-origin
    /// requests: every answer then carries the CORS headers.
    pub cors_origin: Option<HeaderValue>,
    /// `[cors]` is on and the request named an origin: answers say they vary by it.
    pub vary_origin: bool,
    /// An HTTP/1.1 upgrade (a WebSocket handshake).
    pub upgrade: bool,
    /// On the decision listener: the method of the request the decision is about.
    pub decision: Option<http::Method>,
    pub _in_flight: InFlight,
}

impl RequestCtx {
    pub(crate) fn new(runtime: Arc<Runtime>, in_flight: &Arc<AtomicUsize>) -> Self {
        RequestCtx {
            runtime,
            start: Instant::now(),
            request_id: String::new(),
            request_id_value: None,
            client_ip: None,
            peer_trusted: false,
            path: None,
            answered: Answered::Unmatched,
            identity: None,
            rate_limit: Tally::default(),
            refusal: None,
            upstream_start: None,
            cors_origin: None,
            vary_origin: false,
            upgrade: false,
            decision: None,
            _in_flight: InFlight::new(in_flight),
        }
    }
}
