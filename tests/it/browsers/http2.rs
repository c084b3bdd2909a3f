//! HTTP/2 on TLS listeners: ALPN offers `h2` and `http/1.1`, and every rule of SPEC section 3
//! holds for both. The client is the `h2` crate over rustls.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::*;

async fn tls_gateway() -> Gateway {
    let toml = config()
        .server(r#"tls = { cert_file = "{KEYS}/tls_cert.pem", key_file = "{KEYS}/tls_key.pem" }"#);
    Gateway::start_with_files(
        &toml.build(),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await
}

/// A TLS connection offering `alpn`; the protocol the gateway chose.
async fn connect(
    gw: &Gateway,
    alpn: &[&[u8]],
) -> (tokio_rustls::client::TlsStream<TcpStream>, Option<Vec<u8>>) {
    let mut config = crate::tls::client_config();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, chosen)
}

/// An HTTP/2 client on one connection.
async fn h2_client(gw: &Gateway) -> h2::client::SendRequest<Bytes> {
    let (tls, chosen) = connect(gw, &[b"h2", b"http/1.1"]).await;
    assert_eq!(chosen.as_deref(), Some(&b"h2"[..]), "ALPN chose h2");
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn send(
    client: &mut h2::client::SendRequest<Bytes>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let ready = client.clone().ready().await.unwrap();
    *client = ready;
    let (answer, _) = client.send_request(req.body(()).unwrap(), true).unwrap();
    let answer = answer.await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = answer.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Response {
        status,
        headers,
        body: bytes,
    }
}

#[tokio::test]
async fn h2_requests_get_the_same_rules_as_http1() {
    let gw = tls_gateway().await;
    let mut client = h2_client(&gw).await;
    let token = bearer(&alice());

    // Identity: verified, spoofs stripped, the credential not forwarded.
    let r = send(
        &mut client,
        "GET",
        "/api/orders?x=1",
        &[
            ("authorization", &token),
            ("x-user-id", "admin"),
            ("x_user_roles", "admin"),
        ],
    )
    .await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-user-id"], ["u-alice"]);
    assert_eq!(echo.headers["x-user-roles"], ["user"]);
    assert!(!echo.headers.contains_key("x_user_roles"));
    assert!(!echo.headers.contains_key("authorization"));
    assert_eq!(echo.headers["x-forwarded-proto"], ["https"]);
    assert_eq!(echo.headers["x-forwarded-host"], ["localhost"]);
    assert_eq!(echo.query, "x=1");

    let mut checks = Checks::new();
    // Refusals, as JSON.
    let r = send(&mut client, "GET", "/api/orders", &[]).await;
    checks.eq(
        "no credential",
        (r.status, r.json()["error"].clone()),
        (401, "missing_credentials".into()),
    );
    checks.eq(
        "challenge",
        r.header("www-authenticate"),
        Some(r#"Bearer realm="portcullis""#),
    );
    let r = send(
        &mut client,
        "GET",
        "/api/orders",
        &[("authorization", "Bearer nope")],
    )
    .await;
    checks.eq("a bad token", r.status, 401);
    // Path rules: normalised before routing, tricks refused.
    let r = send(&mut client, "GET", "/public/../api/orders", &[]).await;
    checks.eq("dot segments normalised onto /api", r.status, 401);
    let r = send(
        &mut client,
        "GET",
        "/api/orders;x=1",
        &[("authorization", &token)],
    )
    .await;
    checks.eq("a semicolon", r.status, 400);
    let r = send(
        &mut client,
        "GET",
        "/api/a%2Fb",
        &[("authorization", &token)],
    )
    .await;
    checks.eq("an encoded slash", r.status, 400);
    let r = send(&mut client, "GET", "/public//x/./y", &[]).await;
    checks.eq(
        "forwarded normalised",
        r.echo().path,
        "/public/x/y".to_string(),
    );
    // Limits: the burst, then 429 with its headers.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = send(
            &mut client,
            "GET",
            "/limited/x",
            &[("authorization", &token)],
        )
        .await;
        statuses.push(r.status);
        if r.status == 429 {
            checks.that("Retry-After", r.header("retry-after").is_some());
        }
    }
    checks.eq("limits", statuses, vec![200, 200, 200, 429]);
    // The built-in endpoints answer over h2 too.
    let r = send(&mut client, "GET", "/.well-known/jwks.json", &[]).await;
    checks.eq("jwks", r.status, 200);
}

#[tokio::test]
async fn http1_is_still_offered_beside_h2() {
    let gw = tls_gateway().await;
    let (mut tls, chosen) = connect(&gw, &[b"http/1.1"]).await;
    assert_eq!(chosen.as_deref(), Some(&b"http/1.1"[..]));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf).await;
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}

/// A target the gateway rewrites (normalised here) keeps its `:authority` as `Host` and
/// `X-Forwarded-Host`, and several `cookie` fields reach an HTTP/1.1 upstream as one line.
#[tokio::test]
async fn h2_rewritten_targets_keep_their_host_and_cookies_are_one_line() {
    let gw = tls_gateway().await;
    let mut client = h2_client(&gw).await;
    let token = bearer(&alice());
    for path in ["/api//orders", "/api/./orders", "/api/orders"] {
        let r = send(
            &mut client,
            "GET",
            path,
            &[
                ("authorization", &token),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
            ],
        )
        .await;
        let echo = r.echo();
        assert_eq!(echo.path, "/api/orders", "{path}");
        assert_eq!(echo.headers["host"], ["localhost"], "{path}: {echo:?}");
        assert_eq!(echo.headers["x-forwarded-host"], ["localhost"], "{path}");
        assert_eq!(echo.headers["cookie"], ["a=1; b=2"], "{path}");
    }
}
