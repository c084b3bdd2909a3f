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
