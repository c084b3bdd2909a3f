//! A provider's discovery document: accepted only for the configured issuer, and then every
//! endpoint it names is an https URL with a host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::discovery;

const ISSUER: &str = "https://idp.example";

fuzz_target!(|body: &[u8]| {
    let Ok(urls) = discovery(body, ISSUER) else {
        return;
    };
    // A member the gateway ignores is skipped unread (its bytes need not be UTF-8): the
    // document as a whole is then no JSON value, and its issuer is checked inside.
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) {
        let issuer = doc["issuer"].as_str().expect("an issuer");
        assert_eq!(issuer.trim_end_matches('/'), ISSUER);
    }
    assert!(urls.len() >= 3);
    for u in urls {
        let url = url_host(&u);
        assert!(
            u.to_ascii_lowercase().starts_with("https://") && url,
            "{u:?}"
        );
    }
});

/// Something after the scheme before the path: a host.
fn url_host(u: &str) -> bool {
    u.splitn(4, '/').nth(2).is_some_and(|h| !h.is_empty())
}
