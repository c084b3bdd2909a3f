//! The database away: at start (the gateway does not start, and says why), and later
//! (logins and self-service answer 503, proxied traffic with known keys and tokens goes on,
//! and it all comes back by itself). The database is a real PostgreSQL behind a TCP relay
//! the test cuts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;
use crate::login::{login, pair};

/// A TCP relay to PostgreSQL on a fixed local port: `cut` drops every connection and
/// refuses new ones until `restore`. It runs on a runtime of its own: the test's is busy
/// while an in-process gateway is built.
pub(super) struct Relay {
    addr: SocketAddr,
    target: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    running: Mutex<Option<Running>>,
}

/// The accept loop and the pipes it started.
type Running = (JoinHandle<()>, Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Relay {
    pub(super) async fn start(target: SocketAddr) -> Relay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let relay = Relay {
            addr,
            target,
            runtime: Some(runtime),
            running: Mutex::new(None),
        };
        relay.serve(std_listener);
        relay
    }

    fn serve(&self, listener: std::net::TcpListener) {
        let runtime = self.runtime.as_ref().expect("running until dropped");
        let _entered = runtime.enter();
        let listener = TcpListener::from_std(listener).unwrap();
        let target = self.target;
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = pipes.clone();
        let accept = runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().unwrap().push(pipe);
            }
        });
        *self.running.lock().unwrap() = Some((accept, pipes));
    }

    pub(super) fn cut(&self) {
        if let Some((accept, pipes)) = self.running.lock().unwrap().take() {
            accept.abort();
            for p in pipes.lock().unwrap().drain(..) {
                p.abort();
            }
        }
    }

    pub(super) fn restore(&self) {
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.serve(listener);
    }
}

pub(super) fn postgres_addr(db: &PgDatabase) -> SocketAddr {
    let url = url::Url::parse(&db.url()).unwrap();
    let host = url.host_str().unwrap();
    let port = url.port().unwrap_or(5432);
    format!("{host}:{port}").parse().unwrap()
}

/// The database's URL through the relay.
pub(super) fn through(db: &PgDatabase, relay: &Relay) -> String {
    let mut url = url::Url::parse(&db.url()).unwrap();
    url.set_port(Some(relay.addr.port())).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.to_string()
}

#[tokio::test]
async fn a_database_lost_later_fails_logins_with_503_and_comes_back() {
    let db = PgDatabase::create().await;
    let relay = Relay::start(postgres_addr(&db)).await;
    let toml = config(&Backend::Sqlite, "")
        .build()
        .replace("sqlite://users.db", &through(&db, &relay));
    let gw = Gateway::start(&toml, start_echo().await).await;
    let (access, _) = signed_up(&gw, "uma").await;
    let key = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "ci"})),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();

    relay.cut();
    let mut checks = Checks::new();
    let r = login(&gw, "uma", PASSWORD).await;
    checks.eq(
        "login",
        (r.status, r.json()["error"].clone()),
        (503, json!("unavailable")),
    );
    let r = register(&gw, "vera", PASSWORD).await;
    checks.eq("register", r.status, 503);
    let r = me(&gw, "GET", "/auth/api-keys", &access, None).await;
    checks.eq("self-service", r.status, 503);
    let r = admin(&gw, "GET", "/admin/users", None).await;
    checks.eq("admin API", r.status, 503);
    // The proxy never asked the database: known keys and tokens work on.
    checks.eq("a known key", with_key(&gw, &key).await.status, 200);
    checks.eq("a token", with_token(&gw, &access).await.status, 200);
    drop(checks);

    relay.restore();
    let mut back = false;
    for _ in 0..200 {
        if login(&gw, "uma", PASSWORD).await.status == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "logins came back by themselves");
    pair(&login(&gw, "uma", PASSWORD).await);
    let logs = gw.settled_stdout().await + &gw.stderr();
    assert!(!logs.contains(DB_KEY));
}

#[tokio::test]
async fn a_database_down_at_start_is_a_startup_error() {
    let port = free_port();
    let toml = config(&Backend::Sqlite, "")
        .build()
        .replace(
            "sqlite://users.db",
            &format!("postgres://postgres@127.0.0.1:{port}/none"),
        )
        .replace("{LISTEN}", &format!("127.0.0.1:{}", free_port()))
        .replace("{ADMIN}", &format!("127.0.0.1:{}", free_port()))
        .replace("{UPSTREAM}", "127.0.0.1:9");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(binary())
        .args(["run", "-c", &path.to_string_lossy()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("users_db: database unavailable"), "{err}");
    assert!(!err.contains(DB_KEY));
}
