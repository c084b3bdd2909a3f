//! The logging phase: one access event per request, an audit event per refusal that is one,
//! and the metrics.

use std::net::IpAddr;

use super::ctx::RequestCtx;
use crate::error::{Counted, GatewayError};
use crate::metrics::{status_label, Metrics};

/// Writes the request's access event (and audit event) and records its metrics.
pub(super) fn request_done(
    metrics: &Metrics,
    method: &http::Method,
    status: u16,
    ctx: &RequestCtx,
) {
    let route = ctx.answered.route_name();
    let subject = ctx.identity.as_ref().map_or("", |i| i.subject.as_str());
    let auth_method = ctx.identity.as_ref().map_or("", |i| i.method.as_str());
    let client_ip = OptionalIp(ctx.client_ip);
    let elapsed = ctx.start.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    record_metrics(metrics, ctx, status, elapsed);
    // A decision for another proxy logs the method of the request it is about.
    let method = ctx.decision.as_ref().unwrap_or(method);
    tracing::info!(
        target: "access",
        request_id = %ctx.request_id,
        method = %method,
        path = ctx.path.as_deref().unwrap_or(""),
        route,
        status,
        latency_ms,
        client_ip = %client_ip,
        subject,
        auth_method,
        decision = ctx.decision.is_some(),
    );
    if let Some(refusal) = ctx.refusal.filter(GatewayError::is_audited) {
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
            decision = ctx.decision.is_some(),
            request_id = %ctx.request_id,
        );
    }
}

fn record_metrics(m: &Metrics, ctx: &RequestCtx, status: u16, elapsed: f64) {
    let route = ctx.answered.label();
    let (count, duration) = match ctx.decision {
        Some(_) => (&m.decisions, &m.decision_duration),
        None => (&m.requests, &m.request_duration),
    };
    count
        .with_label_values(&[route, status_label(status)])
        .inc();
    duration.with_label_values(&[route]).observe(elapsed);
    match ctx.refusal.map(|r| (r, r.counted_as())) {
        Some((_, Counted::RateLimited)) => {
            let policy = ctx.rate_limit.policy().unwrap_or("");
            m.rate_limited.with_label_values(&[policy]).inc();
        }
        Some((r, Counted::AuthFailure)) => {
            m.auth_failures.with_label_values(&[r.code()]).inc();
        }
        Some((_, Counted::Neither)) | None => {}
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
