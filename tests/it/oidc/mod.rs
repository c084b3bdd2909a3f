//! Signing in with an OpenID Provider (docs/CONFIG.md, `[[oidc]]`) through the real gateway
//! and a real, certified provider (node's `oidc-provider`, started by the tests), driven by a
//! browser's hops; the refusals a real provider never sends come from a forging provider of
//! the tests' own (`forge`).

mod browser;
mod chromium;
mod flows;
mod forge;
mod forged;
mod provider;
mod shared;

pub use browser::{Browser, Hop};
pub use provider::OpenIdProvider;
use serde_json::{json, Value};

use crate::support::*;

pub const SECRET: &str = "gateway-client-secret-0123456789";
pub const DB_KEY: &str = "oidc-db-key-0123456789-0123456789";

/// The gateway's `[[oidc]]` provider `corp` on `issuer`, with `extra` keys; users in
/// SQLite when `db`.
pub fn config(issuer: &str, extra: &str, db: bool) -> Toml {
    let users = if db {
        format!("users_db = \"sqlite://users.db\"\ndb_key = \"{DB_KEY}\"\n")
    } else {
        String::new()
    };
    toml()
        .admin(Some("oidc-admin-token-0123456789"))
        .tokens("access_ttl = \"15m\"")
        .table(&format!(
            "[login]\n{users}rate_limit = \"1000/s\"\ncookie = {{ name = \"sess\", secure = false }}"
        ))
        .table(
            r#"[roles]
user = { permissions = ["orders:read"] }
admin = { inherits = ["user"], permissions = ["*"] }
auditor = { permissions = ["audit:read"] }"#,
        )
        .table(&format!(
            r#"[[oidc]]
name = "corp"
issuer = "{issuer}"
client_id = "gateway"
redirect_uri = "http://{{LISTEN}}/auth/oidc/corp/callback"
scopes = ["openid", "email", "profile", "groups"]
roles_claim = "groups"
roles_map = {{ "staff" = ["user"], "admins" = ["admin"] }}
claims = ["email", "name"]
{}"#,
            if extra.contains("client_key_file") {
                extra.to_string()
            } else {
                format!("client_secret = \"{SECRET}\"\n{extra}")
            }
        ))
        .route("app", "/app/**", "roles_any = [\"user\"]\nunauthenticated = \"redirect:corp\"")
        .route("api", "/api/**", "roles_any = [\"user\"]")
}

/// The client the provider knows the gateway `gw` as.
pub fn client(gw: &Gateway) -> Value {
    let base = format!("http://{}", gw.addr);
    json!({
        "client_id": "gateway",
        "client_secret": SECRET,
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": [format!("{base}/auth/oidc/corp/callback")],
        "post_logout_redirect_uris": [format!("{base}/"), format!("{base}/bye")],
        "backchannel_logout_uri": format!("{base}/auth/oidc/corp/backchannel-logout"),
        "backchannel_logout_session_required": true,
    })
}

/// Polls until `cond` holds, at most 5 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// Waits until the gateway has the provider's discovery and keys.
pub async fn ready(gw: &Gateway) {
    eventually("the provider's discovery and keys fetched", || async {
        gw.admin_request("GET", "/readyz", &[], "").await.status == 200
    })
    .await;
}

/// A provider and a gateway on it (users in SQLite when `db`), the client registered.
pub async fn start(extra: &str, db: bool) -> (OpenIdProvider, Gateway) {
    let op = OpenIdProvider::start().await;
    let gw = Gateway::start(&config(&op.issuer, extra, db).build(), start_echo().await).await;
    op.register(json!([client(&gw)])).await;
    ready(&gw).await;
    (op, gw)
}

/// Signs `user` in from `path` of the gateway `gw` (a page that leads to the provider): the
/// gateway's answer to the callback.
pub async fn sign_in(
    browser: &mut Browser,
    gw: &Gateway,
    path: &str,
    op: &OpenIdProvider,
    user: &str,
    password: &str,
) -> Hop {
    let base = format!("http://{}", gw.addr);
    // The gateway sends the browser to the provider, which shows its login form...
    let start = format!("{base}{path}");
    let (at, _) = browser
        .follow(&start, &format!("{}/interaction/", op.issuer))
        .await;
    assert!(
        at.starts_with(&format!("{}/interaction/", op.issuer)),
        "{at}"
    );
    let form = browser.get(&at).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"password\""), "{}", form.body);
    // ... and, signed in, back to the gateway's callback.
    let posted = browser
        .post_form(
            &format!("{at}/login"),
            &[("login", user), ("password", password)],
        )
        .await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let resume = posted.location.unwrap();
    let (callback, _) = browser.follow(&resume, &base).await;
    assert!(callback.contains("/auth/oidc/corp/callback?"), "{callback}");
    browser.get(&callback).await
}
