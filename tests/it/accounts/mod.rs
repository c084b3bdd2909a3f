//! Users in a database (docs/CONFIG.md, "Users in a database") through the real gateway: SQLite files in the test's
//! directory and a PostgreSQL database of each test's own. Cases that hold for both run on
//! both (`both!`).

mod admin;
mod check;
mod faults;
mod hardened;
mod recovery;
pub(crate) mod self_service;
mod shared;

use serde_json::{json, Value};

use crate::login::pair;
use crate::support::*;

pub(crate) const ADMIN: &str = "accounts-admin-token-0123456789";
pub(crate) const DB_KEY: &str = "accounts-db-key-0123456789-0123456789";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Where the users live.
pub(crate) enum Backend {
    /// `users.db` beside the config.
    Sqlite,
    Postgres(PgDatabase),
}

impl Backend {
    pub(crate) async fn postgres() -> Backend {
        Backend::Postgres(PgDatabase::create().await)
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Backend::Sqlite => "sqlite://users.db".into(),
            Backend::Postgres(db) => db.url(),
        }
    }
}

/// Runs an async test body once on SQLite and once on PostgreSQL.
macro_rules! both {
    ($(#[$m:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        mod $name {
            use super::*;
            async fn run($backend: Backend) $body
            #[tokio::test]
            async fn sqlite() {
                run(Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                run(Backend::postgres().await).await
            }
        }
    };
}
pub(crate) use both;

/// A gateway on `backend` with registration on, the admin API, and `/api/**` for `user`.
pub(crate) fn config(backend: &Backend, login_extra: &str) -> Toml {
    toml()
        .admin(Some(ADMIN))
        .tokens("access_ttl = \"15m\"")
        .table(&format!(
            "[login]\nusers_db = \"{}\"\ndb_key = \"{DB_KEY}\"\nrate_limit = \"1000/s\"\n\
             registration = {{ enabled = true, roles = [\"user\"] }}\n{login_extra}",
            backend.url()
        ))
        .table(
            r#"[roles]
user = { permissions = ["orders:read"] }
auditor = { permissions = ["audit:read"] }
admin = { inherits = ["user", "auditor"] }"#,
        )
        .route("api", "/api/**", r#"roles_any = ["user", "auditor"]"#)
}

/// The gateway and the database it runs on (dropped after the gateway: fields drop in
/// order).
pub(crate) struct Accounts {
    pub gw: Gateway,
    _backend: Backend,
}

impl std::ops::Deref for Accounts {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

pub(crate) async fn start(backend: Backend) -> Accounts {
    start_with(backend, "").await
}

pub(crate) async fn start_with(backend: Backend, login_extra: &str) -> Accounts {
    let toml = config(&backend, login_extra);
    start_toml(backend, toml).await
}

/// A gateway on `backend` with the config `toml` (made from [`config`]).
pub(crate) async fn start_toml(backend: Backend, toml: Toml) -> Accounts {
    let gw = Gateway::start(&toml.build(), start_echo().await).await;
    // The admin listener starts beside the proxy.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Accounts {
        gw,
        _backend: backend,
    }
}

pub(crate) async fn register(gw: &Gateway, username: &str, password: &str) -> Response {
    gw.post_json(
        "/auth/register",
        &[],
        &json!({"username": username, "password": password}),
    )
    .await
}

/// Registers `username` and logs in: (access, refresh).
pub(crate) async fn signed_up(gw: &Gateway, username: &str) -> (String, String) {
    let r = register(gw, username, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    pair(&crate::login::login(gw, username, PASSWORD).await)
}

/// A self-service call with `access` as the Bearer token.
pub(crate) async fn me(
    gw: &Gateway,
    method: &str,
    path: &str,
    access: &str,
    body: Option<Value>,
) -> Response {
    let auth = bearer(access);
    let mut headers = vec![("Authorization", auth.as_str())];
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    if !text.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    gw.request(method, path, &headers, &text).await
}

/// An admin API call.
pub(crate) async fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Response {
    let auth = format!("Bearer {ADMIN}");
    let mut headers = vec![("Authorization", auth.as_str())];
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    if !text.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    gw.admin_request(method, path, &headers, &text).await
}

pub(crate) async fn with_key(gw: &Gateway, key: &str) -> Response {
    gw.get("/api/x", &[("X-API-Key", key)]).await
}

pub(crate) async fn with_token(gw: &Gateway, access: &str) -> Response {
    gw.get("/api/x", &[("Authorization", &bearer(access))])
        .await
}
