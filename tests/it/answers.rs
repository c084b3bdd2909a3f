//! What every answer carries: Portcullis's own answers their security headers (HSTS on TLS
//! listeners only), upstream answers the headers `[response]` and the route add where the
//! upstream set none, the identity's issuer when `issuer_header` is set, a CORS origin in
//! its serialised form; and the same path rules for a target as received.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::support::*;

const SECURITY: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

fn config() -> Toml {
    toml()
        .admin(None)
        .table("[roles]\nuser = {}")
        .table("[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"")
        .table(
            "[response]\nheaders = { \"X-Frame-Options\" = \"SAMEORIGIN\", \"Content-Type\" = \"text/evil\", \"Cache-Control\" = \"private\" }",
        )
        .table("[identity]\nissuer_header = \"X-User-Issuer\"")
        .table(
            "[[api_keys]]\nid = \"ci\"\nkey_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\nsubject = \"svc-ci\"\nroles = [\"user\"]",
        )
        .route(
            "api",
            "/api/**",
            "roles_any = [\"user\"]\nresponse_headers = { \"Cache-Control\" = \"no-store\" }",
        )
        .route("other", "/other/**", "auth = \"none\"")
}

async fn start() -> Gateway {
    let gw = Gateway::start_with_files(
        &config().build(),
        start_echo().await,
        &[("users.toml", "users = []\n")],
    )
    .await;
    for _ in 0..500 {
        if TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    gw
}

#[tokio::test]
async fn the_gateways_own_answers_carry_security_headers() {
    let gw = start().await;
    let mut checks = Checks::new();
    for (case, r) in [
        ("a refusal", gw.get("/api/x", &[]).await),
        ("the JWKS", gw.get("/.well-known/jwks.json", &[]).await),
        (
            "a login endpoint",
            gw.post_json("/auth/login", &[], &serde_json::json!({}))
                .await,
        ),
        (
            "the admin listener",
            gw.admin_request("GET", "/healthz", &[], "").await,
        ),
    ] {
        for (name, value) in SECURITY {
            checks.eq((case, name), r.header(name), Some(value));
        }
        checks.eq(
            (case, "no HSTS over plain HTTP"),
            r.header("strict-transport-security"),
            None,
        );
    }
    // An upstream's answer keeps what the upstream said.
    let r = gw.get("/other/x", &[]).await;
    checks.eq(
        "upstream: its type",
        r.header("content-type"),
        Some("application/json"),
    );
    checks.eq(
        "upstream: [response]",
        r.header("x-frame-options"),
        Some("SAMEORIGIN"),
    );
    checks.eq(
        "upstream: [response] cache",
        r.header("cache-control"),
        Some("private"),
    );
    let r = gw.get("/api/x", &[("X-API-Key", "test")]).await;
    checks.eq(
        "api: the route's own",
        r.header("cache-control"),
        Some("no-store"),
    );
    checks.eq(
        "api: [response]",
        r.header("x-frame-options"),
        Some("SAMEORIGIN"),
    );
}

#[tokio::test]
async fn hsts_on_tls_listeners() {
    let toml = config()
        .server(r#"tls = { cert_file = "{KEYS}/tls_cert.pem", key_file = "{KEYS}/tls_key.pem" }"#);
    let gw = Gateway::start_with_files(
        &toml.build(),
        start_echo().await,
        &[("users.toml", "users = []\n")],
    )
    .await;
    let connector = TlsConnector::from(Arc::new(crate::tls::client_config()));
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age=31536000"),
        "{text}"
    );
    assert!(text.contains("x-frame-options: deny"), "{text}");
}

#[tokio::test]
async fn the_issuer_header_says_who_vouches_for_the_caller() {
    let gw = start().await;
    let token = bearer(&hs_token(&access_claims("alice", &["user"])));
    let spoofs = [
        ("X-User-Issuer", "https://evil.test"),
        ("X_User_Issuer", "evil"),
    ];
    let mut headers = vec![("Authorization", token.as_str())];
    headers.extend(spoofs);
    let echo = gw.get("/api/x", &headers).await.echo();
    assert_eq!(echo.headers["x-user-issuer"], ["portcullis"]);
    assert!(!echo.headers.contains_key("x_user_issuer"));
    let mut headers = vec![("X-API-Key", "test")];
    headers.extend(spoofs);
    let echo = gw.get("/api/x", &headers).await.echo();
    assert_eq!(echo.headers["x-user-issuer"], ["api_key"]);
    // Several issuers without the header: `check` warns.
    let toml = toml()
        .table(
            "[[tokens.trusted_issuers]]\nissuer = \"https://idp.test\"\nsecret = \"another-secret-0123456789-0123456789\"",
        )
        .route("api", "/api/**", "")
        .build()
        .replace("{LISTEN}", "127.0.0.1:1")
        .replace("{UPSTREAM}", "127.0.0.1:2");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("issuer_header"), "{err}");
}

/// Raw bytes a parser would drop or re-encode: refused on the target as received (a
/// fragment would be judged and served as the path before it; a control byte could be read
/// differently upstream). A raw space is the one Pingora re-encodes before anyone reads the
/// target (`%20`): judged and forwarded as that, the same path both sides.
#[tokio::test]
async fn a_target_as_received_is_refused_for_a_fragment_or_a_control() {
    let gw = start().await;
    let token = bearer(&hs_token(&access_claims("alice", &["user"])));
    let mut checks = Checks::new();
    for target in [
        "/api/x#/../../other/y",
        "/other/x#frag",
        "/other/a\x01b",
        "/other/a%01b",
    ] {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
        );
        let r = send_raw(gw.addr, raw.as_bytes()).await;
        checks.eq(target, r.status, 400);
    }
    let raw = format!(
        "GET /other/x HTTP/1.1\r\nHost: t\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    );
    checks.eq(
        "a plain target",
        send_raw(gw.addr, raw.as_bytes()).await.status,
        200,
    );
    let raw = "GET /other/a b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let r = send_raw(gw.addr, raw.as_bytes()).await;
    checks.eq(
        "a raw space: the path judged is the one forwarded",
        r.echo().path,
        "/other/a%20b".to_string(),
    );
}
