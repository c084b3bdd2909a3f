//! Test support: the real gateway binary and the real echo upstream on ephemeral ports, a raw
//! HTTP/1.1 client (so paths and headers go out exactly as written), and token minting.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../../examples/echo_upstream.rs"]
mod echo_upstream;
pub use echo_upstream::{serve_connection as serve_echo_connection, Echo};

pub const HS_SECRET: &str = "it-secret-0123456789-0123456789-0123456789";

pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

pub fn key(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the echo upstream on an ephemeral port; it lives as long as the test's runtime.
pub async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(echo_upstream::serve(listener));
    addr
}

/// The real `portcullis` binary, killed on drop.
pub struct Gateway {
    pub addr: SocketAddr,
    /// `{ADMIN}` in the config: the admin listener's address.
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Gateway {
    /// Writes `toml` (with `{LISTEN}`, `{UPSTREAM}` and `{KEYS}` replaced) and runs the gateway
    /// on it, waiting until it accepts connections.
    pub async fn start(toml: &str, upstream: SocketAddr) -> Gateway {
        Gateway::start_with_files(toml, upstream, &[]).await
    }

    /// As `start`, with more files (such as users.toml) beside gateway.toml.
    pub async fn start_with_files(
        toml: &str,
        upstream: SocketAddr,
        files: &[(&str, &str)],
    ) -> Gateway {
        Gateway::launch(toml, upstream, files, false).await
    }

    /// As `start_with_files`, with the gateway's clock frozen at now: the test moves it with
    /// `advance_clock`, so that expiries are exact and nothing waits.
    pub async fn start_frozen(toml: &str, upstream: SocketAddr, files: &[(&str, &str)]) -> Gateway {
        Gateway::launch(toml, upstream, files, true).await
    }

    /// As `start`, with stdout a pipe nobody reads (a stalled log consumer) and a log queue of
    /// `queue` lines.
    pub async fn start_with_stalled_stdout(
        toml: &str,
        upstream: SocketAddr,
        queue: usize,
    ) -> Gateway {
        Gateway::launch_with(toml, upstream, &[], false, Some(queue)).await
    }

    async fn launch(
        toml: &str,
        upstream: SocketAddr,
        files: &[(&str, &str)],
        frozen: bool,
    ) -> Gateway {
        Gateway::launch_with(toml, upstream, files, frozen, None).await
    }

    async fn launch_with(
        toml: &str,
        upstream: SocketAddr,
        files: &[(&str, &str)],
        frozen: bool,
        stalled_queue: Option<usize>,
    ) -> Gateway {
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let config = toml
                .replace("{LISTEN}", &addr.to_string())
                .replace("{ADMIN}", &admin.to_string())
                .replace("{UPSTREAM}", &upstream.to_string())
                .replace("{KEYS}", &keys_dir().to_string_lossy());
            let path = dir.path().join("gateway.toml");
            std::fs::write(&path, config).unwrap();
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            if frozen {
                std::fs::write(dir.path().join("clock"), now().to_string()).unwrap();
            }
            let mut cmd = Command::new(binary());
            cmd.args(["run", "-c"])
                .arg(&path)
                .env("PORTCULLIS_LOG", "info")
                .env("PORTCULLIS_TEST_CLOCK_FILE", dir.path().join("clock"))
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
            match stalled_queue {
                // The pipe's reading end stays open in `child.stdout`, never read.
                Some(lines) => cmd
                    .env("PORTCULLIS_LOG_QUEUE", lines.to_string())
                    .stdout(Stdio::piped()),
                None => cmd.stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap()),
            };
            let child = cmd.spawn().unwrap();
            let mut gw = Gateway {
                addr,
                admin,
                dir,
                child,
            };
            if gw.wait_ready().await {
                return gw;
            }
            // The port was taken between probe and bind, or the config was refused.
            let err = gw.stderr();
            assert!(
                err.contains("Address already in use") || err.contains("AddrInUse"),
                "gateway did not start:\n{err}\n{}",
                gw.stdout()
            );
        }
        panic!("gateway did not start after 3 attempts");
    }

    async fn wait_ready(&mut self) -> bool {
        for _ in 0..1000 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Sends SIGHUP: reload the config.
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with a pid this test started and a valid signal number.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits (up to 20 s) for the process to exit.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..2000 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the gateway did not exit");
    }

    /// Waits (up to 10 s) until the gateway's output holds `needle` `times` times.
    pub async fn wait_for_log(&self, needle: &str, times: usize) -> String {
        for _ in 0..1000 {
            let out = self.stdout();
            if out.matches(needle).count() >= times {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("`{needle}` x{times} never logged:\n{}", self.stdout());
    }

    /// The config file, to be rewritten by reload tests.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// A request to the admin listener.
    pub async fn admin_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let raw = raw_request("admin.test", method, path, headers, body);
        send_raw(self.admin, raw.as_bytes()).await
    }

    /// Moves a frozen gateway's clock `secs` on (it reads the file at every use).
    pub fn advance_clock(&self, secs: i64) {
        let now = self.clock_now();
        std::fs::write(self.dir.path().join("clock"), (now + secs).to_string()).unwrap();
    }

    /// The gateway's idea of now.
    pub fn clock_now(&self) -> i64 {
        std::fs::read_to_string(self.dir.path().join("clock"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(now)
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        let mut h = headers.to_vec();
        h.push(("Content-Type", "application/json"));
        self.request("POST", path, &h, &body.to_string()).await
    }

    /// POSTs a form-encoded body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body: String = form_urlencoded_pairs(fields);
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
        .await
    }

    /// The log output once every line of the requests answered so far is written: log lines
    /// leave through a queue, so a test first sends a request of its own and waits for its
    /// access line (the queue is first in, first out).
    pub async fn settled_stdout(&self) -> String {
        let rid = format!("log-sentinel-{}", uuid::Uuid::new_v4());
        self.get("/log-sentinel", &[("X-Request-Id", &rid)]).await;
        self.wait_for_log(&format!(r#""request_id":"{rid}""#), 1)
            .await
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Sends `GET path` with the given extra header lines.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, "").await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let raw = raw_request("gateway.test", method, path, headers, body);
        send_raw(self.addr, raw.as_bytes()).await
    }
}

/// One HTTP/1.1 request, `Connection: close`, with a `Content-Length` when it has a body (or
/// is a POST).
fn raw_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn form_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// What the echo upstream saw (the request was proxied).
    pub fn echo(&self) -> Echo {
        assert_eq!(
            self.status,
            200,
            "not proxied: {}",
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Asserts a SPEC section 3 refusal: status, JSON shape, error code, request id.
    pub fn assert_refusal(&self, status: u16, error: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"], error, "{body}");
        assert!(body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
        let rid = body["request_id"].as_str().unwrap();
        assert_eq!(self.header("x-request-id"), Some(rid));
        body
    }
}

/// Sends raw bytes and reads the whole response (the request asks for `Connection: close`).
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    let fut = async {
        // A listener the gateway starts beside the first (the admin one) may be a moment later.
        let mut tries = 0;
        let mut s = loop {
            match TcpStream::connect(addr).await {
                Ok(s) => break s,
                Err(_) if tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("cannot connect to {addr}: {e}"),
            }
        };
        s.write_all(raw).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the gateway answered within 20 s");
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Response {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a valid Portcullis access token for `sub`, issued now for an hour.
pub fn access_claims(sub: &str, roles: &[&str]) -> Map<String, Value> {
    let now = now();
    json!({
        "iss": "portcullis", "aud": "api", "sub": sub, "typ": "access",
        "iat": now, "nbf": now, "exp": now + 3600, "jti": uuid::Uuid::new_v4().to_string(),
        "roles": roles,
    })
    .as_object()
    .unwrap()
    .clone()
}

pub fn sign(
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

/// An HS256 Portcullis access token.
pub fn hs_token(claims: &Map<String, Value>) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        None,
        claims,
    )
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Encodes a JWT by hand: for headers and algorithms no library will produce.
pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The gateway binary the tests run: this build's, or `PORTCULLIS_TEST_BIN` (to show that a
/// test fails on another build, such as the one before a fix).
pub fn binary() -> PathBuf {
    std::env::var_os("PORTCULLIS_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")))
}

/// Runs `portcullis <args>` to completion.
pub fn cli(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A real `redis-server` on a free port, nothing kept on disk; killed on drop.
pub struct RedisServer {
    pub port: u16,
    /// TLS only (`rediss://`), with the test CA's localhost certificate.
    tls: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        RedisServer::launch(false).await
    }

    pub async fn start_tls() -> RedisServer {
        RedisServer::launch(true).await
    }

    async fn launch(tls: bool) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            tls,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn tls_args(&self) -> Vec<String> {
        if !self.tls {
            return vec![];
        }
        let k = |f: &str| keys_dir().join(f).to_string_lossy().to_string();
        vec!["--tls".into(), "--cacert".into(), k("ca_cert.pem")]
    }

    /// Starts it again (after `kill`) on the same port, empty.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let k = |f: &str| keys_dir().join(f).to_string_lossy().to_string();
        let listen: Vec<String> = if self.tls {
            [
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &k("tls_cert.pem"),
                "--tls-key-file",
                &k("tls_key.pem"),
                "--tls-ca-cert-file",
                &k("ca_cert.pem"),
                "--tls-auth-clients",
                "no",
            ]
            .map(String::from)
            .to_vec()
        } else {
            vec!["--port".into(), port.clone()]
        };
        let child = Command::new("redis-server")
            .args(&listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        for _ in 0..500 {
            if self.cli(&["PING"]) == "PONG" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not start on {}", self.port);
    }

    /// SIGKILL: gone at once, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs one command through redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(self.tls_args())
            .args(args)
            .output()
            .expect("redis-cli is installed with redis-server");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node Redis Cluster (no replicas) on free ports; killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
}

pub struct RedisNode {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            nodes.push(RedisNode {
                port,
                _dir: dir,
                child,
            });
        }
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            wait_for_pong(node.port).await;
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for _ in 0..500 {
            let ok = cluster.nodes.iter().all(|n| {
                let info = Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok")
            });
            if ok {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the cluster did not become ok");
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }
}

async fn wait_for_pong(port: u16) {
    for _ in 0..500 {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server did not start on {port}");
}
