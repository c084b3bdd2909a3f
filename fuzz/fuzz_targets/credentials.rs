//! Pipeline step 7: the one credential of a request. What is found is a piece of what was
//! sent under the scheme it names, and two credentials are never one.
//! Input: `name: value` header lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{authorization, credential};
use portcullis_fuzz::{header_map, lines};

fuzz_target!(|data: &[u8]| {
    let headers = header_map(&lines(data));
    for v in headers.get_all("authorization") {
        let Ok(text) = v.to_str() else { continue };
        if let Some((kind, token)) = authorization(text) {
            let scheme = text.split(' ').next().unwrap_or_default();
            assert!(scheme.eq_ignore_ascii_case(kind), "{text:?}");
            assert!(text.ends_with(token) || text.contains(token), "{text:?}");
            assert!(!token.starts_with(' ') && !token.ends_with(' '), "{text:?}");
        }
    }
    let Ok(Some((kind, token))) = credential(&headers, Some("session")) else {
        return;
    };
    if kind == "bearer" || kind == "dpop" {
        assert_eq!(headers.get_all("authorization").iter().count(), 1);
    }
    let sent = headers
        .iter()
        .filter_map(|(_, v)| v.to_str().ok())
        .any(|v| v.contains(token));
    assert!(sent, "{kind} {token:?} was not sent");
});
