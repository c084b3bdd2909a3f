//! Hot reload: SIGHUP and file changes swap a fully validated config; a broken one is refused
//! and the running config keeps serving; budgets and in-flight requests carry on.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::login::{argon2id, login, pair};
use crate::support::*;

/// One metered public route; `extra` (more upstreams and routes) goes after it, as text the
/// tests later edit out.
fn config(extra: &str) -> String {
    toml()
        .table("[login]\nrate_limit = \"1000/s\"")
        .table(
            r#"[roles]
viewer = { permissions = ["orders:read"] }"#,
        )
        .table(
            r#"[rate_limits]
per_ip = { rate = "1/h", burst = 3, key = "ip" }"#,
        )
        .route(
            "metered",
            "/metered/**",
            r#"auth = "none"
rate_limit = ["per_ip"]"#,
        )
        .build()
        + extra
}

/// Rewrites the gateway's config (each `(from, to)` replaced) in one atomic rename, sends
/// SIGHUP, and waits for the reload that follows (the file watcher may reload it too; any
/// reload from now on reads the new text). Returns the output up to then.
async fn reload_with(gw: &Gateway, edits: &[(&str, &str)], outcome: &str) -> String {
    let mut text = std::fs::read_to_string(gw.config_path()).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` not in the config");
        text = text.replace(from, to);
    }
    let before = gw.settled_stdout().await.matches(outcome).count();
    let tmp = gw.dir.path().join("gateway.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, gw.config_path()).unwrap();
    gw.sighup();
    gw.wait_for_log(outcome, before + 1).await
}

const RELOADED: &str = "config reloaded";
const REFUSED: &str = "config reload refused: the running config stays";

fn users(extra: &str) -> String {
    format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n{extra}",
        argon2id("alice-pw")
    )
}

#[tokio::test]
async fn sighup_swaps_the_config_and_budgets_survive() {
    let gw = Gateway::start_process(
        &config(""),
        start_echo().await,
        &[("users.toml", &users(""))],
    )
    .await;
    for remaining in ["2", "1"] {
        let r = gw.get("/metered/x", &[]).await;
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    gw.get("/new/x", &[]).await.assert_refusal(404, "not_found");
    let new_route = "rate_limit = [\"per_ip\"]\n\n[[routes]]\nname = \"new\"\npath = \"/new/**\"\nupstream = \"echo\"\nauth = \"none\"\n";
    reload_with(&gw, &[("rate_limit = [\"per_ip\"]\n", new_route)], RELOADED).await;
    assert_eq!(gw.get("/new/x", &[]).await.status, 200);
    // The unchanged policy kept its bucket: one left, not three.
    let r = gw.get("/metered/x", &[]).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    gw.get("/metered/x", &[])
        .await
        .assert_refusal(429, "rate_limited");
    // A changed policy is a new budget.
    reload_with(&gw, &[("burst = 3", "burst = 5")], RELOADED).await;
    assert_eq!(
        gw.get("/metered/x", &[])
            .await
            .header("ratelimit-remaining"),
        Some("4")
    );
}

#[tokio::test]
async fn a_broken_reload_is_refused_and_traffic_goes_on() {
    let gw = Gateway::start_process(
        &config(""),
        start_echo().await,
        &[("users.toml", &users(""))],
    )
    .await;
    assert_eq!(gw.get("/metered/x", &[]).await.status, 200);
    let broken = [
        ("auth = \"none\"", "auth = \"sometimes\""),
        ("threads = 1", "threads = 0"),
    ];
    let out = reload_with(&gw, &broken, REFUSED).await;
    for e in [
        "routes[0].auth: `sometimes` is not one of",
        "server.threads: must be at least 1",
    ] {
        assert!(out.contains(e), "`{e}` not logged:\n{out}");
    }
    assert!(
        out.contains("gateway.toml:"),
        "errors carry their place in the file"
    );
    // Still the old config: the route works and needs no credential.
    for _ in 0..2 {
        assert_eq!(gw.get("/metered/x", &[]).await.status, 200);
    }
    // Fixed again: reloads.
    let fixed = [
        ("auth = \"sometimes\"", "auth = \"none\""),
        ("threads = 0", "threads = 1"),
    ];
    reload_with(&gw, &fixed, RELOADED).await;
}

#[tokio::test]
async fn a_changed_users_file_reloads_by_itself() {
    let gw = Gateway::start_with_files(
        &config(""),
        start_echo().await,
        &[("users.toml", &users(""))],
    )
    .await;
    login(&gw, "bob", "bob-pw")
        .await
        .assert_refusal(401, "invalid_credentials");
    let bob = format!(
        "\n[[users]]\nusername = \"bob\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id("bob-pw")
    );
    std::fs::write(gw.dir.path().join("users.toml"), users(&bob)).unwrap();
    let out = gw.wait_for_log("config reloaded", 1).await;
    assert!(out.contains("file changed"), "{out}");
    pair(&login(&gw, "bob", "bob-pw").await);
    // A listener change is reported as needing a restart.
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    std::fs::write(gw.config_path(), text.replace("threads = 1", "threads = 2")).unwrap();
    let out = gw
        .wait_for_log("takes effect only after a restart", 1)
        .await;
    assert!(out.contains("server.threads"), "{out}");
}

/// An upstream that says when a request has arrived, and answers only when the test says so.
/// A gateway with a `/held` route whose upstream keeps the one request it gets until
/// [`HeldRequest::finishes`]; `start` returns once that request has reached it.
struct HeldRequest {
    gateway: Gateway,
    /// The config text of the held route and its upstream.
    route: String,
    in_flight: tokio::task::JoinHandle<Response>,
    release: tokio::sync::oneshot::Sender<()>,
}

impl HeldRequest {
    async fn start() -> HeldRequest {
        let (held, arrived, release) = held_upstream().await;
        let route = format!(
            "\n[[upstreams]]\nname = \"held\"\ntargets = [\"{held}\"]\n\n[[routes]]\nname = \"held\"\npath = \"/held\"\nupstream = \"held\"\nauth = \"none\"\n"
        );
        let gateway = Gateway::start_process(
            &config(&route),
            start_echo().await,
            &[("users.toml", &users(""))],
        )
        .await;
        let addr = gateway.addr;
        let in_flight = tokio::spawn(async move {
            send_raw(
                addr,
                b"GET /held HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n",
            )
            .await
        });
        arrived.await.unwrap();
        HeldRequest {
            gateway,
            route,
            in_flight,
            release,
        }
    }

    /// Lets the upstream answer; the held request must complete with it. Returns the gateway.
    async fn finishes(self) -> Gateway {
        self.release.send(()).unwrap();
        let r = self.in_flight.await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"held"[..]));
        self.gateway
    }
}

async fn held_upstream() -> (
    SocketAddr,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = arrived_tx.send(());
        let _ = released.await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nheld")
            .await;
    });
    (addr, arrived, release)
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_config_it_started_with() {
    let held = HeldRequest::start().await;
    let (gw, route) = (&held.gateway, held.route.clone());
    // The request is with the upstream: reload to a config without that route.
    reload_with(gw, &[(route.as_str(), "")], RELOADED).await;
    gw.get("/held", &[]).await.assert_refusal(404, "not_found");
    held.finishes().await;
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let held = HeldRequest::start().await;
    let addr = held.gateway.addr;
    held.gateway.signal(libc::SIGTERM);
    // Shutting down: no new connections.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
    let mut gw = held.finishes().await;
    assert!(gw.wait_exit().await.success());
}
