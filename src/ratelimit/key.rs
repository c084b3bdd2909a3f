//! What a request is counted under: a policy's key parts, rendered to bytes.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

use crate::claims::{claim_at, claim_header_value};

/// One part of a policy's `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client IP of pipeline step 2.
    Ip,
    /// The verified subject.
    Subject,
    /// The id of the API key used.
    ApiKey,
    /// The route's name.
    Route,
    /// A request header's (first) value.
    Header(HeaderName),
    /// A verified claim, at a dotted path.
    Claim(Vec<String>),
}

impl KeyPart {
    /// Parses `ip`, `subject`, `api_key`, `route`, `header:NAME` or `claim:PATH`.
    pub fn parse(s: &str) -> Result<KeyPart, String> {
        if let Some(name) = s.strip_prefix("header:") {
            return HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .map(KeyPart::Header)
                .map_err(|_| format!("`{name}` is not a header name"));
        }
        if let Some(path) = s.strip_prefix("claim:") {
            let path: Vec<String> = path.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("`{s}` needs a claim path such as `claim:org.id`"));
            }
            return Ok(KeyPart::Claim(path));
        }
        match s {
            "ip" => Ok(KeyPart::Ip),
            "subject" => Ok(KeyPart::Subject),
            "api_key" => Ok(KeyPart::ApiKey),
            "route" => Ok(KeyPart::Route),
            other => Err(format!(
                "`{other}` is not one of ip, subject, api_key, route, header:NAME, claim:PATH"
            )),
        }
    }

    /// Whether the part is known before credentials are looked at (pipeline step 6).
    pub fn known_before_credentials(&self) -> bool {
        matches!(self, KeyPart::Ip | KeyPart::Route | KeyPart::Header(_))
    }
}

/// What a key is made from.
pub struct KeyInput<'a> {
    /// The client IP of step 2, as `ip` keys count it (an IPv6 client by its network).
    pub client_ip: Option<IpAddr>,
    pub route: &'a str,
    pub headers: &'a HeaderMap,
    /// `None` before authentication, and for anonymous callers.
    pub caller: Option<Caller<'a>>,
}

/// What keys read of a verified caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub subject: &'a str,
    /// The id of the API key used, if one was.
    pub api_key: Option<&'a str>,
    pub claims: &'a Map<String, Value>,
}

/// Appends each part as a tag byte, a length and the value, so that no two different
/// combinations render alike. An absent part (the subject of an anonymous caller, a missing
/// header or claim) falls back to the client IP, tagged as such.
pub(super) fn write(parts: &[KeyPart], input: &KeyInput<'_>, out: &mut Vec<u8>) {
    for part in parts {
        let value: Option<(u8, &[u8])> = match part {
            KeyPart::Ip => None,
            KeyPart::Route => Some((b'r', input.route.as_bytes())),
            KeyPart::Header(name) => input.headers.get(name).map(|v| (b'h', v.as_bytes())),
            KeyPart::Subject => input.caller.map(|c| (b's', c.subject.as_bytes())),
            KeyPart::ApiKey => input
                .caller
                .and_then(|c| c.api_key)
                .map(|k| (b'k', k.as_bytes())),
            KeyPart::Claim(path) => {
                let claim = input
                    .caller
                    .and_then(|c| claim_at(c.claims, path))
                    .and_then(claim_header_value);
                if let Some(value) = claim {
                    push(out, b'c', value.as_bytes());
                    continue;
                }
                None
            }
        };
        match value {
            Some((tag, bytes)) => push(out, tag, bytes),
            None => push_ip(out, input.client_ip),
        }
    }
}

fn push(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

fn push_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        Some(IpAddr::V4(v4)) => push(out, b'4', &v4.octets()),
        Some(IpAddr::V6(v6)) => push(out, b'6', &v6.octets()),
        None => push(out, b'-', &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(parts: &[KeyPart], input: &KeyInput<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write(parts, input, &mut out);
        out
    }

    fn claims() -> Map<String, Value> {
        let claims = serde_json::json!({"sub": "alice", "org": {"id": "acme"}});
        claims.as_object().unwrap().clone()
    }

    fn caller<'a>(subject: &'a str, claims: &'a Map<String, Value>) -> Caller<'a> {
        Caller {
            subject,
            api_key: None,
            claims,
        }
    }

    #[test]
    fn parts_parse() {
        assert_eq!(KeyPart::parse("ip"), Ok(KeyPart::Ip));
        assert_eq!(
            KeyPart::parse("header:X-Tenant"),
            Ok(KeyPart::Header(HeaderName::from_static("x-tenant")))
        );
        assert_eq!(
            KeyPart::parse("claim:org.id"),
            Ok(KeyPart::Claim(vec!["org".into(), "id".into()]))
        );
        for bad in [
            "",
            "IP",
            "user",
            "header:",
            "header:bad name",
            "claim:",
            "claim:a..b",
        ] {
            assert!(KeyPart::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absent_parts_fall_back_to_the_client_ip() {
        let headers = HeaderMap::new();
        let ip = Some("10.0.0.1".parse().unwrap());
        let anonymous = KeyInput {
            client_ip: ip,
            route: "orders",
            headers: &headers,
            caller: None,
        };
        let by_ip = render(&[KeyPart::Ip], &anonymous);
        for part in [
            KeyPart::Subject,
            KeyPart::ApiKey,
            KeyPart::Claim(vec!["org".into(), "id".into()]),
            KeyPart::Header(HeaderName::from_static("x-tenant")),
        ] {
            assert_eq!(
                render(std::slice::from_ref(&part), &anonymous),
                by_ip,
                "{part:?}"
            );
        }
    }

    #[test]
    fn different_callers_and_parts_render_differently() {
        let headers = HeaderMap::new();
        let claims = claims();
        let input = |caller| KeyInput {
            client_ip: Some("10.0.0.1".parse().unwrap()),
            route: "orders",
            headers: &headers,
            caller,
        };
        let parts = [KeyPart::Subject, KeyPart::Route];
        assert_ne!(
            render(&parts, &input(Some(caller("alice", &claims)))),
            render(&parts, &input(Some(caller("bob", &claims))))
        );
        // A subject that looks like a route name is still a subject.
        let tricky = Some(caller("orders", &claims));
        assert_ne!(
            render(&[KeyPart::Subject], &input(tricky)),
            render(&[KeyPart::Route], &input(tricky))
        );
        assert_eq!(
            render(
                &[KeyPart::Claim(vec!["org".into(), "id".into()])],
                &input(Some(caller("alice", &claims)))
            ),
            [&[b'c', 4, 0, 0, 0][..], b"acme"].concat()
        );
    }
}
