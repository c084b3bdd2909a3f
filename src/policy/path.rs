//! Pipeline step 4: refuse the paths that smuggle structure, normalise the rest.
//!
//! The normalised path is both matched and forwarded, so what a route's checks saw is exactly
//! what the upstream receives.

use crate::error::GatewayError;

const REFUSED: GatewayError = GatewayError::InvalidRequest("refused path");

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Refuses a target as received that holds a raw `#` (a fragment never reaches a server, and
/// upstreams cut the path there: `/admin#/../public` would be judged `/public` and served as
/// `/admin`), a space or a control byte.
pub(crate) fn refuse_raw(target: &[u8]) -> Result<(), GatewayError> {
    match target
        .iter()
        .any(|&b| b == b'#' || b == b' ' || b < 0x20 || b == 0x7f)
    {
        true => Err(REFUSED),
        false => Ok(()),
    }
}

/// Normalises a request path (no query). Errors are 400 `invalid_request`.
///
/// `semicolons`: `[server] allow_path_semicolons`. Off (the default), a `;` (raw or `%3B`) is
/// refused: Tomcat, Jetty and Spring read `/admin;x=1/users` as `/admin/users`, a path the
/// routes never saw.
pub fn normalize(raw: &str, semicolons: bool) -> Result<String, GatewayError> {
    if is_normal(raw) {
        return Ok(raw.to_string());
    }
    refuse_raw(raw.as_bytes())?;
    normalize_slow(raw, semicolons)
}

/// Already in normal form: visible ASCII, nothing escaped, no backslash, semicolon or `#`, no
/// empty segment, no segment starting with a dot. Most requests are, and skip the segment
/// work.
fn is_normal(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.first() == Some(&b'/')
        && !b.iter().any(|&c| {
            c == b'%' || c == b'\\' || c == b';' || c == b'#' || !(0x21..0x7f).contains(&c)
        })
        && !b
            .windows(2)
            .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
}

fn normalize_slow(raw: &str, semicolons: bool) -> Result<String, GatewayError> {
    if !raw.starts_with('/') {
        return Err(REFUSED);
    }
    if !semicolons && raw.contains(';') {
        return Err(REFUSED);
    }
    // Decode unreserved characters; refuse encoded `/`, `\`, NUL and a raw `\`.
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(REFUSED),
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(GatewayError::InvalidRequest("malformed percent-encoding"));
                };
                let c = h * 16 + l;
                match c {
                    // An encoded control byte is refused as a raw one is: Pingora escapes a
                    // raw control byte (or space) of an HTTP/1.1 target before it is read.
                    b'/' | b'\\' => return Err(REFUSED),
                    c if c < 0x20 || c == 0x7f => return Err(REFUSED),
                    b';' if !semicolons => return Err(REFUSED),
                    c if is_unreserved(c) => decoded.push(c as char),
                    _ => {
                        // Keep other escapes, with upper-case hex (RFC 3986 6.2.2.1).
                        decoded.push('%');
                        decoded.push(bytes[i + 1].to_ascii_uppercase() as char);
                        decoded.push(bytes[i + 2].to_ascii_uppercase() as char);
                    }
                }
                i += 3;
            }
            // Not ASCII (a described target never is): kept escaped, never as a stray char.
            b if !b.is_ascii() => {
                decoded.push_str(&format!("%{b:02X}"));
                i += 1;
            }
            b => {
                decoded.push(b as char);
                i += 1;
            }
        }
    }
    // Merge repeated slashes, refuse `.;` / `..;` segments, then remove dot-segments.
    let trailing = decoded.ends_with('/');
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.len().saturating_sub(1);
    let mut ends_in_dir = trailing;
    for (n, seg) in segments.iter().enumerate() {
        if seg.starts_with(".;") || seg.starts_with("..;") {
            return Err(REFUSED);
        }
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        if n == last && (*seg == "." || *seg == "..") {
            ends_in_dir = true;
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || ends_in_dir {
        path.push('/');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::{is_normal, normalize, normalize_slow, refuse_raw, REFUSED};

    #[test]
    fn fragments_spaces_and_controls_are_refused_raw() {
        for raw in [
            "/admin#/../public",
            "/a b",
            "/a\tb",
            "/a\u{7f}",
            "/a\u{0}",
            "/#",
        ] {
            assert_eq!(normalize(raw, false), Err(REFUSED), "{raw:?}");
            assert_eq!(refuse_raw(raw.as_bytes()), Err(REFUSED), "{raw:?}");
        }
        assert_eq!(refuse_raw(b"/a/%23/b?x=1").map(|_| ()), Ok(()));
        assert_eq!(normalize("/a/%23", false).unwrap(), "/a/%23");
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_one() {
        let parts = [
            "", "/", "a", "b.c", ".", "..", ".;", "%2e", "%41", "\\", "//", "~x", "-", ";x",
        ];
        let mut checked = 0;
        for a in parts {
            for b in parts {
                for c in parts {
                    let p = format!("/{a}/{b}{c}");
                    if is_normal(&p) {
                        assert_eq!(
                            normalize_slow(&p, false).ok().as_deref(),
                            Some(p.as_str()),
                            "{p}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20, "{checked}");
        for p in ["/", "/a/b/", "/api/orders", "/a.b/c"] {
            assert!(is_normal(p), "{p}");
        }
        for p in ["//a", "/a/./b", "/a/..", "/%61", "/a\\b", "/.hidden", "a"] {
            assert!(!is_normal(p), "{p}");
        }
    }

    fn ok(p: &str) -> String {
        normalize(p, false).unwrap_or_else(|e| panic!("{p}: {e:?}"))
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/a/b"), "/a/b");
        assert_eq!(ok("/a/b/"), "/a/b/");
        assert_eq!(ok("//admin"), "/admin");
        assert_eq!(ok("/a//b///c"), "/a/b/c");
        assert_eq!(ok("/public/../admin"), "/admin");
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/."), "/a/b/");
        assert_eq!(ok("/../../etc"), "/etc");
        assert_eq!(ok("/.."), "/");
    }

    #[test]
    fn unreserved_escapes_are_decoded_before_dot_removal() {
        assert_eq!(ok("/%2e%2e/admin"), "/admin");
        assert_eq!(ok("/public/%2E%2E/admin"), "/admin");
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/a%3fb"), "/a%3Fb");
    }

    #[test]
    fn smuggling_is_refused() {
        for p in [
            "/admin%2F..",
            "/a%2fb",
            "/a%5Cb",
            "/a%00",
            "/a\\b",
            "/..;/admin",
            "/a/.;/b",
            "/%2e%2e;/admin",
            "/a/..;x",
            "/bad%zz",
            "/trunc%2",
            "admin",
            "*",
        ] {
            assert!(normalize(p, false).is_err(), "{p} should be refused");
            assert!(normalize(p, true).is_err(), "{p} should be refused");
        }
    }

    #[test]
    fn semicolons_are_refused_unless_allowed() {
        for p in [
            "/admin;x=1/users",
            "/admin%3bx=1/users",
            "/a;",
            "/a/b;jsessionid=1",
        ] {
            assert!(normalize(p, false).is_err(), "{p}");
        }
        assert_eq!(
            normalize("/admin;x=1/users", true).unwrap(),
            "/admin;x=1/users"
        );
        assert_eq!(normalize("/a%3Bb", true).unwrap(), "/a%3Bb");
        // Dot-segments with a parameter stay refused either way.
        for p in ["/..;/admin", "/a/.;x/b", "/%2e%2e;/admin"] {
            assert!(normalize(p, true).is_err(), "{p}");
        }
    }
}

/// The stated properties: the reference is RFC 3986's own algorithm (`fuzzing::reference`).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::normalize;
    use crate::fuzzing::{assert_normal_form, reference};

    /// Paths the gateway accepts, made of the pieces that need care.
    fn accepted_path() -> impl Strategy<Value = String> {
        let segment = select(vec![
            "a", "B", "~", "-", "%41", "%7e", "%2e", "%2E", ".", "..", "", "%2e%2E", "%C3%A9",
            "%c3", "x%3d", ".a", "a.",
        ]);
        (prop::collection::vec(segment, 0..8), any::<bool>()).prop_map(|(segs, slash)| {
            let mut p = format!("/{}", segs.join("/"));
            if slash {
                p.push('/');
            }
            p
        })
    }

    /// Any text, biased toward the characters paths are smuggled with.
    fn any_path() -> impl Strategy<Value = String> {
        let piece = select(vec![
            "/", ".", "..", "%", "%2e", "%2f", "%2F", "%5c", "%00", "%3b", ";", "\\", "#", "a",
            "%", "2", "e", "F", " ", "\u{7f}", "é", "%e9", "?", "//",
        ]);
        prop::collection::vec(piece, 0..16).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn normalisation_is_rfc_3986(path in accepted_path()) {
            prop_assert_eq!(normalize(&path, false).ok(), Some(reference::normalize(&path)));
        }

        #[test]
        fn normalisation_is_idempotent_and_leaves_nothing_smuggled(
            path in any_path(),
            semicolons in any::<bool>(),
        ) {
            if let Ok(n) = normalize(&path, semicolons) {
                assert_normal_form(&path, &n, semicolons);
            }
        }
    }
}
