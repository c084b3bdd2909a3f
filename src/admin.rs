//! The admin listener (SPEC section 5): health, readiness, metrics, and, behind
//! `[admin] token`, revocation and unlock.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics;
use crate::store::{Revocation, Store};

/// Admin request bodies are small JSON objects.
const MAX_BODY: usize = 16 * 1024;

pub struct AdminApp {
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    /// Why the gateway is not ready yet, beyond the store (e.g. a JWKS not fetched).
    pub readiness: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
}

fn json_response(status: StatusCode, body: Value) -> Response<Vec<u8>> {
    let bytes = serde_json::to_vec(&body).expect("plain JSON serialises");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(bytes)
        .expect("a valid response")
}

fn error(status: StatusCode, code: &str, description: &str) -> Response<Vec<u8>> {
    json_response(
        status,
        json!({"error": code, "error_description": description}),
    )
}

fn no_content() -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Vec::new())
        .expect("a valid response")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let incoming = session
            .req_header()
            .headers
            .get(crate::headers::X_REQUEST_ID);
        let rid = crate::headers::request_id(incoming.map(|v| v.as_bytes()));
        let mut response = self.answer(session, &rid).await;
        if let Ok(v) = http::HeaderValue::from_str(&rid) {
            response
                .headers_mut()
                .insert(crate::headers::X_REQUEST_ID, v);
        }
        response
    }
}

impl AdminApp {
    /// The answer to one admin request; `rid` is its request id, for the audit events.
    async fn answer(&self, session: &mut ServerSession, rid: &str) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method, path.as_str()) {
            (Method::GET | Method::HEAD, "/healthz") => {
                json_response(StatusCode::OK, json!({"status": "ok"}))
            }
            (Method::GET | Method::HEAD, "/readyz") => self.readyz(),
            (Method::GET | Method::HEAD, "/metrics") => self.metrics(),
            (_, "/admin/revoke" | "/admin/unlock") if !self.api_enabled() => {
                error(StatusCode::NOT_FOUND, "not_found", "the admin API is off")
            }
            (Method::POST, "/admin/revoke") => match self.authorized_body(session, rid).await {
                Ok(body) => self.revoke(body, rid).await,
                Err(refused) => refused,
            },
            (Method::POST, "/admin/unlock") => match self.authorized_body(session, rid).await {
                Ok(body) => self.unlock(body, rid).await,
                Err(refused) => refused,
            },
            (_, "/healthz" | "/readyz" | "/metrics" | "/admin/revoke" | "/admin/unlock") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method not allowed",
            ),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
        }
    }

    fn api_enabled(&self) -> bool {
        self.config.load().admin_token.is_some()
    }

    fn reasons(&self) -> Vec<String> {
        let config = self.config.load();
        let mut reasons = Vec::new();
        if !self.store.is_fresh(config.store.max_staleness) {
            reasons.push("store: shared state unreachable or revocations stale".to_string());
        }
        reasons.extend((self.readiness)());
        reasons
    }

    fn readyz(&self) -> Response<Vec<u8>> {
        let reasons = self.reasons();
        if reasons.is_empty() {
            json_response(StatusCode::OK, json!({"status": "ready"}))
        } else {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "not_ready", "reasons": reasons}),
            )
        }
    }

    fn metrics(&self) -> Response<Vec<u8>> {
        let config = self.config.load();
        metrics::metrics()
            .store_up
            .set(i64::from(self.store.is_fresh(config.store.max_staleness)));
        let body = metrics::render();
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .header(header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("a valid response")
    }

    /// Checks the bearer token (in constant time), then reads the JSON body.
    async fn authorized_body(
        &self,
        session: &mut ServerSession,
        request_id: &str,
    ) -> Result<Value, Response<Vec<u8>>> {
        let presented = session
            .req_header()
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let token_ok = {
            let config = self.config.load();
            match (&config.admin_token, &presented) {
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
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a valid admin token is required",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer realm="portcullis-admin""#),
            );
            return Err(r);
        }
        read_json(session)
            .await
            .map_err(|description| error(StatusCode::BAD_REQUEST, "invalid_request", description))
    }

    async fn revoke(&self, body: Value, request_id: &str) -> Response<Vec<u8>> {
        let config = self.config.load_full();
        let now = self.clock.now();
        let until = config.revocation_until(now);
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
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "give exactly one of jti, sid, subject, api_key_id (a string)",
                )
            }
        };
        let kind = revocation.kind();
        match self.store.revoke(revocation).await {
            Ok(()) => {
                tracing::info!(target: "audit", event = "revocation", kind, by = "admin", request_id);
                no_content()
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin revocation not stored");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "shared state unavailable",
                )
            }
        }
    }

    async fn unlock(&self, body: Value, request_id: &str) -> Response<Vec<u8>> {
        let Some(username) = body.get("username").and_then(Value::as_str) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing field: username (a string)",
            );
        };
        match self.store.clear_failures(username).await {
            Ok(()) => {
                tracing::info!(target: "audit", event = "unlock", username, by = "admin", request_id);
                no_content()
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin unlock not stored");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "shared state unavailable",
                )
            }
        }
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
