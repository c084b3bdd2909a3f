//! Decision mode (docs/DECISION.md): Portcullis as the authorizer of another proxy. The
//! listener on its own (the forwarded forms, Envoy's path-prefix form, untrusted peers, what
//! an answer carries, the spoofing attempts), then real nginx, Caddy and Envoy in front of the
//! echo upstream, each with the configuration of examples/decision/, on free ports.

mod direct;
mod front;

use std::net::SocketAddr;

use crate::support::*;

/// examples/decision/gateway.toml on this test's addresses, described by `form` (its
/// `forwarded`): the decision listener on `decision`, the test's HS256 secret.
pub(crate) fn config_form(decision: SocketAddr, form: &str) -> String {
    config(decision).replace(
        "forwarded = \"x-original\"",
        &format!("forwarded = \"{form}\""),
    )
}

/// examples/decision/gateway.toml on this test's addresses (nginx's `x-original` form): the
/// decision listener on `decision`, the test's HS256 secret.
pub(crate) fn config(decision: SocketAddr) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/decision/gateway.toml"
    ))
    .unwrap();
    text.replace("127.0.0.1:8080", "{LISTEN}")
        .replace("127.0.0.1:9090", "{ADMIN}")
        .replace("127.0.0.1:9001", "{UPSTREAM}")
        .replace("127.0.0.1:8081", &decision.to_string())
        .replace("demo-only-secret-replace-me-0123456789abcdef", HS_SECRET)
}

pub(crate) const ADMIN_TOKEN: &str = "demo-only-admin-token-replace-me";

/// The gateway of examples/decision/gateway.toml with `forwarded = form`, and its decision
/// listener's address.
pub(crate) async fn start(upstream: SocketAddr, form: &str) -> (Gateway, SocketAddr) {
    let decision: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    start_toml(upstream, decision, &config_form(decision, form)).await
}

/// A gateway on `toml`, once its decision listener at `decision` accepts connections.
pub(crate) async fn start_toml(
    upstream: SocketAddr,
    decision: SocketAddr,
    toml: &str,
) -> (Gateway, SocketAddr) {
    start_files(upstream, decision, toml, &[]).await
}

/// As `start_toml`, with more files beside gateway.toml.
pub(crate) async fn start_files(
    upstream: SocketAddr,
    decision: SocketAddr,
    toml: &str,
    files: &[(&str, &str)],
) -> (Gateway, SocketAddr) {
    let gw = Gateway::start_with_files(toml, upstream, files).await;
    // The decision listener starts beside the proxy's.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(decision).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (gw, decision)
}

/// A token of `sub` with `roles`.
pub(crate) fn token(sub: &str, roles: &[&str]) -> String {
    hs_token(&access_claims(sub, roles))
}

/// A request to `addr` with `Host: <addr>`.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    let raw = raw_request(&addr.to_string(), method, target, headers, "");
    send_raw(addr, raw.as_bytes()).await
}
