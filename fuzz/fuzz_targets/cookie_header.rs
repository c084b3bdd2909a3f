//! The `Cookie` header: the session cookie (and its refresh cookie) never reaches the
//! upstream, every other pair does, in order; the credential read is one of the pairs sent.
//! Input: one `Cookie` value a line.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{credential, forwarded_cookies, refresh_cookie};
use portcullis_fuzz::lines;

const NAME: &str = "session";

/// The pairs of a value, as bytes (a pair need not be UTF-8: it goes on as it came).
fn pairs(value: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
    value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(at) => (&p[..at], Some(&p[at + 1..])),
            None => (p, None),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let values = lines(data);
    let refresh = refresh_cookie(NAME);
    let ours = |k: &[u8]| k == NAME.as_bytes() || k == refresh.as_bytes();
    let sent: Vec<&[u8]> = values
        .iter()
        .copied()
        .filter(|v| HeaderValue::from_bytes(v).is_ok())
        .collect();
    let forwarded = forwarded_cookies(&sent, NAME);
    let kept: Vec<_> = forwarded.iter().flat_map(|v| pairs(v)).collect();
    assert!(
        kept.iter().all(|(k, v)| v.is_none() || !ours(k)),
        "{kept:?}"
    );
    let others: Vec<_> = sent
        .iter()
        .flat_map(|v| pairs(v))
        .filter(|(k, v)| v.is_none() || !ours(k))
        .collect();
    assert_eq!(kept, others);

    let mut headers = HeaderMap::new();
    for v in &sent {
        headers.append("cookie", HeaderValue::from_bytes(v).unwrap());
    }
    if let Ok(Some((kind, token))) = credential(&headers, Some(NAME)) {
        assert_eq!(kind, "cookie");
        let offered = sent.iter().flat_map(|v| pairs(v));
        assert!(offered
            .into_iter()
            .any(|(k, v)| k == NAME.as_bytes() && v == Some(token.as_bytes())));
    }
});
