//! The admin listener (SPEC section 5): health, readiness, metrics, and, behind
//! `[admin] token`, revocation, unlock and the users of `users_db` (`users.rs`). Refusals
//! are rendered as the proxy's are.

mod users;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::accounts::password::PasswordPool;
use crate::clock::Clock;
use crate::error::GatewayError;
use crate::headers::{request_id, X_REQUEST_ID};
use crate::metrics::Metrics;
use crate::response::LocalResponse;
use crate::runtime::Runtime;
use crate::store::{Revocation, Store};

/// Admin request bodies are small JSON objects.
const MAX_BODY: usize = 16 * 1024;

pub(crate) struct AdminApp {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Hashes the passwords the users API sets, off the event loop.
    pub passwords: PasswordPool,
}

fn json(status: StatusCode, body: Value) -> LocalResponse {
    let bytes = serde_json::to_vec(&body).expect("plain JSON serialises");
    LocalResponse::json(status, bytes).header(header::CACHE_CONTROL, "no-store")
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
        let path = session.req_header().uri.path().to_string();
        match (method, path.as_str()) {
            (Method::GET | Method::HEAD, "/healthz") => {
                Ok(json(StatusCode::OK, json!({"status": "ok"})))
            }
            (Method::GET | Method::HEAD, "/readyz") => Ok(self.readyz()),
            (Method::GET | Method::HEAD, "/metrics") => Ok(self.metrics()),
            (_, "/admin/revoke" | "/admin/unlock") if !self.api_enabled() => {
                Err(GatewayError::NotFound)
            }
            (Method::POST, "/admin/revoke") => {
                let body = self.authorized_body(session, rid).await?;
                self.revoke(body, rid).await
            }
            (Method::POST, "/admin/unlock") => {
                let body = self.authorized_body(session, rid).await?;
                self.unlock(body, rid).await
            }
            (_, "/healthz" | "/readyz" | "/metrics" | "/admin/revoke" | "/admin/unlock") => {
                Err(GatewayError::MethodNotAllowed)
            }
            (_, p) if p == "/admin/users" || p.starts_with("/admin/users/") => {
                if !self.api_enabled() {
                    return Err(GatewayError::NotFound);
                }
                self.check_token(session, rid)?;
                Ok(self
                    .users(session, rid)
                    .await
                    .unwrap_or_else(|refusal| refusal.render(rid)))
            }
            _ => Err(GatewayError::NotFound),
        }
    }

    fn api_enabled(&self) -> bool {
        self.runtime.load().config.admin_token.is_some()
    }

    fn reasons(&self) -> Vec<String> {
        let runtime = self.runtime.load();
        let mut reasons = Vec::new();
        if !self.store.is_fresh(runtime.config.store.max_staleness) {
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
        let config = &self.runtime.load().config;
        let fresh = self.store.is_fresh(config.store.max_staleness);
        self.metrics.store_up.set(i64::from(fresh));
        let mut resp = LocalResponse::empty(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4");
        resp.body = self.metrics.render().into();
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
            let runtime = self.runtime.load();
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
        let runtime = self.runtime.load();
        let now = self.clock.now();
        let until = runtime.config.revocation_until(now);
        let field = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let revocation = match (
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
            (None, None, Some(subject), None) => Revocation::Subject {
                subject: subject.into(),
                at: now,
                until,
            },
            (None, None, None, Some(id)) => Revocation::ApiKey { id: id.into() },
            _ => {
                return Err(GatewayError::InvalidRequest(
                    "give exactly one of jti, sid, subject, api_key_id (a string)",
                ))
            }
        };
        let kind = revocation.kind();
        self.store.revoke(revocation).await.map_err(|e| {
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
        // With users_db, lockouts are counted under the lower-cased name, as logins are.
        let username = if self.runtime.load().accounts.is_some() {
            username.to_ascii_lowercase()
        } else {
            username.to_string()
        };
        let username = username.as_str();
        self.store.clear_failures(username).await.map_err(|e| {
            tracing::warn!(error = %e, "admin unlock not stored");
            GatewayError::Unavailable
        })?;
        tracing::info!(target: "audit", event = "unlock", username, by = "admin", request_id);
        Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
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
    match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("the body must be a JSON object"),
    }
}
