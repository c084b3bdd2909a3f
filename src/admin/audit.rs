//! `GET /admin/audit` (docs/CONFIG.md, `[audit]`): the stored audit trail, newest first, a
//! page at a time (keyset: `after` is the last id of the previous page), filtered by
//! subject, username or event.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{json, Value};

use super::{json as respond, AdminApp};
use crate::accounts::db::audit::{self, AuditFilter};
use crate::accounts::db::DbError;
use crate::error::GatewayError;
use crate::response::LocalResponse;
use crate::units::rfc3339;

const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

impl AdminApp {
    pub(super) async fn audit(&self, query: Option<&str>) -> Result<LocalResponse, GatewayError> {
        let runtime = self.services.runtime.load_full();
        let directory = match (&self.services.directory, runtime.config.audit.database) {
            (Some(d), true) => d.clone(),
            _ => return Err(GatewayError::NotFound),
        };
        let params: BTreeMap<String, String> =
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let limit = match params.get("limit").map(|l| l.parse::<u32>()) {
            None => DEFAULT_PAGE,
            Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
            Some(_) => return Err(GatewayError::InvalidRequest("limit: 1 to 500")),
        };
        let text = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        let before = match params.get("after").filter(|v| !v.is_empty()) {
            None => None,
            Some(a) => Some(
                a.parse::<i64>()
                    .map_err(|_| GatewayError::InvalidRequest("after: the id of a row"))?,
            ),
        };
        let filter = AuditFilter {
            subject: text("subject"),
            username: text("username").map(|u| u.to_ascii_lowercase()),
            event: text("event"),
            before,
        };
        let rows = directory
            .db
            .run(move |pool, _| async move { audit::page(&pool, &filter, limit).await })
            .await
            .map_err(|e| match e {
                DbError::Unholdable(_) => GatewayError::InvalidRequest(
                    "a filter holds a character that cannot be stored (NUL)",
                ),
                e => {
                    tracing::warn!(error = %e, "the audit trail could not be read");
                    GatewayError::Unavailable
                }
            })?;
        let next =
            (rows.len() == limit as usize).then(|| rows.last().map(|(id, _)| id.to_string()));
        let events: Vec<Value> = rows
            .into_iter()
            .map(|(id, r)| {
                json!({"id": id, "at": rfc3339(r.at), "event": r.event, "result": r.result,
                       "reason": r.reason, "subject": r.subject, "username": r.username,
                       "client_ip": r.client_ip, "request_id": r.request_id, "route": r.route})
            })
            .collect();
        Ok(respond(
            StatusCode::OK,
            json!({"events": events, "next": next.flatten()}),
        ))
    }
}
