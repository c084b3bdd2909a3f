//! Header-name constants, identity headers stripped then set, forwarded headers, and the
//! client IP of pipeline step 2.

use std::net::IpAddr;

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use pingora::http::{CaseHeaderName, RequestHeader, ResponseHeader};

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A header name and its spelling on the wire, made once. Added through our patch of
/// pingora-http (vendor/pingora-http/PORTCULLIS.md), which writes it after the other headers
/// without entering Pingora's two maps: an insert there hashes and probes both, and grows them.
#[derive(Debug, Clone)]
pub struct Wired {
    pub name: HeaderName,
    pub case: CaseHeaderName,
}

impl Wired {
    /// `name` in lower case, `case` as written on the wire.
    pub(crate) const fn fixed(name: &'static str, case: &'static str) -> Self {
        Wired {
            name: HeaderName::from_static(name),
            case: CaseHeaderName::from_static(case),
        }
    }

    /// A configured name, written as `http` keeps it (lower case).
    pub fn of(name: HeaderName) -> Self {
        let case = CaseHeaderName::from_slice(name.as_str().as_bytes());
        Wired { name, case }
    }

    /// Adds the header to a request that has none of that name: the identity headers, which
    /// step 3 stripped, and the forwarded headers where the client's are gone or kept.
    pub fn add(&self, req: &mut RequestHeader, value: HeaderValue) {
        req.append_wire_header(&self.case, value);
    }

    /// Sets the header on a request, removing every value it had.
    pub fn replace(&self, req: &mut RequestHeader, value: HeaderValue) {
        strip_all(req, [&self.name]);
        self.add(req, value);
    }

    /// Sets the header on a response, removing every value the upstream gave it.
    pub fn replace_on(&self, resp: &mut ResponseHeader, value: HeaderValue) {
        if has(&resp.headers, &self.name) {
            resp.remove_header(&self.name);
        }
        resp.append_wire_header(&self.case, value);
    }
}

impl std::fmt::Display for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.name.fmt(f)
    }
}

impl std::ops::Deref for Wired {
    type Target = HeaderName;
    fn deref(&self) -> &HeaderName {
        &self.name
    }
}

/// The same names as written on the wire.
pub(crate) mod wire {
    use super::Wired;
    pub(crate) const X_REQUEST_ID: Wired = Wired::fixed("x-request-id", "X-Request-Id");
    pub(crate) const X_FORWARDED_FOR: Wired = Wired::fixed("x-forwarded-for", "X-Forwarded-For");
    pub(crate) const X_FORWARDED_PROTO: Wired =
        Wired::fixed("x-forwarded-proto", "X-Forwarded-Proto");
    pub(crate) const X_FORWARDED_HOST: Wired = Wired::fixed("x-forwarded-host", "X-Forwarded-Host");
}

/// A header an identity header may not be named: one that frames the message or carries
/// a credential, or one step 11 writes itself. (Identity headers are added beside the
/// request's own, not in place of them: see `Wired::add`.)
pub(crate) fn is_framing_or_ours(name: &HeaderName) -> bool {
    const NAMES: &[&str] = &[
        "host",
        "authorization",
        "cookie",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "dpop",
    ];
    let s = name.as_str();
    NAMES.contains(&s)
        || FORWARDING_HEADERS.contains(&s)
        || s.starts_with(FORWARDED_PREFIX)
        || [X_REQUEST_ID, X_API_KEY].contains(name)
}

/// Appends an address as text: IPv4 digit by digit (`Display` goes through `fmt`, ~1,400
/// instructions on every request's `X-Forwarded-For`), IPv6 through `Display`.
pub(crate) fn push_ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(buf, "{v6}");
        }
    }
}

/// A network (`10.0.0.0/8`) or one address (`10.1.2.3`, read as its /32 or /128).
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Keeps a client's request id when it is 1..=128 visible ASCII characters, else makes one.
pub(crate) fn request_id(incoming: Option<&[u8]>) -> String {
    match incoming {
        Some(v)
            if !v.is_empty() && v.len() <= 128 && v.iter().all(|b| (0x21..=0x7e).contains(b)) =>
        {
            String::from_utf8_lossy(v).into_owned()
        }
        // Encoded straight into a buffer: `to_string` goes through the formatter.
        _ => {
            let mut buf = uuid::Uuid::encode_buffer();
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
            text.to_owned()
        }
    }
}

/// A number as a header value (`RateLimit-Remaining`, `Retry-After`): the small ones, which
/// are most, made once and shared, so that writing one copies and allocates nothing.
pub(crate) fn number(n: u64) -> HeaderValue {
    const SHARED: usize = 1024;
    static SMALL: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    match usize::try_from(n) {
        Ok(i) if i < SHARED => {
            let small = SMALL.get_or_init(|| (0..SHARED as u64).map(HeaderValue::from).collect());
            small[i].clone()
        }
        _ => HeaderValue::from(n),
    }
}

/// `trusted_proxies`, as a list of networks.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    pub(crate) fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Pipeline step 2: the peer; when the peer is trusted, the right-most `X-Forwarded-For`
    /// address that is not itself trusted (or the left-most when all are).
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(&peer) {
            return peer;
        }
        let mut client = peer;
        let chain = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for entry in chain.iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(&ip) {
                        break;
                    }
                }
                // An entry we cannot read ends the trusted chain: what came before it is as
                // good as the client's own word.
                Err(_) => break,
            }
        }
        client
    }
}

/// Headers that tell an upstream a different path or method than the one the route was chosen
/// on (IIS, Symfony, Express method-override): removed from every request (pipeline step 3).
const REWRITE_HEADERS: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Client-address and forwarding headers an upstream may believe: removed unless the peer is
/// a trusted proxy (X-Forwarded-For, -Proto and -Host are then rewritten at step 11).
const FORWARDING_HEADERS: &[&str] = &["forwarded", "x-real-ip"];

/// Every `X-Forwarded-*` header is ours or a trusted proxy's (Rack reads `X-Forwarded-Ssl`,
/// Spring `X-Forwarded-Prefix`): from anyone else, all of them go.
const FORWARDED_PREFIX: &str = "x-forwarded-";

/// Pipeline step 3: what is removed from a request before anything reads it. Built once per config.
///
/// WSGI, CGI and PHP servers read `X_User_Id` as `X-User-Id`, so a name that equals one of the
/// headers Portcullis sets once `_` is read as `-` is removed too, in any case, from any peer.
#[derive(Debug, Clone)]
pub struct ClientHeaders {
    /// Removed always: the identity headers (exact names) and the rewrite headers.
    always: Vec<HeaderName>,
    /// Removed unless the peer is trusted.
    untrusted: Vec<HeaderName>,
    /// The `-` spellings whose `_` aliases are removed.
    aliased: Vec<String>,
    /// First bytes of `always` and `untrusted`: most request headers are looked at no further.
    first: [bool; 256],
}

impl ClientHeaders {
    /// `identity`: every header `[identity]` sets (the internal token's included).
    pub fn new(identity: &[HeaderName]) -> Self {
        let statics = |list: &[&'static str]| -> Vec<HeaderName> {
            list.iter().map(|n| HeaderName::from_static(n)).collect()
        };
        let mut always = identity.to_vec();
        always.extend(statics(REWRITE_HEADERS));
        let untrusted = statics(FORWARDING_HEADERS);
        let mut aliased: Vec<String> = always
            .iter()
            .chain(&untrusted)
            .map(|n| n.as_str().to_string())
            .collect();
        aliased.push(X_REQUEST_ID.as_str().to_string());
        let mut first = [false; 256];
        for name in always.iter().chain(&untrusted) {
            first[name.as_str().as_bytes()[0] as usize] = true;
        }
        first[b'x' as usize] = true; // x-forwarded-*
        ClientHeaders {
            always,
            untrusted,
            aliased,
            first,
        }
    }

    fn is_refused(&self, name: &HeaderName, peer_trusted: bool) -> bool {
        let s = name.as_str();
        // One byte search (memchr) rather than `str::contains`'s pattern machinery: this runs
        // on every header of every request.
        let underscore = s.as_bytes().contains(&b'_');
        if !underscore && !self.first[s.as_bytes()[0] as usize] {
            return false;
        }
        if underscore {
            let dashed = s.replace('_', "-");
            return dashed.starts_with(FORWARDED_PREFIX) || self.aliased.contains(&dashed);
        }
        self.always.contains(name)
            || (!peer_trusted && (s.starts_with(FORWARDED_PREFIX) || self.untrusted.contains(name)))
    }

    /// Removes every value of every refused header from `req`.
    pub fn strip(&self, req: &mut RequestHeader, peer_trusted: bool) {
        let mut refused: Vec<HeaderName> = Vec::new();
        for name in req.headers.keys() {
            if self.is_refused(name, peer_trusted) {
                refused.push(name.clone());
            }
        }
        for name in &refused {
            // One removal takes every value of the name, from both of Pingora's maps.
            req.remove_header(name);
        }
    }
}

/// Removes every value of each named header, whatever its case. Goes through
/// `RequestHeader::remove_header` so Pingora's header-case map stays in step.
pub(crate) fn strip_all<'a>(
    req: &mut RequestHeader,
    names: impl IntoIterator<Item = &'a HeaderName>,
) {
    for name in names {
        if has(&req.headers, name) {
            req.remove_header(name); // every value
        }
    }
}

/// Whether `headers` has `name`: a scan of the few headers a request or response has is
/// cheaper than a removal's two hash lookups, and the names removed are usually absent.
fn has(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.keys().any(|k| k == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, v.parse().unwrap());
        h
    }

    #[test]
    fn wire_names_are_the_same_headers() {
        for (name, wire) in [
            (X_REQUEST_ID, wire::X_REQUEST_ID),
            (X_FORWARDED_FOR, wire::X_FORWARDED_FOR),
            (X_FORWARDED_PROTO, wire::X_FORWARDED_PROTO),
            (X_FORWARDED_HOST, wire::X_FORWARDED_HOST),
        ] {
            assert_eq!(HeaderName::from_bytes(wire.case.as_slice()).unwrap(), name);
            assert_eq!(wire.name, name);
        }
    }

    #[test]
    fn addresses_as_text() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "2001:db8::8",
        ] {
            let mut buf = b"x, ".to_vec();
            push_ip(&mut buf, ip.parse().unwrap());
            assert_eq!(String::from_utf8(buf).unwrap(), format!("x, {ip}"));
        }
    }

    #[test]
    fn request_ids() {
        assert_eq!(request_id(Some(b"abc-123")), "abc-123");
        assert_ne!(request_id(Some(b"has space")), "has space");
        assert_ne!(request_id(Some(&[b'a'; 129])).len(), 129);
        assert_eq!(request_id(None).len(), 36);
    }

    #[test]
    fn numbers_as_values() {
        for n in [0, 7, 1023, 1024, 86_400, u64::MAX] {
            assert_eq!(number(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let t = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let untrusted: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(t.client_ip(untrusted, &xff("1.2.3.4")), untrusted);
        assert_eq!(
            t.client_ip(peer, &xff("6.6.6.6, 1.2.3.4, 10.0.0.2")),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(t.client_ip(peer, &HeaderMap::new()), peer);
        assert_eq!(
            t.client_ip(peer, &xff("10.1.1.1")),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn strip_takes_every_value_in_every_spelling() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in [
            ("X-User-Id", "a"),
            ("x-user-id", "b"),
            ("X_User_Id", "c"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Accept", "*/*"),
        ] {
            req.append_header(name.to_string(), value).unwrap();
        }
        ClientHeaders::new(&[HeaderName::from_static("x-user-id")]).strip(&mut req, false);
        let names: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept"]);
        let mut wire = Vec::new();
        req.header_to_h1_wire(&mut wire);
        assert_eq!(String::from_utf8(wire).unwrap(), "Accept: */*\r\n");
        strip_all(&mut req, [&http::header::ACCEPT]);
        assert!(req.headers.is_empty());
    }

    /// Added headers go on the wire after the request's own, in their spelling, and are in
    /// the parts HTTP/2 sends; `replace` takes every value the request had first.
    #[test]
    fn added_headers_reach_the_wire_and_the_parts() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Accept", "*/*").unwrap();
        req.append_header("x-request-id", "client-1").unwrap();
        req.append_header("X-Request-Id", "client-2").unwrap();
        wire::X_FORWARDED_PROTO.add(&mut req, HeaderValue::from_static("http"));
        wire::X_REQUEST_ID.replace(&mut req, HeaderValue::from_static("ours"));
        // A clone (Pingora clones the request it sends upstream) writes the same, once.
        for req in [&req, &req.clone()] {
            let mut on_wire = Vec::new();
            req.header_to_h1_wire(&mut on_wire);
            assert_eq!(
                String::from_utf8(on_wire).unwrap(),
                "Accept: */*\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ours\r\n"
            );
        }
        let parts = req.as_owned_parts();
        let ids: Vec<_> = parts.headers.get_all(&X_REQUEST_ID).iter().collect();
        assert_eq!(ids, [&HeaderValue::from_static("ours")]);
        assert_eq!(parts.headers[&X_FORWARDED_PROTO], "http");

        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("RateLimit-Limit", "9").unwrap();
        let limit = Wired::fixed("ratelimit-limit", "RateLimit-Limit");
        limit.replace_on(&mut resp, HeaderValue::from_static("5"));
        let mut on_wire = Vec::new();
        resp.header_to_h1_wire(&mut on_wire);
        assert_eq!(
            String::from_utf8(on_wire).unwrap(),
            "RateLimit-Limit: 5\r\n"
        );
        let parts: http::response::Parts = resp.into();
        assert_eq!(parts.headers["ratelimit-limit"], "5");
    }
}
