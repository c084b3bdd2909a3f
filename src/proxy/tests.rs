//! `request_filter` and `upstream_request_filter` over a real Pingora `Session` on an
//! in-memory stream: the steps on the request as Pingora parsed it, with no network.

use std::io::Cursor;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::{EncodingKey, Header};
use pingora::http::RequestHeader;
use pingora::proxy::{ProxyHttp, Session};

use super::{Gateway, RequestCtx};
use crate::accounts::password::PasswordPool;
use crate::clock::Clock;
use crate::error::{GatewayError, TokenError};
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::services::Services;
use crate::store::MemoryStore;

const SECRET: &str = "unit-secret-0123456789-0123456789-01";
const NOW: u64 = 1_800_000_000;

fn gateway() -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let toml = format!(
        r#"
[server]
listen = ["127.0.0.1:1"]

[tokens]
issuer = "portcullis"
secret = "{SECRET}"

[roles]
viewer = {{ permissions = ["orders:read"] }}

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9"]

[[routes]]
path = "/api/**"
upstream = "app"
roles_any = ["viewer"]
"#
    );
    std::fs::write(&path, toml).unwrap();
    let config = crate::config::load(&path).unwrap().config;
    let clock = Clock::manual(NOW);
    let services = Services {
        runtime: Arc::new(ArcSwap::from_pointee(Runtime::new(config, None, None))),
        store: Arc::new(MemoryStore::new(clock.clone())),
        passwords: PasswordPool::new(1, 1),
        clock,
        metrics: Arc::new(Metrics::new()),
        directory: None,
        mailer: None,
        client_verifier: None,
        in_flight: Arc::new(AtomicUsize::new(0)),
    };
    let gateway = Gateway {
        services: Arc::new(services),
    };
    (gateway, dir)
}

fn token(sub: &str, roles: &[&str]) -> String {
    let claims = serde_json::json!({"iss": "portcullis", "sub": sub, "typ": "access",
        "iat": NOW, "exp": NOW + 600, "roles": roles});
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A session that has read `head` (a request without a body).
async fn session(head: String) -> Session {
    let mut s = Session::new_h1(Box::new(Cursor::new(head.into_bytes())));
    assert!(s.read_request().await.unwrap());
    s
}

#[tokio::test]
async fn a_forwarded_request_carries_the_identity_and_none_of_the_client_s() {
    let (gw, _dir) = gateway();
    let head = format!(
        "GET /api/orders HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nX_User_Id: admin\r\nX-User-Id: root\r\nX-Original-URL: /admin\r\n\r\n",
        token("alice", &["viewer"])
    );
    let mut s = session(head).await;
    let mut ctx = gw.new_ctx();
    assert!(
        !gw.request_filter(&mut s, &mut ctx).await.unwrap(),
        "forwarded"
    );
    assert_eq!(ctx.judged.identity.as_ref().unwrap().subject, "alice");

    let mut upstream: RequestHeader = s.req_header().clone();
    gw.upstream_request_filter(&mut s, &mut upstream, &mut ctx)
        .await
        .unwrap();
    // What the upstream receives: the added headers are outside `headers` until then.
    let sent = upstream.as_owned_parts().headers;
    let values = |name: &str| -> Vec<String> {
        sent.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(values("x-user-id"), ["alice"]);
    assert_eq!(values("x-user-roles"), ["viewer"]);
    assert_eq!(values("x-auth-method"), ["jwt"]);
    for gone in ["x_user_id", "x-original-url", "authorization"] {
        assert!(
            values(gone).is_empty(),
            "{gone} reached the upstream request"
        );
    }
    assert_eq!(values("x-request-id"), [ctx.id.text.clone()]);
    let mut wire = Vec::new();
    upstream.header_to_h1_wire(&mut wire);
    let wire = String::from_utf8(wire).unwrap();
    assert_eq!(wire.matches("x-user-id: alice\r\n").count(), 1, "{wire}");
    assert!(!wire.to_ascii_lowercase().contains("root"), "{wire}");
}

#[tokio::test]
async fn a_refused_request_is_answered_here_with_its_reason() {
    let (gw, _dir) = gateway();
    let cases = [
        ("", GatewayError::MissingCredentials, 401),
        (
            "Authorization: Bearer not.a.jwt\r\n",
            GatewayError::InvalidToken(TokenError::Malformed),
            401,
        ),
    ];
    for (extra, want, status) in cases {
        let head = format!("GET /api/orders HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
        let mut s = session(head).await;
        let mut ctx = gw.new_ctx();
        assert!(
            gw.request_filter(&mut s, &mut ctx).await.unwrap(),
            "answered here"
        );
        assert_eq!(ctx.judged.refusal, Some(want));
        assert_eq!(s.response_written().unwrap().status.as_u16(), status);
    }
    // A caller whose credential verified is kept for the log, refused or not.
    let head = format!(
        "GET /api/orders HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\r\n",
        token("bob", &[])
    );
    let mut s = session(head).await;
    let mut ctx: RequestCtx = gw.new_ctx();
    assert!(gw.request_filter(&mut s, &mut ctx).await.unwrap());
    assert!(matches!(
        ctx.judged.refusal,
        Some(GatewayError::InsufficientScope(_))
    ));
    assert_eq!(ctx.judged.identity.as_ref().unwrap().subject, "bob");
}
