//! Upstream failures in the refusal shape, and health checks moving targets in and out.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// Public routes to a dead target, a silent one, and a health-checked pair; `{DEAD}`,
/// `{SILENT}`, `{A}` and `{B}` are filled in by `start`.
fn config() -> String {
    toml()
        .without_tokens()
        .without_echo()
        .table(
            r#"[[upstreams]]
name = "dead"
targets = ["127.0.0.1:{DEAD}"]
connect_timeout = "1s""#,
        )
        .table(
            r#"[[upstreams]]
name = "silent"
targets = ["{SILENT}"]
read_timeout = "300ms""#,
        )
        .table(
            r#"[[upstreams]]
name = "pair"
targets = ["{A}", "127.0.0.1:{B}"]
health_check = { path = "/health", interval = "100ms" }"#,
        )
        .route("dead", "/dead", "upstream = \"dead\"\nauth = \"none\"")
        .route(
            "silent",
            "/silent",
            "upstream = \"silent\"\nauth = \"none\"",
        )
        .route("pair", "/pair", "upstream = \"pair\"\nauth = \"none\"")
        .route("rest", "/**", "upstream = \"dead\"\nauth = \"none\"")
        .build()
}

/// A server that answers every request with `tag` (and 200 on /health).
async fn serve_tagged(listener: TcpListener, tag: &'static str) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            loop {
                let Ok(n) = s.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                seen.extend_from_slice(&buf[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{tag}",
                        tag.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// Accepts connections and never answers.
async fn serve_silent(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((s, _)) = listener.accept().await {
        held.push(s);
    }
}

async fn start(extra: &[(&str, String)]) -> Gateway {
    let mut toml = config();
    for (k, v) in extra {
        toml = toml.replace(k, v);
    }
    // {UPSTREAM} is unused here; any address will do.
    Gateway::start(&toml, "127.0.0.1:1".parse().unwrap()).await
}

#[tokio::test]
async fn unreachable_and_slow_upstreams_get_json_502_and_504() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(serve_silent(silent));
    let a = start_echo().await;
    let gw = start(&[
        ("{DEAD}", free_port().to_string()),
        ("{SILENT}", silent_addr.to_string()),
        ("{A}", a.to_string()),
        ("{B}", free_port().to_string()),
    ])
    .await;
    let r = gw.get("/dead", &[]).await;
    let body = r.assert_refusal(502, "bad_gateway");
    assert_eq!(
        body["error_description"], "upstream unreachable",
        "no internal error text"
    );
    let r = gw.get("/silent", &[]).await;
    r.assert_refusal(504, "gateway_timeout");
}

#[tokio::test]
async fn health_checks_take_targets_out_and_bring_them_back() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_addr: SocketAddr = a.local_addr().unwrap();
    tokio::spawn(serve_tagged(a, "A"));
    let b_port = free_port();
    let gw = start(&[
        ("{DEAD}", free_port().to_string()),
        ("{SILENT}", "127.0.0.1:1".to_string()),
        ("{A}", a_addr.to_string()),
        ("{B}", b_port.to_string()),
    ])
    .await;

    // B is down: once its check fails, every request lands on A.
    let all_a = poll_until(&gw, |tags| tags.iter().all(|t| t == "A")).await;
    assert!(all_a, "B never left the rotation");

    // B comes up: it rejoins the rotation.
    let b = TcpListener::bind(("127.0.0.1", b_port)).await.unwrap();
    tokio::spawn(serve_tagged(b, "B"));
    let both = poll_until(&gw, |tags| {
        tags.iter().any(|t| t == "A") && tags.iter().any(|t| t == "B")
    })
    .await;
    assert!(both, "B never came back");
}

/// Sends rounds of 6 requests until `ok` holds for a round (up to ~10 s).
async fn poll_until(gw: &Gateway, ok: impl Fn(&[String]) -> bool) -> bool {
    for _ in 0..100 {
        let mut tags = Vec::new();
        for _ in 0..6 {
            let r = gw.get("/pair", &[]).await;
            tags.push(if r.status == 200 {
                String::from_utf8_lossy(&r.body).to_string()
            } else {
                r.status.to_string()
            });
        }
        if ok(&tags) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
