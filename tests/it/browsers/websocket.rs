//! WebSockets through the whole pipeline, with a real WebSocket upstream and client
//! (tokio-tungstenite): the upgrade authenticated by Bearer, API key or cookie, the identity
//! headers on the upstream's handshake, frames both ways; a refused upgrade answered with the
//! refusal JSON, never tunnelled, and the connection closed after it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response as WsResponse};
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// A WebSocket server: its first message is the handshake's headers (as JSON), then it
/// echoes every frame. Counts the connections it accepts.
// tungstenite's handshake callback returns its HTTP response as the error.
#[allow(clippy::result_large_err)]
async fn start_ws_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let seen = Arc::new(Mutex::new(BTreeMap::<String, Vec<String>>::new()));
                let record = seen.clone();
                let callback = move |req: &Request, resp: WsResponse| {
                    let mut headers = record.lock().unwrap();
                    for (k, v) in req.headers() {
                        headers
                            .entry(k.as_str().to_string())
                            .or_default()
                            .push(v.to_str().unwrap_or("?").to_string());
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let first = serde_json::to_string(&*seen.lock().unwrap()).unwrap();
                if ws.send(Message::text(first)).await.is_err() {
                    return;
                }
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        return;
                    }
                    let data = msg.is_text() || msg.is_binary();
                    if data && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn gateway(upstream: SocketAddr) -> Gateway {
    let toml = config()
        .without_echo()
        .table("[[upstreams]]\nname = \"echo\"\ntargets = [\"{UPSTREAM}\"]")
        .route("ws", "/ws/**", "roles_any = [\"user\"]");
    Gateway::start_with_files(&toml.build(), upstream, &[("users.toml", &users())]).await
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A WebSocket handshake through the gateway with these extra headers.
async fn connect(gw: &Gateway, headers: &[(&str, &str)]) -> Result<Ws, Response> {
    let mut req = "ws://gateway.test/ws/chat".into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(Response {
            status: resp.status().as_u16(),
            headers: resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: resp.body().clone().unwrap_or_default(),
        }),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// The upstream's first message: the headers of the handshake it received.
async fn handshake_headers(ws: &mut Ws) -> BTreeMap<String, Vec<String>> {
    let first = ws.next().await.unwrap().unwrap();
    serde_json::from_str(first.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn an_authenticated_upgrade_carries_the_identity_and_frames_flow_both_ways() {
    let (upstream, _) = start_ws_upstream().await;
    let gw = gateway(upstream).await;
    let token = bearer(&alice());
    let mut ws = connect(&gw, &[("Authorization", &token), ("X-User-Id", "admin")])
        .await
        .unwrap_or_else(|r| panic!("refused: {}", String::from_utf8_lossy(&r.body)));
    let seen = handshake_headers(&mut ws).await;
    eprintln!("WEBSOCKET the upstream's handshake: {seen:?}");
    assert_eq!(
        seen["x-user-id"],
        ["u-alice"],
        "the identity, once: {seen:?}"
    );
    assert_eq!(seen["x-user-roles"], ["user"]);
    assert_eq!(seen["x-auth-method"], ["jwt"]);
    assert!(seen.contains_key("x-request-id"));
    assert!(
        !seen.contains_key("authorization"),
        "the token is not forwarded"
    );
    assert_eq!(seen["upgrade"], ["websocket"]);
    for i in 0..3 {
        let text = format!("frame {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        eprintln!("WEBSOCKET sent {text:?}, the upstream echoed {back:?}");
        assert_eq!(back.to_text().unwrap(), text);
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data().as_ref(),
        &[0u8, 1, 2, 255]
    );
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn an_upgrade_by_cookie_needs_a_known_origin() {
    let (upstream, _) = start_ws_upstream().await;
    let gw = gateway(upstream).await;
    let cookie = format!("pc_session={}", alice());
    // Cross-site WebSocket hijacking: a page elsewhere opening the socket with the cookie.
    let refused = connect(&gw, &[("Cookie", &cookie), ("Origin", "https://evil.test")])
        .await
        .expect_err("refused");
    refused.assert_refusal(403, "invalid_origin");
    let mut ws = connect(&gw, &[("Cookie", &cookie), ("Origin", APP)])
        .await
        .expect("an allowed origin's page");
    assert_eq!(
        handshake_headers(&mut ws).await["x-auth-method"],
        ["cookie"]
    );
}

#[tokio::test]
async fn a_refused_upgrade_is_answered_and_nothing_after_it_reaches_the_upstream() {
    let (upstream, accepted) = start_ws_upstream().await;
    let gw = gateway(upstream).await;
    // No credential, then at once what a client might send next on the same connection: a
    // frame's bytes, or a well-formed request to a public route. None of it may reach the
    // upstream: the connection ends with the refusal.
    let upgrade = "GET /ws/chat HTTP/1.1\r\nHost: gateway.test\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    for after in [
        "\u{81}\u{85}abcdhello",
        "GET /public/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n",
    ] {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        tcp.write_all(format!("{upgrade}{after}").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tcp.read_to_end(&mut answer),
        )
        .await
        .expect("the gateway closes the connection after the refusal")
        .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(text.contains(r#""error":"missing_credentials""#), "{text}");
        assert_eq!(text.matches("HTTP/1.1").count(), 1, "one answer: {text}");
    }
    // A wrong token: refused the same way, with the JSON body.
    let refused = connect(&gw, &[("Authorization", "Bearer nope")])
        .await
        .expect_err("refused");
    refused.assert_refusal(401, "invalid_token");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the upstream saw nothing"
    );
}
