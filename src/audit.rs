//! The audit trail in the database (docs/CONFIG.md, `[audit]`): every audit event the gateway
//! logs (`target: "audit"`) is also handed, as a row, to the sink of the gateway that logged
//! it, which stores rows in batches off the request path. Handing a row over never waits: a
//! full sink drops it (counted). Only the fields named here are kept: never a token, a
//! password or a key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::clock::Clock;

/// Longer values are cut (a user agent, a reason).
const MAX_VALUE: usize = 256;

/// One stored audit event.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct AuditRow {
    pub at: u64,
    /// The event's name; an `account` event is stored under its `action`.
    pub event: String,
    pub result: Option<String>,
    pub reason: Option<String>,
    pub subject: Option<String>,
    pub username: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub route: Option<String>,
}

/// Where one gateway's rows go, and the clock that dates them.
#[derive(Clone)]
pub(crate) struct Sink {
    pub rows: mpsc::Sender<AuditRow>,
    pub clock: Clock,
    /// Called with each row that could not be handed over.
    pub dropped: Arc<dyn Fn() + Send + Sync>,
}

/// The sinks of the gateways of this process, by name (a process serves one; the tests run
/// several, their threads named after them).
fn sinks() -> &'static Mutex<HashMap<String, Sink>> {
    static SINKS: OnceLock<Mutex<HashMap<String, Sink>>> = OnceLock::new();
    SINKS.get_or_init(Mutex::default)
}

/// Sends the audit events of gateway `name` to `sink` until the returned guard is dropped.
pub(crate) fn register(name: &str, sink: Sink) -> Registration {
    let mut all = sinks().lock().unwrap_or_else(PoisonError::into_inner);
    all.insert(name.to_string(), sink);
    Registration(name.to_string())
}

pub(crate) struct Registration(String);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut all = sinks().lock().unwrap_or_else(PoisonError::into_inner);
        all.remove(&self.0);
    }
}

/// The sink of the gateway whose thread this is: the only one, or the one whose name the
/// thread's carries (Pingora names a service's threads after it).
fn current_sink() -> Option<Sink> {
    let all = sinks().lock().unwrap_or_else(PoisonError::into_inner);
    if all.len() <= 1 {
        return all.values().next().cloned();
    }
    let thread = std::thread::current();
    let name = thread.name()?.trim_start_matches("BG ");
    let gateway = name.split('-').next()?;
    all.get(gateway).cloned()
}

/// The `tracing` layer that hands every audit event to its gateway's sink ([`audit_layer`]).
pub struct AuditLayer;

/// [`AuditLayer`] with a filter of its own: it sees the audit events, whatever
/// `PORTCULLIS_LOG` keeps of the log, and nothing else (no other event is made for it).
///
/// Audit events are `info` or `warn`: the filter says so, or the log's level would be `trace`
/// for everyone (no hint means any level), and every `debug!` Pingora writes per request would
/// be made into an event only to be refused (~12,000 instructions a request).
pub fn audit_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let only_audit: fn(&tracing::Metadata<'_>) -> bool = |m| m.target() == "audit";
    let only_audit = tracing_subscriber::filter::filter_fn(only_audit)
        .with_max_level_hint(tracing::level_filters::LevelFilter::INFO);
    AuditLayer.with_filter(only_audit)
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let Some(sink) = current_sink() else { return };
        let mut row = Fields::default();
        event.record(&mut row);
        let mut row = row.0;
        if row.event.is_empty() {
            return;
        }
        row.at = sink.clock.now();
        if sink.rows.try_send(row).is_err() {
            (sink.dropped)();
        }
    }
}

#[derive(Default)]
struct Fields(AuditRow);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value: String = value.chars().take(MAX_VALUE).collect();
        let row = &mut self.0;
        match field.name() {
            "event" if row.event.is_empty() => row.event = value,
            // `account` events are stored under what happened.
            "action" => row.event = value,
            "result" => row.result = Some(value),
            "reason" => row.reason = Some(value),
            "subject" => row.subject = Some(value),
            "username" => row.username = Some(value),
            "client_ip" => row.client_ip = Some(value),
            "user_agent" => row.user_agent = Some(value),
            "request_id" => row.request_id = Some(value),
            "route" => row.route = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here as Display wrapped in Debug.
        let text = format!("{value:?}");
        let text = text.trim_matches('"');
        self.record_str(field, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn audit_events_become_rows_and_nothing_else_is_kept() {
        let (tx, mut rx) = mpsc::channel(8);
        let sink = Sink {
            rows: tx,
            clock: Clock::Manual(Arc::new(std::sync::atomic::AtomicU64::new(77))),
            dropped: Arc::new(|| {}),
        };
        let _registered = register("unit-audit", sink);
        let subscriber = tracing_subscriber::registry().with(audit_layer());
        tracing::subscriber::with_default(subscriber, || {
            let username = "alice";
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "invalid_credentials", username, password = "never", client_ip = %"192.0.2.1", request_id = "r1");
            tracing::info!(target: "audit", event = "account", action = "api_key_created", username = %"bob", api_key = "k1");
            tracing::info!(target: "other", event = "login", username = "mallory");
        });
        let first = rx.try_recv().unwrap();
        assert_eq!(first.at, 77);
        assert_eq!(first.event, "login");
        assert_eq!(first.result.as_deref(), Some("failure"));
        assert_eq!(first.username.as_deref(), Some("alice"));
        assert_eq!(first.client_ip.as_deref(), Some("192.0.2.1"));
        let second = rx.try_recv().unwrap();
        assert_eq!(second.event, "api_key_created");
        assert_eq!(second.username.as_deref(), Some("bob"));
        assert!(rx.try_recv().is_err(), "no row of another target");
        assert!(!format!("{first:?}{second:?}").contains("never"));
    }
}
