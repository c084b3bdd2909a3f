//! The inputs the fuzz targets found, each replayed as it was found, with what it showed.

use http::HeaderValue;

use super::forwarded_cookies;

/// `cookie_header`: a pair with a byte that is not UTF-8 in its name was dropped, with every
/// other pair of its header, when the session cookie was taken out (the header was rebuilt
/// from a lossy copy that no longer went into a header value).
#[test]
fn a_cookie_that_is_not_utf8_survives_the_session_cookie_taken_out() {
    let sent: &[u8] = b"sess\x9fon=xcccccc; session=y";
    assert!(HeaderValue::from_bytes(sent).is_ok());
    let forwarded = forwarded_cookies(&[sent], "session");
    assert_eq!(forwarded, [b"sess\x9fon=xcccccc".to_vec()]);
}

/// The same, for several headers and the refresh cookie: every other pair kept, in order.
#[test]
fn other_cookies_keep_their_bytes_and_order() {
    let sent: [&[u8]; 2] = [b"a=\xe9; session_refresh=r", b" session=s;b=2 ;; c"];
    let forwarded = forwarded_cookies(&sent, "session");
    assert_eq!(forwarded, [b"a=\xe9".to_vec(), b"b=2; c".to_vec()]);
}

/// `oidc_discovery`: an endpoint written `https:/host/path` passed the https check (URL
/// parsers read it as `https://host/path`) and was kept as written; it is kept as parsed now.
#[test]
fn a_discovery_endpoint_is_kept_as_it_was_checked() {
    let doc = br#"{"issuer": "https://idp.example", "authorization_endpoint": "https://idp.example/auth", "token_endpoint": "https:/dxea/p.imple/token", "jwks_uri": "https://idp.example/jwks", "end_session_endpoint": "https://idp.example/logout", "id_token_signing_alg_values_supported": ["ES256", "HS256"]}"#;
    let urls = super::discovery(doc, "https://idp.example").unwrap();
    assert_eq!(urls[1], "https://dxea/p.imple/token");
    assert!(urls.iter().all(|u| u.starts_with("https://")), "{urls:?}");
}
