//! The admin listener (docs/CONFIG.md, `[admin]`): health, readiness, metrics, and, behind
//! `[admin] token`, revocation, unlock and the users of `users_db` (`users.rs`). Refusals
//! are rendered as the proxy's are.

mod audit;
mod users;

pub(crate) use users::{ChangeBody, NewUserBody};

use std::sync::Arc;

use async_trait::async_trait;
use http::{header, HeaderValue, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::headers::{request_id, X_REQUEST_ID};
use crate::response::LocalResponse;
use crate::services::Services;
use crate::store::Revocation;

/// Admin request bodies are small JSON objects.
const MAX_BODY: usize = 16 * 1024;

pub(crate) struct AdminApp {
    pub services: Arc<Services>,
}

fn json(status: StatusCode, body: Value) -> LocalResponse {
    let bytes = serde_json::to_vec(&body).expect("plain JSON serialises");
    LocalResponse::json(status, bytes)
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// What the admin listener serves, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminPath {
    Healthz,
    Readyz,
    Metrics,
    Revoke,
    Unlock,
    /// `/admin/users` and below.
    Users,
    /// `/admin/audit`: the stored audit trail.
    Audit,
}

impl AdminPath {
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/healthz" => AdminPath::Healthz,
            "/readyz" => AdminPath::Readyz,
            "/metrics" => AdminPath::Metrics,
            "/admin/revoke" => AdminPath::Revoke,
            "/admin/unlock" => AdminPath::Unlock,
            "/admin/users" => AdminPath::Users,
            p if p.starts_with("/admin/users/") => AdminPath::Users,
            "/admin/audit" => AdminPath::Audit,
            _ => return None,
        })
    }

    /// Behind `[admin] token` (404 without one).
    fn is_api(self) -> bool {
        match self {
            AdminPath::Healthz | AdminPath::Readyz | AdminPath::Metrics => false,
            AdminPath::Revoke | AdminPath::Unlock | AdminPath::Users | AdminPath::Audit => true,
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let incoming = session.req_header().headers.get(X_REQUEST_ID);
        let rid = request_id(incoming.map(|v| v.as_bytes()));
        let answer = match self.answer(session, &rid).await {
            Ok(resp) => resp,
            Err(refusal) => LocalResponse::refusal(&refusal, &rid),
        };
        answer.into_http(&rid)
    }
}

impl AdminApp {
    /// The answer to one admin request; `rid` is its request id, for the audit events.
    async fn answer(
        &self,
        session: &mut ServerSession,
        rid: &str,
    ) -> Result<LocalResponse, GatewayError> {
        let method = session.req_header().method.clone();
        let path = AdminPath::of(session.req_header().uri.path()).ok_or(GatewayError::NotFound)?;
        if path.is_api() && !self.api_enabled() {
            return Err(GatewayError::NotFound);
        }
        let read = matches!(method, Method::GET | Method::HEAD);
        match path {
            AdminPath::Healthz if read => Ok(json(StatusCode::OK, json!({"status": "ok"}))),
            AdminPath::Readyz if read => Ok(self.readyz()),
            AdminPath::Metrics if read => Ok(self.metrics()),
            AdminPath::Revoke if method == Method::POST => {
                let body = self.authorized_body(session, rid).await?;
                self.revoke(body, rid).await
            }
            AdminPath::Unlock if method == Method::POST => {
                let body = self.authorized_body(session, rid).await?;
                self.unlock(body, rid).await
            }
            AdminPath::Users => {
                self.check_token(session, rid)?;
                Ok(self
                    .users(session, rid)
                    .await
                    .unwrap_or_else(|refusal| refusal.render(rid)))
            }
            AdminPath::Audit if read => {
                self.check_token(session, rid)?;
                let query = session.req_header().uri.query().map(str::to_string);
                self.audit(query.as_deref()).await
            }
            AdminPath::Healthz
            | AdminPath::Readyz
            | AdminPath::Metrics
            | AdminPath::Revoke
            | AdminPath::Unlock
            | AdminPath::Audit => Err(GatewayError::MethodNotAllowed),
        }
    }

    fn api_enabled(&self) -> bool {
        self.services.runtime.load().config.admin_token.is_some()
    }

    fn reasons(&self) -> Vec<String> {
        let runtime = self.services.runtime.load();
        let mut reasons = Vec::new();
        if !self
            .services
            .store
            .is_fresh(runtime.config.store.max_staleness)
        {
            reasons.push("store: shared state unreachable or revocations stale".to_string());
        }
        reasons.extend(runtime.jwks_not_ready());
        reasons
    }

    fn readyz(&self) -> LocalResponse {
        let reasons = self.reasons();
        if reasons.is_empty() {
            json(StatusCode::OK, json!({"status": "ready"}))
        } else {
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "not_ready", "reasons": reasons}),
            )
        }
    }

    fn metrics(&self) -> LocalResponse {
        let services = &self.services;
        let config = &services.runtime.load().config;
        let fresh = services.store.is_fresh(config.store.max_staleness);
        services.metrics.store_up.set(i64::from(fresh));
        let text = HeaderValue::from_static("text/plain; version=0.0.4");
        let mut resp = LocalResponse::empty(StatusCode::OK).header(header::CONTENT_TYPE, text);
        resp.body = services.metrics.render().into();
        resp
    }

    /// Checks the bearer token (in constant time), then reads the JSON body.
    async fn authorized_body(
        &self,
        session: &mut ServerSession,
        request_id: &str,
    ) -> Result<Value, GatewayError> {
        self.check_token(session, request_id)?;
        read_json(session)
            .await
            .map_err(GatewayError::InvalidRequest)
    }

    /// The `[admin] token`, compared in constant time.
    fn check_token(&self, session: &ServerSession, request_id: &str) -> Result<(), GatewayError> {
        let presented = session
            .req_header()
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let token_ok = {
            let runtime = self.services.runtime.load();
            match (&runtime.config.admin_token, &presented) {
                (Some(expected), Some(given)) => {
                    // Digests first: equal lengths, so the comparison time says nothing.
                    let a = Sha256::digest(expected.as_bytes());
                    let b = Sha256::digest(given.as_bytes());
                    bool::from(a.ct_eq(&b))
                }
                _ => false,
            }
        };
        if !token_ok {
            tracing::info!(target: "audit", event = "admin_refused", reason = "invalid_token", request_id);
            return Err(GatewayError::AdminTokenRequired);
        }
        Ok(())
    }

    async fn revoke(&self, body: Value, request_id: &str) -> Result<LocalResponse, GatewayError> {
        let runtime = self.services.runtime.load();
        let now = self.services.clock.now();
        let until = runtime.config.revocation_until(now);
        let key_ttl = runtime.config.account_rules().key_ttl;
        let revocation = revocation_of(&body, now, until, key_ttl)?;
        let kind = revocation.kind();
        self.services.store.revoke(revocation).await.map_err(|e| {
            tracing::warn!(error = %e, "admin revocation not stored");
            GatewayError::Unavailable
        })?;
        tracing::info!(target: "audit", event = "revocation", kind, by = "admin", request_id);
        Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
    }

    async fn unlock(&self, body: Value, request_id: &str) -> Result<LocalResponse, GatewayError> {
        let Some(username) = body.get("username").and_then(Value::as_str) else {
            return Err(GatewayError::InvalidRequest(
                "missing field: username (a string)",
            ));
        };
        // Lockouts are counted under the name logins use (lower-cased with users_db).
        let runtime = self.services.runtime.load();
        let username = self.services.users(&runtime).canonical(username);
        let username = username.as_str();
        self.services
            .store
            .clear_failures(username)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "admin unlock not stored");
                GatewayError::Unavailable
            })?;
        tracing::info!(target: "audit", event = "unlock", username, by = "admin", request_id);
        Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
    }
}

/// What `POST /admin/revoke` asks for: exactly one of `jti`, `sid`, `subject`, `api_key_id`.
pub(crate) fn revocation_of(
    body: &Value,
    now: u64,
    until: u64,
    key_ttl: u64,
) -> Result<Revocation, GatewayError> {
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    Ok(
        match (
            field("jti"),
            field("sid"),
            field("subject"),
            field("api_key_id"),
        ) {
            (Some(jti), None, None, None) => Revocation::Jti {
                jti: jti.into(),
                until,
            },
            (None, Some(sid), None, None) => Revocation::Session {
                sid: sid.into(),
                until,
            },
            // Every credential of the subject, the keys its user made included: held as long
            // as a key made before now may live.
            (None, None, Some(subject), None) => Revocation::Owner {
                subject: subject.into(),
                at: now,
                until: until.max(now + key_ttl),
            },
            (None, None, None, Some(id)) => Revocation::ApiKey {
                id: id.into(),
                until: None,
            },
            _ => {
                return Err(GatewayError::InvalidRequest(
                    "give exactly one of jti, sid, subject, api_key_id (a string)",
                ))
            }
        },
    )
}

/// A body that is one JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Value, &'static str> {
    if !crate::strict_json::keys_unique(body) {
        return Err("a field is repeated");
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("the body must be a JSON object"),
    }
}

async fn read_json(session: &mut ServerSession) -> Result<Value, &'static str> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err("body too large");
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err("unreadable body"),
        }
    }
    json_object(&body)
}
