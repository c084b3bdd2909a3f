//! `portcullis check` and `portcullis token`, as an operator runs them.

use std::path::Path;

use crate::standard;
use crate::support::*;

/// Writes `toml` as gateway.toml in `dir`, placeholders filled; its path.
pub(crate) fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("gateway.toml");
    let toml = toml
        .replace("{KEYS}", &keys_dir().to_string_lossy())
        .replace("{LISTEN}", "127.0.0.1:8080")
        .replace("{UPSTREAM}", "127.0.0.1:9001");
    std::fs::write(&path, toml).unwrap();
    path.to_string_lossy().to_string()
}

#[test]
fn check_passes_on_every_shipped_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut configs = vec![root.join("gateway.toml")];
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            configs.push(path);
        }
    }
    for cfg in configs {
        let out = cli(&["check", "-c", &cfg.to_string_lossy()], None);
        assert!(
            out.status.success(),
            "{}: {}",
            cfg.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "one-line summary: {stdout}");
    }
}

#[test]
fn check_reports_every_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "${PORTCULLIS_IT_UNSET_VARIABLE}"

[[tokens.trusted_issuers]]
issuer = "idp"
public_key_file = "{KEYS}/hs_is_not_a_pem.txt"

[[tokens.trusted_issuers]]
issuer = "idp2"
public_key_file = "{KEYS}/rsa_public.pem"
algorithms = ["ES256"]

[roles]
a = { inherits = ["b"] }
b = { inherits = ["a"] }

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]
colour = "blue"

[[routes]]
path = "/x"
upstream = "ghost"
roles_any = ["nobody"]
"#;
    let path = write_config(dir.path(), bad);
    let out = cli(&["check", "-c", &path], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expect = [
        "gateway.toml:6:10: tokens.secret: environment variable `PORTCULLIS_IT_UNSET_VARIABLE` is not set",
        "gateway.toml:10:19: tokens.trusted_issuers[0].public_key_file: cannot read",
        "tokens.trusted_issuers[1].algorithms: ES256 does not fit the key",
        "gateway.toml:18:5: roles.a: role `a` inherits itself (a cycle)",
        "gateway.toml:19:5: roles.b: role `b` inherits itself (a cycle)",
        "gateway.toml:24:1: upstreams[0].colour: unknown field `colour`",
        "gateway.toml:28:12: routes[0].upstream: unknown upstream `ghost`",
        "gateway.toml:29:14: routes[0].roles_any[0]: unknown role `nobody`",
    ];
    assert!(
        !stderr.contains("needs at least 32 bytes"),
        "an unset variable is reported once:\n{stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
    assert!(
        stderr.lines().all(|l| l.contains("gateway.toml:")),
        "every line has a position:\n{stderr}"
    );
}

#[test]
fn check_refuses_wrong_key_types_and_short_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
algorithm = "RS256"
private_key_file = "{KEYS}/ec256_private.pem"

[[tokens.trusted_issuers]]
issuer = "short"
secret = "only-16-bytes-xx"
"#;
    let out = cli(&["check", "-c", &write_config(dir.path(), bad)], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("gateway.toml:7:20: tokens.private_key_file: the file holds no an RSA key")
            || stderr.contains("tokens.private_key_file: the file holds no"),
        "{stderr}"
    );
    assert!(stderr.contains("gateway.toml:11:10: tokens.trusted_issuers[0].secret: an HS secret needs at least 32 bytes"), "{stderr}");
}

#[test]
fn check_warns_on_shadowed_routes_and_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"[server]
listen = ["127.0.0.1:8080"]

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/api/**"
upstream = "app"
auth = "none"

[[routes]]
path = "/api/users/{id}"
upstream = "app"
auth = "none"
"#;
    let out = cli(&["check", "-c", &write_config(dir.path(), toml)], None);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "gateway.toml:14:8: routes[1].path: route `/api/users/{id}` is shadowed by routes[0]"
        ),
        "{stderr}"
    );
}

#[test]
fn run_refuses_to_start_on_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[server]\nlisten = [\"not-an-address\"]\n");
    let out = cli(&["run", "-c", &path], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("server.listen[0]: `not-an-address` is not an IP:port address"));
}

#[tokio::test]
async fn minted_tokens_are_accepted_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &standard().build());
    let out = cli(
        &[
            "token",
            "-c",
            &path,
            "--sub",
            "svc-7",
            "--roles",
            "user,auditor",
            "--ttl",
            "1h",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let echo = gw
        .get("/api/audit", &[("Authorization", &bearer(&token))])
        .await
        .echo();
    assert_eq!(echo.headers["x-user-id"], ["svc-7"]);
    assert_eq!(echo.headers["x-user-roles"], ["auditor,user,viewer"]);
    // The ttl is honoured.
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["typ"], "access");
}

/// A gateway started with `run -d`: the process it forked, killed (SIGKILL) on drop.
struct Daemon {
    pid_file: std::path::PathBuf,
}

impl Daemon {
    fn pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Running: it exists and is not a zombie waiting for init to reap it.
    fn alive(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        matches!(state, Some(s) if s != "Z" && s != "X")
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) with a pid this test's gateway wrote and a valid signal.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// `run -d` (the systemd unit of docs/OPERATIONS.md): the gateway forks into the background, and what owns
/// threads (the password workers, the log writer) must be started in the child.
#[tokio::test]
async fn run_in_the_background_serves_logins_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let upstream = start_echo().await;
    let users = format!(
        "[[users]]\nusername = \"dora\"\npassword_hash = \"{}\"\nroles = [\"user\"]\n",
        crate::login::argon2id("dora-daemon-pw")
    );
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    let config = standard()
        .table("[login]\nrate_limit = \"100/s\"")
        .build()
        .replace("{KEYS}", &keys_dir().to_string_lossy())
        .replace("{LISTEN}", &format!("127.0.0.1:{port}"))
        .replace("{UPSTREAM}", &upstream.to_string());
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let daemon = Daemon {
        pid_file: dir.path().join("portcullis.pid"),
    };
    let status = std::process::Command::new(binary())
        .args(["run", "-d", "-c"])
        .arg(&path)
        .arg("--pid-file")
        .arg(&daemon.pid_file)
        .arg("--upgrade-sock")
        .arg(dir.path().join("upgrade.sock"))
        .env("PORTCULLIS_LOG", "info")
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "the foreground process exits once forked");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..1000 {
        if daemon.alive() && tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(up, "the daemon never listened");

    let body = r#"{"username": "dora", "password": "dora-daemon-pw"}"#;
    let raw = format!(
        "POST /auth/login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        send_raw(addr, raw.as_bytes()),
    )
    .await
    .expect("a login to the daemon is answered (its password threads exist)");
    assert_eq!(
        answered.status,
        200,
        "{}",
        String::from_utf8_lossy(&answered.body)
    );

    // Its log lines arrive (the log writer's thread exists too), then SIGTERM stops it.
    let log = dir.path().join("stdout.log");
    let mut logged = false;
    for _ in 0..500 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(r#""event":"login""#) && text.contains(r#""result":"success""#) {
            logged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        logged,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    daemon.signal(libc::SIGTERM);
    for _ in 0..1000 {
        if !daemon.alive() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the daemon did not stop on SIGTERM");
}
