//! Where a browser is sent after signing in or out (`rd`): a path of the gateway's own, or a
//! URL on the gateway's origin (that of `redirect_uri`) or on one of `allowed_redirects`.
//! Anything else becomes `/`: never an open redirect.

use percent_encoding::{utf8_percent_encode, CONTROLS};

use crate::config::OidcSettings;

/// Longer `rd`s are not kept.
const MAX_RD: usize = 2048;

/// `rd` if it is safe to send a browser to, else `/`.
pub(crate) fn safe_redirect(rd: Option<&str>, settings: &OidcSettings) -> String {
    let Some(rd) = rd.filter(|r| !r.is_empty() && r.len() <= MAX_RD) else {
        return "/".into();
    };
    // Browsers drop tabs and newlines from URLs and read `\` as `/`: `/\t/evil` and
    // `/\evil` would leave the site.
    if rd
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return "/".into();
    }
    if rd.starts_with('/') {
        return if rd.starts_with("//") {
            "/".into()
        } else {
            // A `Location` is a URI, ASCII only (RFC 9110 section 10.2.2): `/café` goes out
            // as `/caf%C3%A9`, never as raw bytes a client cannot read.
            utf8_percent_encode(rd, CONTROLS).to_string()
        };
    }
    let Ok(url) = url::Url::parse(rd) else {
        return "/".into();
    };
    let plain = matches!(url.scheme(), "https" | "http")
        && url.username().is_empty()
        && url.password().is_none();
    let origin = url.origin().ascii_serialization();
    let own = settings.redirect_uri.origin().ascii_serialization();
    if plain && (origin == own || settings.allowed_redirects.contains(&origin)) {
        url.into()
    } else {
        "/".into()
    }
}

/// `rd` (already safe) as an absolute URL: a path on the origin of `redirect_uri`.
pub(super) fn absolute(rd: &str, settings: &OidcSettings) -> String {
    if rd.starts_with('/') {
        let origin = settings.redirect_uri.origin().ascii_serialization();
        format!("{origin}{rd}")
    } else {
        rd.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_paths_and_allowed_origins_are_kept() {
        let settings = OidcSettings {
            name: "corp".into(),
            issuer: "https://idp.example".into(),
            client_id: "gw".into(),
            client_auth: crate::config::ClientAuth::Secret(crate::config::Secret::new("s".into())),
            redirect_uri: url::Url::parse("https://gw.example/auth/oidc/corp/callback").unwrap(),
            scopes: vec!["openid".into()],
            subject_claim: vec!["sub".into()],
            roles_claim: None,
            roles_map: Vec::new(),
            default_roles: Vec::new(),
            claims: Vec::new(),
            require: Vec::new(),
            allowed_redirects: vec!["https://app.example".into()],
            ca_certs: None,
            discovery_refresh: 3600,
        };
        let rd = |r: &str| safe_redirect(Some(r), &settings);
        assert_eq!(rd("/orders?id=1"), "/orders?id=1");
        assert_eq!(rd("/caf\u{e9}?q=\u{fc}"), "/caf%C3%A9?q=%C3%BC");
        assert_eq!(rd("https://app.example/x"), "https://app.example/x");
        assert_eq!(rd("https://gw.example/y"), "https://gw.example/y");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "https://evil.example/",
            "https://app.example.evil.example/",
            "https://user@app.example/",
            "javascript:alert(1)",
            "http://app.example/",
            "evil.example",
            "",
        ] {
            assert_eq!(rd(bad), "/", "{bad}");
        }
        assert_eq!(safe_redirect(None, &settings), "/");
        assert_eq!(absolute("/a", &settings), "https://gw.example/a");
    }
}
