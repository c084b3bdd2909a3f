//! Garbage at every endpoint (issue 26, point 3): every built-in endpoint of SPEC section 4,
//! 7, 7.1 and 10, every admin endpoint of sections 5 and 7, and the decision listener's
//! described request (section 9) get malformed JSON, wrong types, empty and huge fields, NUL
//! bytes, invalid UTF-8, duplicated keys, wrong content types and a nesting bomb. Each answer
//! must be the status the SPEC gives for that case (a 4xx, or the endpoint's answer to a
//! well-formed but wrong value), come within [`ANSWER_WITHIN`], be a JSON refusal of section
//! 3's shape and echo nothing; afterwards the gateway (a real process) still serves, and its
//! logs hold no panic, no ERROR line and none of the garbage.
//!
//! `kinds.rs` makes the garbage; `table.rs` lists the endpoints that take a body and runs the
//! proxy's and admin listener's table, `queries.rs` adds their queries, paths and typed
//! fields; `listeners.rs` runs the provider's endpoints and the decision listener.

mod kinds;
mod listeners;
mod queries;
mod table;

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
pub(crate) use kinds::Kind;

/// Every answer comes within this; a hang fails the case.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// In every garbage value that is not a name: never in a log line or an answer.
pub(crate) const MARKER: &str = "gbgMARKER7f3a";
/// A secret-looking value (shaped like a key): never in a log line or an answer.
pub(crate) const SECRET: &str = "pcs_gbgSECRET_0123456789abcdefABCDEF";

/// Which listener of the gateway a probe goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Door {
    Proxy,
    Admin,
    /// The decision listener, at this address.
    Decision(SocketAddr),
}

/// One request of the table and the statuses the SPEC allows for it.
#[derive(Debug)]
pub(crate) struct Probe {
    pub case: String,
    pub door: Door,
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub expect: Vec<u16>,
    /// A request Pingora cannot parse (a control byte in a header): Pingora answers it with
    /// its own 400 before the gateway sees it, with no JSON body.
    pub unparsable: bool,
}

impl Probe {
    pub(crate) fn new(case: String, door: Door, method: &'static str, target: &str) -> Probe {
        Probe {
            case,
            door,
            method,
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            expect: Vec::new(),
            unparsable: false,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Probe {
        self.headers.push((name, value.to_string()));
        self
    }

    pub(crate) fn expect(mut self, statuses: &[u16]) -> Probe {
        self.expect = statuses.to_vec();
        self
    }

    /// Refused by Pingora's parser: 400, whatever the body.
    pub(crate) fn refused_by_pingora(mut self) -> Probe {
        self.unparsable = true;
        self.expect(&[400])
    }

    /// The request as sent: `raw_request`'s head, the body's bytes as they are (they need
    /// not be UTF-8: the head is made with a filler of the same length, then replaced).
    fn raw(&self, host: &str) -> Vec<u8> {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let filler = " ".repeat(self.body.len());
        let mut raw = raw_request(host, self.method, &self.target, &headers, &filler).into_bytes();
        raw.truncate(raw.len() - self.body.len());
        raw.extend_from_slice(&self.body);
        raw
    }
}

/// One exchange: the answer, or why there is none (a hang, or a dropped connection: the
/// gateway panicked or gave up on the request). `send_raw` panics on a connection that
/// yields no response head; that panic is caught here as the task's.
async fn exchange(addr: SocketAddr, raw: Vec<u8>) -> Result<Response, String> {
    let sent =
        tokio::spawn(
            async move { tokio::time::timeout(ANSWER_WITHIN, send_raw(addr, &raw)).await },
        );
    match sent.await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(format!("no answer within {ANSWER_WITHIN:?}")),
        Err(_) => Err("no HTTP answer (connection dropped)".into()),
    }
}

/// Runs every probe against `gw`, recording each deviation; the number of probes sent.
pub(crate) async fn send_all(gw: &Gateway, probes: Vec<Probe>, checks: &mut Checks) -> usize {
    let count = probes.len();
    for p in probes {
        let (addr, host) = match p.door {
            Door::Proxy => (gw.addr, "gateway.test".to_string()),
            Door::Admin => (gw.admin, "admin.test".to_string()),
            Door::Decision(addr) => (addr, addr.to_string()),
        };
        match exchange(addr, p.raw(&host)).await {
            Ok(r) => judge(&p, &r, checks),
            Err(why) => checks.that(format!("{}: {why}", p.case), false),
        }
    }
    count
}

/// The answer is an allowed status; a refusal is section 3's JSON and echoes nothing (an
/// accepted value may be shown back: a created user's subject).
fn judge(p: &Probe, r: &Response, checks: &mut Checks) {
    let body = String::from_utf8_lossy(&r.body);
    let case = format!("{} -> {} {}", p.case, r.status, snippet(&body));
    checks.that(
        format!("{case}: want one of {:?}", p.expect),
        p.expect.contains(&r.status),
    );
    checks.that(format!("{case}: a 5xx"), r.status < 500);
    if r.status >= 400 && !p.unparsable {
        checks.that(format!("{case}: echoes the garbage"), !echoes(&body));
        checks.that(format!("{case}: not a JSON refusal"), is_refusal(r));
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(160).collect()
}

fn echoes(text: &str) -> bool {
    text.contains(MARKER) || text.contains(SECRET)
}

/// `{"error", "error_description", "request_id"}` as `application/json`, the request id
/// also in `X-Request-Id`.
fn is_refusal(r: &Response) -> bool {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
        return false;
    };
    let text = |k: &str| body[k].as_str().is_some_and(|v| !v.is_empty());
    r.header("content-type") == Some("application/json")
        && text("error")
        && text("error_description")
        && text("request_id")
        && r.header("x-request-id") == body["request_id"].as_str()
}

/// After the table: the gateway still answers (health and a well-formed request), and its
/// logs (stdout and stderr of the process) hold no panic, no ERROR line, no garbage.
pub(crate) async fn still_well(gw: &Gateway, checks: &mut Checks) {
    let health = gw.admin_request("GET", "/healthz", &[], "").await;
    checks.eq("alive: /healthz", health.status, 200);
    let logs = format!("{}\n{}", gw.settled_stdout().await, gw.stderr());
    for line in logs.lines() {
        let bad = line.contains(r#""level":"ERROR""#)
            || line.contains("panicked")
            || line.contains("RUST_BACKTRACE")
            || echoes(line);
        checks.that(format!("log line: {}", snippet(line)), !bad);
    }
}
