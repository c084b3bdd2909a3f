//! Prometheus metrics (SPEC section 5), registered once in the default registry that
//! `pingora-prometheus` serves. Labels are bounded: route names, upstream names, error codes,
//! policy names, status codes; never paths or user ids.

use std::sync::OnceLock;

use pingora_prometheus::prometheus::{
    self, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, TextEncoder,
};

pub struct Metrics {
    pub requests: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub store_up: IntGauge,
    pub config_reloads: IntCounterVec,
    pub log_lines_dropped: IntCounter,
}

/// Seconds: from 0.1 ms (the proxy's own work) to 10 s (a slow upstream).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = register();
        // Families without a series are not rendered: show these at zero from the start.
        for result in ["ok", "error"] {
            m.config_reloads.with_label_values(&[result]);
        }
        m
    })
}

fn register() -> Metrics {
    Metrics {
        requests: register_int_counter_vec!(
            "portcullis_requests_total",
            "Requests answered, by route and status",
            &["route", "status"]
        )
        .expect("registered once"),
        auth_failures: register_int_counter_vec!(
            "portcullis_auth_failures_total",
            "Requests refused for their credentials (401, 403), by error code",
            &["reason"]
        )
        .expect("registered once"),
        rate_limited: register_int_counter_vec!(
            "portcullis_rate_limited_total",
            "Requests refused by a rate-limit policy",
            &["policy"]
        )
        .expect("registered once"),
        request_duration: register_histogram_vec!(
            "portcullis_request_duration_seconds",
            "Time from the request's arrival to the end of its response",
            &["route"],
            BUCKETS.to_vec()
        )
        .expect("registered once"),
        upstream_duration: register_histogram_vec!(
            "portcullis_upstream_duration_seconds",
            "Time from sending the request upstream to its response header",
            &["upstream"],
            BUCKETS.to_vec()
        )
        .expect("registered once"),
        store_up: register_int_gauge!(
            "portcullis_store_up",
            "1 while the shared store is reachable and the revocation state current"
        )
        .expect("registered once"),
        config_reloads: register_int_counter_vec!(
            "portcullis_config_reloads_total",
            "Config reloads, by result (ok, error)",
            &["result"]
        )
        .expect("registered once"),
        log_lines_dropped: register_int_counter!(
            "portcullis_log_lines_dropped_total",
            "Log lines dropped because the writer could not keep up with them"
        )
        .expect("registered once"),
    }
}

/// The whole registry in the Prometheus text format.
pub fn render() -> Vec<u8> {
    let m = metrics();
    // The log writer counts its own drops; the counter follows it.
    let dropped = crate::logs::dropped_lines();
    m.log_lines_dropped
        .inc_by(dropped.saturating_sub(m.log_lines_dropped.get()));
    let families = prometheus::gather();
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("the text encoder writes to a Vec");
    out
}

/// A status code as a label value without allocating for the common ones.
pub fn status_label(status: u16) -> &'static str {
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
