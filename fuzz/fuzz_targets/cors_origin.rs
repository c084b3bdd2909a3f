//! CORS: an origin is allowed only when it, serialised, is one of the allowed ones (or all
//! are), and what is echoed is that serialised origin, never the raw header.
//! Input: the `Origin` value, then one allowed origin a line.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{cors_allowed, origin_of};

fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let origin = lines.next().unwrap_or_default();
    let allowed: Vec<String> = lines
        .map(|o| {
            if o == "*" {
                "*".to_string()
            } else {
                origin_of(o).unwrap_or_default()
            }
        })
        .filter(|o| !o.is_empty())
        .collect();
    for o in &allowed {
        if o != "*" {
            assert_eq!(
                origin_of(o).as_deref(),
                Some(o.as_str()),
                "not a fixed point"
            );
        }
    }
    let Ok(value) = HeaderValue::from_str(origin) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("origin", value);
    let Some(echoed) = cors_allowed(&allowed, &headers) else {
        return;
    };
    assert_eq!(origin_of(origin).as_deref(), Some(echoed.as_str()));
    assert!(
        allowed.iter().any(|o| o == "*" || *o == echoed),
        "{echoed:?} not in {allowed:?}"
    );
});
