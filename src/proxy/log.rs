//! The logging phase: one access event per request, an audit event per refusal that is one,
//! and the metrics.

use std::net::IpAddr;

use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::Door;
use crate::error::{Counted, GatewayError};
use crate::logs::{self, AccessLine, Listener};
use crate::metrics::{status_label, Metrics};

/// Writes the request's access event (and audit event) and records its metrics.
pub(super) fn request_done(metrics: &Metrics, door: Door, session: &Session, ctx: &RequestCtx) {
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .unwrap_or(0);
    let judged = &ctx.judged;
    let route = judged.answered.route_name();
    let subject = judged.identity.as_ref().map_or("", |i| i.subject.as_str());
    let auth_method = judged.identity.as_ref().map_or("", |i| i.method.as_str());
    let client_ip = OptionalIp(ctx.client.ip);
    let elapsed = ctx.timing.start.elapsed();
    record_metrics(metrics, door, ctx, status, elapsed.as_secs_f64());
    // The method judged: for a decision, that of the request it is about.
    let method = judged
        .method
        .as_ref()
        .unwrap_or(&session.req_header().method);
    let decision = door == Door::Decision;
    logs::access(&AccessLine {
        request_id: &ctx.id.text,
        method: method.as_str(),
        path: judged.path.as_deref().unwrap_or(""),
        route,
        status,
        latency: elapsed,
        client_ip: ctx.client.ip,
        subject,
        auth_method,
        listener: match door {
            Door::Proxy => Listener::Proxy,
            Door::Decision => Listener::Decision,
        },
    });
    if let Some(refusal) = judged.refusal.filter(GatewayError::is_audited) {
        tracing::info!(
            target: "audit",
            event = "refused",
            reason = refusal.code(),
            description = refusal.description(),
            // Only a rate-limit refusal has a policy to name.
            policy = match refusal {
                GatewayError::RateLimited => judged.rate_limit.policy().unwrap_or(""),
                _ => "",
            },
            route,
            client_ip = %client_ip,
            decision,
            request_id = %ctx.id.text,
        );
    }
}

fn record_metrics(m: &Metrics, door: Door, ctx: &RequestCtx, status: u16, elapsed: f64) {
    let route = ctx.judged.answered.label();
    let (count, duration) = match door {
        Door::Decision => (&m.decisions, &m.decision_duration),
        Door::Proxy => (&m.requests, &m.request_duration),
    };
    count
        .with_label_values(&[route, status_label(status)])
        .inc();
    duration.with_label_values(&[route]).observe(elapsed);
    match ctx.judged.refusal.map(|r| (r, r.counted_as())) {
        Some((_, Counted::RateLimited)) => {
            let policy = ctx.judged.rate_limit.policy().unwrap_or("");
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
