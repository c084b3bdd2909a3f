//! Pipeline step 3: whatever the spelling (case, `_` for `-`), no client-sent header an
//! upstream could read as one of Portcullis's identity headers survives.
//! Input: `name: value` header lines.
#![no_main]

use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{ClientHeaders, RequestHeader};
use portcullis_fuzz::{fields, lines};

const IDENTITY: [&str; 3] = ["x-user-id", "x-user-roles", "x-auth-method"];

fuzz_target!(|data: &[u8]| {
    for trusted in [false, true] {
        check(&fields(&lines(data)), trusted);
    }
});

fn check(headers: &[(&[u8], &[u8])], trusted: bool) {
    let ours: Vec<HeaderName> = IDENTITY
        .iter()
        .map(|n| HeaderName::from_static(n))
        .collect();
    let strip = ClientHeaders::new(&ours);
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    for &(name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        req.append_header(name, value).unwrap();
    }
    strip.strip(&mut req, trusted);
    for (name, _) in req.headers.iter() {
        let read_as = name.as_str().to_ascii_lowercase().replace('_', "-");
        assert!(!IDENTITY.contains(&read_as.as_str()), "{name} survived");
        assert!(
            !read_as.starts_with("x-forwarded-") || trusted,
            "{name} survived"
        );
        assert!(!["x-original-url", "x-http-method-override"].contains(&read_as.as_str()));
    }
}
