//! The kinds of garbage, and the body (and `Content-Type`) each makes of an endpoint's
//! well-formed body: some break the whole body, others one field at a time (the other
//! fields plausible, so that the broken one is what the endpoint meets).

use serde_json::{Map, Value};

use super::MARKER;

/// Over the gateway's body limits (64 KiB on the built-in endpoints, 16 KiB on the admin
/// API): 1 MiB.
const HUGE: usize = 1 << 20;
/// Under the limits, far over any field's sense: 12 KiB.
const LARGE: usize = 12 * 1024;
/// How deep the nesting bomb is.
const DEPTH: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{`
    Truncated,
    /// `{"a":`
    Unterminated,
    /// `[]`
    Array,
    /// `null`
    Null,
    /// A JSON string, not an object.
    Scalar,
    /// Every field a number, an array, an object, a boolean.
    Numbers,
    Arrays,
    Objects,
    Booleans,
    /// Raw 0x00 bytes inside a string (JSON forbids unescaped control characters).
    RawNul,
    /// 0xFF 0xFE inside a string.
    BadUtf8,
    /// `application/json; charset=latin1` with a Latin-1 byte (0xE9).
    Latin1,
    /// `[[[[...]]]]`, 10000 deep.
    Bomb,
    /// A body of 1 MiB: 413.
    TooLarge,
    /// The JSON body as `text/plain`, as `multipart/form-data`, and with no `Content-Type`.
    TextPlain,
    Multipart,
    NoType,
    /// The JSON body labelled form-encoded.
    JsonAsForm,
    /// A form body where only JSON is taken.
    FormForJson,
    /// A form with a repeated field (RFC 6749 section 3.2).
    FormRepeated,
    /// A form of broken escapes: `%ZZ`, `%00`, `%FF`.
    FormBadEscapes,
    /// One field `""`.
    Empty,
    /// One field of 12 KiB.
    Large,
    /// One field holding `\u0000`.
    NulEscaped,
    /// One field given twice.
    Duplicated,
}

impl Kind {
    /// The kinds that break the whole body.
    pub(crate) const WHOLE: [Kind; 20] = [
        Kind::Truncated,
        Kind::Unterminated,
        Kind::Array,
        Kind::Null,
        Kind::Scalar,
        Kind::Numbers,
        Kind::Arrays,
        Kind::Objects,
        Kind::Booleans,
        Kind::RawNul,
        Kind::BadUtf8,
        Kind::Latin1,
        Kind::Bomb,
        Kind::TooLarge,
        Kind::TextPlain,
        Kind::Multipart,
        Kind::NoType,
        Kind::JsonAsForm,
        Kind::FormRepeated,
        Kind::FormBadEscapes,
    ];
    /// The kinds that break one field at a time.
    pub(crate) const FIELD: [Kind; 4] =
        [Kind::Empty, Kind::Large, Kind::NulEscaped, Kind::Duplicated];

    /// `(Content-Type, body)` of this garbage made of `body` (a JSON object), breaking
    /// `field` for the field kinds.
    pub(crate) fn make(
        self,
        body: &Map<String, Value>,
        field: &str,
    ) -> (Option<&'static str>, Vec<u8>) {
        const JSON: Option<&str> = Some("application/json");
        const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
        let text = Value::Object(body.clone()).to_string();
        let like = |f: fn(&str) -> Value| {
            let map: Map<String, Value> = body.keys().map(|k| (k.clone(), f(k))).collect();
            Value::Object(map).to_string().into_bytes()
        };
        match self {
            Kind::Truncated => (JSON, format!("{{\"{MARKER}\"").into_bytes()),
            Kind::Unterminated => (JSON, format!("{{\"a{MARKER}\":").into_bytes()),
            Kind::Array => (JSON, b"[]".to_vec()),
            Kind::Null => (JSON, b"null".to_vec()),
            Kind::Scalar => (JSON, format!("\"x{MARKER}\"").into_bytes()),
            Kind::Numbers => (JSON, like(|_| Value::from(7))),
            Kind::Arrays => (JSON, like(|_| Value::from(vec![MARKER]))),
            Kind::Objects => (JSON, like(|_| serde_json::json!({ "a": MARKER }))),
            Kind::Booleans => (JSON, like(|_| Value::Bool(true))),
            Kind::RawNul => (JSON, spliced(&text, b"a\0b\0")),
            Kind::BadUtf8 => (JSON, spliced(&text, b"\xff\xfe")),
            Kind::Latin1 => (
                Some("application/json; charset=latin1"),
                spliced(&text, b"caf\xe9"),
            ),
            Kind::Bomb => (
                JSON,
                format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)).into_bytes(),
            ),
            Kind::TooLarge => (JSON, one_field(body, field, Value::from(big(HUGE)))),
            Kind::TextPlain => (Some("text/plain"), text.into_bytes()),
            Kind::Multipart => (Some("multipart/form-data; boundary=gbg"), multipart(body)),
            Kind::NoType => (None, text.into_bytes()),
            Kind::JsonAsForm => (FORM, text.into_bytes()),
            Kind::FormForJson => (FORM, form(body, false)),
            Kind::FormRepeated => (FORM, form(body, true)),
            Kind::FormBadEscapes => (
                FORM,
                format!("{field}=%ZZ%00%FF{MARKER}&%00=%E9").into_bytes(),
            ),
            Kind::Empty => (JSON, one_field(body, field, Value::from(""))),
            Kind::Large => (JSON, one_field(body, field, Value::from(big(LARGE)))),
            Kind::NulEscaped => (
                JSON,
                one_field(body, field, Value::from(format!("a\0b{MARKER}"))),
            ),
            Kind::Duplicated => (JSON, duplicated(&text, field)),
        }
    }
}

/// `n` bytes of text that begin with the marker.
fn big(n: usize) -> String {
    format!("{MARKER}{}", "x".repeat(n - MARKER.len()))
}

/// `body` with `field` set to `value`.
fn one_field(body: &Map<String, Value>, field: &str, value: Value) -> Vec<u8> {
    let mut map = body.clone();
    map.insert(field.to_string(), value);
    Value::Object(map).to_string().into_bytes()
}

/// The JSON text with `bytes` put inside its first string value (after its first `":"`),
/// or appended when it has none.
fn spliced(text: &str, bytes: &[u8]) -> Vec<u8> {
    let at = text.find(":\"").map_or(text.len(), |i| i + 2);
    let mut out = text.as_bytes()[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(MARKER.as_bytes());
    out.extend_from_slice(&text.as_bytes()[at..]);
    out
}

/// The JSON text with `field`'s pair written twice, the second time with the marker.
fn duplicated(text: &str, field: &str) -> Vec<u8> {
    let inner = text.strip_prefix('{').unwrap_or(text);
    let second = serde_json::json!({ field: format!("{MARKER}-second") }).to_string();
    let second = second.trim_start_matches('{').trim_end_matches('}');
    format!("{{{second},{inner}").into_bytes()
}

/// The fields form-encoded (strings as they are, others as JSON), the first twice when
/// `repeat`.
fn form(body: &Map<String, Value>, repeat: bool) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in body {
        s.append_pair(k, v.as_str().map_or(v.to_string(), str::to_string).as_str());
    }
    if let (true, Some(k)) = (repeat, body.keys().next()) {
        s.append_pair(k, MARKER);
    }
    s.finish().into_bytes()
}

fn multipart(body: &Map<String, Value>) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in body {
        out += &format!("--gbg\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n");
    }
    out += "--gbg--\r\n";
    out.into_bytes()
}
