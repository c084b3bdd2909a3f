//! Test support: the gateway (in-process, or the real binary) and the real echo upstream on
//! ephemeral ports, a raw HTTP/1.1 client (so paths and headers go out exactly as written),
//! token minting, real `redis-server`s.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub mod certs;
mod checks;
mod config;
pub mod dpop;
#[path = "../../../examples/echo_upstream.rs"]
mod echo_upstream;
mod gateway;
mod logs;
mod postgres;
mod redis;
mod smtp;

pub use checks::Checks;
pub use config::{toml, Toml};
pub use echo_upstream::{serve_connection as serve_echo_connection, Echo};
pub use gateway::Gateway;
pub use postgres::PgDatabase;
pub use redis::{RedisCluster, RedisServer};
pub use smtp::{token_in, SmtpSink};

pub const HS_SECRET: &str = "it-secret-0123456789-0123456789-0123456789";

pub fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

pub fn key(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap()
}

/// A port nobody listens on right now, and never handed out before in this process: two
/// listeners of one test (a gateway's proxy, admin and decision listeners) never get the same
/// port, as the kernel's next ephemeral port may be the one just released.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Starts the echo upstream on an ephemeral port; it lives as long as the test's runtime.
pub async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(echo_upstream::serve(listener));
    addr
}

/// One HTTP/1.1 request, `Connection: close`, with a `Content-Length` when it has a body (or
/// is a POST).
pub fn raw_request(
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
        // A gateway that refuses early (413 on a long body) may close before the body is all
        // sent: the answer it wrote is still there to read, as curl reads it.
        let _ = s.write_all(raw).await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the gateway answered within 20 s");
    parse_response(&buf)
}

pub(crate) fn parse_response(buf: &[u8]) -> Response {
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

/// `secs` as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`), as the gateway writes times.
pub fn rfc3339(secs: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
