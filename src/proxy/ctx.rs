//! Per-request state, grouped by what it is: the request's id, the connection as the gateway
//! sees it, what the pipeline judged, what browsers get, and timing. `request_filter` writes
//! it (through the steps), the later phases read it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Method};

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

/// The request id (step 1), as text for the logs and as a header value.
#[derive(Default)]
pub(crate) struct RequestId {
    pub text: String,
    /// Visible ASCII by construction, made once for the upstream request and the response.
    pub value: Option<HeaderValue>,
}

/// The client as the gateway sees it (step 2).
#[derive(Default)]
pub(crate) struct Client {
    pub ip: Option<IpAddr>,
    /// The peer is a trusted proxy: its forwarding headers are believed.
    pub trusted: bool,
    pub tls: bool,
}

/// What the pipeline decided about the request (for a decision: about the request it
/// describes).
#[derive(Default)]
pub(crate) struct Judged {
    pub method: Option<Method>,
    /// The normalised path (step 4).
    pub path: Option<String>,
    pub answered: Answered,
    /// Set as soon as a credential verified: refused requests are logged with it too.
    pub identity: Option<Identity>,
    /// The rate-limit policies passed (or the one that refused): the `RateLimit-*` headers.
    pub rate_limit: Tally,
    /// Why the gateway refused, for the access log and the metrics.
    pub refusal: Option<GatewayError>,
}

/// What browsers get.
#[derive(Default)]
pub(crate) struct Browser {
    /// The CORS headers every answer to this request carries (the gateway's own and the
    /// upstream's), worked out once, when the request was routed.
    pub cors: Vec<(HeaderName, HeaderValue)>,
    /// An HTTP/1.1 upgrade (a WebSocket handshake): a refusal closes the connection.
    pub upgrade: bool,
    /// The session's cookies, renewed in passing: set on the answer, whoever writes it.
    pub set_cookies: Vec<HeaderValue>,
    /// The credential refused was the session cookie (expired beyond renewal, revoked).
    pub cookie_refused: bool,
}

pub(crate) struct Timing {
    pub start: Instant,
    /// When the request went upstream, for the upstream latency histogram.
    pub upstream_start: Option<Instant>,
}

pub(crate) struct RequestCtx {
    /// Loaded once: one request never sees two configs.
    pub runtime: Arc<Runtime>,
    pub id: RequestId,
    pub client: Client,
    pub judged: Judged,
    pub browser: Browser,
    pub timing: Timing,
    _in_flight: InFlight,
}

impl RequestCtx {
    pub(crate) fn new(runtime: Arc<Runtime>, in_flight: &Arc<AtomicUsize>) -> Self {
        RequestCtx {
            runtime,
            id: RequestId::default(),
            client: Client::default(),
            judged: Judged::default(),
            browser: Browser::default(),
            timing: Timing {
                start: Instant::now(),
                upstream_start: None,
            },
            _in_flight: InFlight::new(in_flight),
        }
    }

    /// Keeps the refusal for the log and the metrics.
    pub(crate) fn refused(&mut self, refusal: GatewayError) {
        self.judged.refusal = Some(refusal);
    }
}
