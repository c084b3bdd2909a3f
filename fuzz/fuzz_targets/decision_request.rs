//! The decision listener's described request: a judged target is always origin-form
//! visible ASCII without a fragment, and exactly the one the front proxy sent.
//! Input: `METHOD TARGET`, then `name: value` header lines; `prefix: /x` sets `path_prefix`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{described, Described, RequestHeader};
use portcullis_fuzz::{fields, lines};

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let first = lines[0];
    let Some(space) = first.iter().position(|&b| b == b' ') else {
        return;
    };
    let Ok(mut req) = RequestHeader::build(&first[..space], &first[space + 1..], None) else {
        return;
    };
    let mut prefix = None;
    for (name, value) in fields(&lines[1..]) {
        if name == b"prefix" {
            prefix = std::str::from_utf8(value).ok();
        } else if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            req.append_header(n, v).unwrap();
        }
    }
    for from in [Described::XForwarded, Described::XOriginal, Described::Path] {
        check(&req, from, prefix);
    }
});

fn check(req: &RequestHeader, from: Described, prefix: Option<&str>) {
    let Some((_method, target)) = described(req, from, prefix) else {
        return;
    };
    assert!(target.starts_with('/'), "{target:?}");
    assert!(
        target
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'#'),
        "{target:?}"
    );
    let uri = match from {
        Described::XForwarded => req.headers.get("x-forwarded-uri"),
        Described::XOriginal => req.headers.get("x-original-uri"),
        Described::Path => None,
    };
    if let Some(uri) = uri {
        assert_eq!(uri.as_bytes(), target.as_bytes());
    } else {
        let raw = req.raw_path();
        let prefix = prefix.unwrap_or("").as_bytes();
        assert!(raw.starts_with(prefix), "{raw:?} is not under {prefix:?}");
        assert!(raw.ends_with(target.trim_start_matches('/').as_bytes()));
    }
}
