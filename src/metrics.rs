//! Prometheus metrics (docs/CONFIG.md, `[admin]`), in a registry of the gateway's own that the admin
//! listener renders. Labels are bounded: route names, upstream names, error codes,
//! policy names, status codes; never paths or user ids.

use pingora_prometheus::prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The families of docs/CONFIG.md, `[admin]`, recorded in the logging phase.
pub(crate) struct Metrics {
    pub requests: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub request_duration: HistogramVec,
    /// The decision listener's answers (docs/DECISION.md), apart from the proxied requests.
    pub decisions: IntCounterVec,
    pub decision_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub store_up: IntGauge,
    pub config_reloads: IntCounterVec,
    pub log_lines_dropped: IntCounter,
    /// Reset and verification mails, by kind and result (sent, failed, dropped).
    pub mails: IntCounterVec,
    /// Audit events that could not be stored in the database (they are still logged).
    pub audit_dropped: IntCounter,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Seconds: from 0.1 ms (the proxy's own work) to 10 s (a slow upstream).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

impl Metrics {
    /// Every family, registered in a registry of its own (one per gateway: two gateways in a
    /// process, as in the tests, count apart).
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid family");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
            let h = HistogramVec::new(opts, labels).expect("a valid family");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let (store_up, log_lines_dropped, audit_dropped) = gauges(&registry);
        let m = Metrics {
            requests: counter(
                "portcullis_requests_total",
                "Requests answered, by route and status",
                &["route", "status"],
            ),
            auth_failures: counter(
                "portcullis_auth_failures_total",
                "Requests refused for their credentials (401, 403), by error code",
                &["reason"],
            ),
            rate_limited: counter(
                "portcullis_rate_limited_total",
                "Requests refused by a rate-limit policy",
                &["policy"],
            ),
            request_duration: histogram(
                "portcullis_request_duration_seconds",
                "Time from the request's arrival to the end of its response",
                &["route"],
            ),
            decisions: counter(
                "portcullis_decisions_total",
                "Decisions answered to other proxies, by route and status",
                &["route", "status"],
            ),
            decision_duration: histogram(
                "portcullis_decision_duration_seconds",
                "Time to answer a decision request",
                &["route"],
            ),
            upstream_duration: histogram(
                "portcullis_upstream_duration_seconds",
                "Time from sending the request upstream to its response header",
                &["upstream"],
            ),
            store_up,
            config_reloads: counter(
                "portcullis_config_reloads_total",
                "Config reloads, by result (ok, error)",
                &["result"],
            ),
            log_lines_dropped,
            mails: counter(
                "portcullis_mails_total",
                "Reset and verification mails, by kind and result (sent, failed, dropped)",
                &["kind", "result"],
            ),
            audit_dropped,
            registry,
        };
        // Families without a series are not rendered: show these at zero from the start.
        for result in ["ok", "error"] {
            m.config_reloads.with_label_values(&[result]);
        }
        m
    }

    /// The whole registry in the Prometheus text format.
    pub(crate) fn render(&self) -> Vec<u8> {
        // The log writer counts its own drops; the counter follows it.
        let dropped = crate::logs::dropped_lines();
        self.log_lines_dropped
            .inc_by(dropped.saturating_sub(self.log_lines_dropped.get()));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to a Vec");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A status code as a label value without allocating for the common ones.
pub(crate) fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        301 => "301",
        302 => "302",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "0",
        s if s < 200 => "1xx",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// The families without labels: the store's state, the log lines and audit rows dropped.
fn gauges(registry: &Registry) -> (IntGauge, IntCounter, IntCounter) {
    let store_up = IntGauge::new(
        "portcullis_store_up",
        "1 while the shared store is reachable and the revocation state current",
    )
    .expect("a valid gauge");
    registry
        .register(Box::new(store_up.clone()))
        .expect("registered once");
    let log_lines_dropped = IntCounter::new(
        "portcullis_log_lines_dropped_total",
        "Log lines dropped because the writer could not keep up with them",
    )
    .expect("a valid counter");
    registry
        .register(Box::new(log_lines_dropped.clone()))
        .expect("registered once");
    let audit_dropped = IntCounter::new(
        "portcullis_audit_dropped_total",
        "Audit events not stored in the database (they are still logged)",
    )
    .expect("a valid counter");
    registry
        .register(Box::new(audit_dropped.clone()))
        .expect("registered once");
    (store_up, log_lines_dropped, audit_dropped)
}
