//! The access line: one a request, the hottest log line there is, so it is written straight
//! into a reused buffer and queued, not made into a `tracing` event. Its fields are known, and
//! tracing's JSON formatter (a visitor per field, serde's escaping, `Display` through
//! `fmt::Write`) cost ~24,000 instructions a request, as much as Pingora's whole request.
//!
//! The line is the one `tracing` wrote, field for field (docs/OPERATIONS.md): with
//! `--log-format json`, `{"timestamp":…,"level":"INFO",<fields>,"target":"access"}`; with
//! `text`, `<timestamp>  INFO access: name=value …`. Whether it is written at all is what
//! `PORTCULLIS_LOG` says of target `access` at `info`, read once at start-up ([`enable`]).
//! Where `logs::init` did not run (the gateway embedded, as the integration tests run it
//! in-process under a subscriber of their own), the line is a `tracing` event as before.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LogFormat;

/// One request's access line.
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub client_ip: Option<IpAddr>,
    pub subject: &'a str,
    pub auth_method: &'a str,
    pub listener: Listener,
}

/// Which listener answered: the proxy, or the decision listener (the line's `decision` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Proxy,
    Decision,
}

const EVENT: u8 = 0;
const OFF: u8 = 1;
const JSON: u8 = 2;
const TEXT: u8 = 3;
static FORMAT: AtomicU8 = AtomicU8::new(EVENT);

/// Turns the access line on (in `format`) or off, as the log's filter has it.
pub(super) fn enable(format: Option<LogFormat>) {
    let f = match format {
        None => OFF,
        Some(LogFormat::Json) => JSON,
        Some(LogFormat::Text) => TEXT,
    };
    FORMAT.store(f, Ordering::Relaxed);
}

/// Writes the line, when access lines are on.
pub fn write(line: &AccessLine<'_>) {
    let format = FORMAT.load(Ordering::Relaxed);
    match format {
        OFF => return,
        EVENT => return event(line),
        _ => {}
    }
    thread_local! {
        static BUF: RefCell<(Vec<u8>, Stamp)> = RefCell::new((Vec::with_capacity(512), Stamp::default()));
    }
    BUF.with_borrow_mut(|(buf, stamp)| {
        buf.clear();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match format {
            JSON => json(buf, stamp, now, line),
            _ => text(buf, stamp, now, line),
        }
        super::write_line(buf);
    });
}

fn json(buf: &mut Vec<u8>, stamp: &mut Stamp, now: Duration, l: &AccessLine<'_>) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    stamp.write(buf, now);
    buf.extend_from_slice(b"\",\"level\":\"INFO\",\"request_id\":");
    json_str(buf, l.request_id);
    for (name, value) in [
        (&b",\"method\":"[..], l.method),
        (b",\"path\":", l.path),
        (b",\"route\":", l.route),
    ] {
        buf.extend_from_slice(name);
        json_str(buf, value);
    }
    buf.extend_from_slice(b",\"status\":");
    buf.extend_from_slice(itoa::Buffer::new().format(l.status).as_bytes());
    buf.extend_from_slice(b",\"latency_ms\":");
    millis(buf, l.latency);
    buf.extend_from_slice(b",\"client_ip\":\"");
    ip(buf, l.client_ip);
    buf.extend_from_slice(b"\",\"subject\":");
    json_str(buf, l.subject);
    buf.extend_from_slice(b",\"auth_method\":");
    json_str(buf, l.auth_method);
    buf.extend_from_slice(match l.listener {
        Listener::Decision => b",\"decision\":true,\"target\":\"access\"}\n",
        Listener::Proxy => b",\"decision\":false,\"target\":\"access\"}\n",
    });
}

/// The line as a `tracing` event, for a subscriber other than ours.
fn event(l: &AccessLine<'_>) {
    tracing::info!(
        target: "access",
        request_id = l.request_id,
        method = l.method,
        path = l.path,
        route = l.route,
        status = l.status,
        latency_ms = l.latency.as_secs_f64() * 1000.0,
        client_ip = l.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        subject = l.subject,
        auth_method = l.auth_method,
        decision = l.listener == Listener::Decision,
    );
}

/// tracing's text format: `Display` fields bare, string fields quoted as `Debug` quotes them.
fn text(buf: &mut Vec<u8>, stamp: &mut Stamp, now: Duration, l: &AccessLine<'_>) {
    stamp.write(buf, now);
    let _ = write!(
        buf,
        "  INFO access: request_id={} method={}",
        l.request_id, l.method
    );
    let _ = write!(
        buf,
        " path={:?} route={:?} status={}",
        l.path, l.route, l.status
    );
    buf.extend_from_slice(b" latency_ms=");
    millis(buf, l.latency);
    buf.extend_from_slice(b" client_ip=");
    ip(buf, l.client_ip);
    let _ = writeln!(
        buf,
        " subject={:?} auth_method={:?} decision={}",
        l.subject,
        l.auth_method,
        l.listener == Listener::Decision
    );
}

/// A JSON string: as is when nothing in it needs escaping (the common case), else serde's.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Writing a `&str` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// Whether any byte is a control character, `"` or `\\`: eight bytes at a time (a request id
/// is 36), the rest one by one.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is zero (exact as a yes/no answer).
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
        // A byte below 0x20 (bytes of 0x80 and up, UTF-8's, are excluded by `!x`).
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0;
        if control
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Milliseconds with their fraction to the nanosecond, trailing zeros dropped: `12.5`, `3`.
fn millis(buf: &mut Vec<u8>, d: Duration) {
    let nanos = d.as_nanos();
    buf.extend_from_slice(itoa::Buffer::new().format(nanos / 1_000_000).as_bytes());
    let frac = six_digits((nanos % 1_000_000) as u32);
    let kept = frac
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |last| last + 1);
    if kept > 0 {
        buf.push(b'.');
        buf.extend_from_slice(&frac[..kept]);
    }
}

/// `n` (below 1,000,000) as six digits, zero-padded.
fn six_digits(mut n: u32) -> [u8; 6] {
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits
}

fn ip(buf: &mut Vec<u8>, ip: Option<IpAddr>) {
    if let Some(ip) = ip {
        crate::headers::push_ip(buf, ip);
    }
}

/// RFC 3339 UTC to the microsecond, as tracing writes it: `2026-12-07T05:38:54.609202Z`. The
/// date and time of day are made once a second.
#[derive(Default)]
struct Stamp {
    second: u64,
    text: [u8; 19],
}

impl Stamp {
    fn write(&mut self, buf: &mut Vec<u8>, now: Duration) {
        let second = now.as_secs();
        if second != self.second || self.text[0] == 0 {
            self.second = second;
            self.text = date_time(second);
        }
        buf.extend_from_slice(&self.text);
        buf.push(b'.');
        buf.extend_from_slice(&six_digits(now.subsec_micros()));
        buf.push(b'Z');
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time.
fn date_time(unix: u64) -> [u8; 19] {
    let text = crate::units::rfc3339(unix);
    let mut out = [b'0'; 19];
    out.copy_from_slice(&text.as_bytes()[..19]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time test agrees with the byte-by-byte one: every byte value, at every
    /// place of every length up to three words, among bytes that need nothing.
    #[test]
    fn escape_test_agrees_with_the_plain_one() {
        let plain = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 1..=24 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(needs_escape(&s), plain(&s), "{s:?}");
                    s.iter_mut().filter(|c| **c == b'a').for_each(|c| *c = 0xc3);
                    assert_eq!(needs_escape(&s), plain(&s), "{s:?}");
                }
            }
        }
    }

    fn line<'a>(path: &'a str, subject: &'a str) -> AccessLine<'a> {
        AccessLine {
            request_id: "rid-1",
            method: "GET",
            path,
            route: "/api/**",
            status: 200,
            latency: Duration::from_nanos(12_500_000),
            client_ip: Some("127.0.0.1".parse().unwrap()),
            subject,
            auth_method: "jwt",
            listener: Listener::Proxy,
        }
    }

    #[test]
    fn the_json_line_is_the_one_tracing_wrote() {
        let (mut buf, mut stamp) = (Vec::new(), Stamp::default());
        let now = Duration::new(1_796_621_934, 609_202_123);
        json(&mut buf, &mut stamp, now, &line("/api/items", "user-0"));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            concat!(
                r#"{"timestamp":"2026-12-07T05:38:54.609202Z","level":"INFO","request_id":"rid-1","#,
                r#""method":"GET","path":"/api/items","route":"/api/**","status":200,"latency_ms":12.5,"#,
                r#""client_ip":"127.0.0.1","subject":"user-0","auth_method":"jwt","decision":false,"#,
                r#""target":"access"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn what_a_client_controls_is_escaped() {
        let (mut buf, mut stamp) = (Vec::new(), Stamp::default());
        let l = line("/a\"b\\c\nd\u{1}é", "\"}{\"level\":\"ERROR");
        json(&mut buf, &mut stamp, Duration::ZERO, &l);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["path"], "/a\"b\\c\nd\u{1}é");
        assert_eq!(v["subject"], "\"}{\"level\":\"ERROR");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    }

    #[test]
    fn dates_and_latencies() {
        assert_eq!(&date_time(951_825_600), b"2000-02-29T12:00:00");
        assert_eq!(&date_time(4_107_542_399), b"2100-02-28T23:59:59");
        let m = |nanos| {
            let mut buf = Vec::new();
            millis(&mut buf, Duration::from_nanos(nanos));
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(m(3_000_000), "3");
        assert_eq!(m(156_265_943), "156.265943");
        assert_eq!(m(1_000), "0.001");
        let mut buf = Vec::new();
        ip(&mut buf, Some("::1".parse().unwrap()));
        ip(&mut buf, None);
        assert_eq!(buf, b"::1");
    }
}
