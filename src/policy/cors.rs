//! Browsers on other origins (docs/CONFIG.md, `[cors]`): which origins may call, what a preflight is
//! answered, the headers every answer to an allowed origin carries, and the CSRF rule for
//! the session cookie. Plain data and pure functions: the proxy decides when they apply.

use std::collections::HashSet;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, REFERER,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::headers::{X_FORWARDED_HOST, X_FORWARDED_PROTO};

/// `[cors]`, compiled: origins in their serialised form (RFC 6454: scheme, host, port
/// unless the scheme's default), header names lower-cased, the answers' values made once.
#[derive(Debug, Clone)]
pub(crate) struct Cors {
    origins: HashSet<String>,
    any_origin: bool,
    methods: Vec<Method>,
    headers: HashSet<String>,
    credentials: bool,
    methods_value: HeaderValue,
    headers_value: HeaderValue,
    expose_value: HeaderValue,
    max_age_value: HeaderValue,
}

/// What the config gives `Cors::new` (checked by the validator).
pub(crate) struct CorsSpec {
    /// Serialised origins (`Cors::origin_of`), or `*`.
    pub origins: Vec<String>,
    pub methods: Vec<Method>,
    pub headers: Vec<HeaderName>,
    pub expose: Vec<HeaderName>,
    pub credentials: bool,
    pub max_age_secs: u64,
}

fn joined<T: AsRef<str>>(items: &[T]) -> HeaderValue {
    let text = items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&text).expect("method and header names are header-safe")
}

impl Cors {
    pub(crate) fn new(spec: CorsSpec) -> Cors {
        let any_origin = spec.origins.iter().any(|o| o == "*");
        let methods: Vec<&str> = spec.methods.iter().map(Method::as_str).collect();
        let headers: Vec<&str> = spec.headers.iter().map(HeaderName::as_str).collect();
        let expose: Vec<&str> = spec.expose.iter().map(HeaderName::as_str).collect();
        Cors {
            methods_value: joined(&methods),
            headers_value: joined(&headers),
            expose_value: joined(&expose),
            max_age_value: HeaderValue::from(spec.max_age_secs),
            origins: spec.origins.into_iter().filter(|o| o != "*").collect(),
            any_origin,
            headers: headers.iter().map(|h| h.to_string()).collect(),
            methods: spec.methods,
            credentials: spec.credentials,
        }
    }

    /// The request's `Origin` in its serialised form (RFC 6454: what the browser compares,
    /// never the raw header), when it is one of the allowed ones.
    pub(crate) fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = origin_of(headers.get(ORIGIN)?.to_str().ok()?)?;
        let allowed = self.any_origin || self.origins.contains(&origin);
        allowed.then(|| HeaderValue::from_str(&origin).ok())?
    }

    #[cfg(test)]
    fn allows(&self, origin: &str) -> bool {
        match origin_of(origin) {
            Some(o) => self.any_origin || self.origins.contains(&o),
            None => false,
        }
    }

    /// An origin `allowed_origins` names exactly (`*` is no origin of a site of ours).
    pub(crate) fn lists(&self, origin: &str) -> bool {
        self.origins.contains(origin)
    }

    /// The headers every answer to `origin` (an allowed one) carries. `Vary: Origin` is the
    /// caller's to add, beside any `Vary` already there.
    pub(crate) fn response_headers(&self, origin: HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = vec![
            (ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (ACCESS_CONTROL_EXPOSE_HEADERS, self.expose_value.clone()),
        ];
        if self.credentials {
            out.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        out
    }

    /// A preflight's answer headers: empty unless the origin, the method and every requested
    /// header are allowed (the browser then refuses the call).
    pub(crate) fn preflight(&self, headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
        let Some(origin) = self.allowed_origin(headers) else {
            return Vec::new();
        };
        let method_ok = headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| self.methods.contains(&m));
        let headers_ok = headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .all(|line| {
                line.to_str().is_ok_and(|line| {
                    line.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .all(|h| self.headers.contains(&h))
                })
            });
        if !(method_ok && headers_ok) {
            return Vec::new();
        }
        let mut out = vec![
            (ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone()),
            (ACCESS_CONTROL_ALLOW_HEADERS, self.headers_value.clone()),
            (ACCESS_CONTROL_MAX_AGE, self.max_age_value.clone()),
        ];
        if self.credentials {
            out.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        out
    }
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The method a preflight asks about.
pub(crate) fn requested_method(headers: &HeaderMap) -> Option<Method> {
    headers
        .get(ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
}

/// The serialised origin of a URL or origin string (lower-case scheme and host, the port
/// only when not the scheme's default), or `None` for an opaque or unreadable one
/// (`null`, `file:`...).
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// How the gateway's own origin is told: the scheme of the connection and the `Host`, or
/// what a trusted proxy in front says of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    pub tls: bool,
    pub peer_trusted: bool,
}

impl Site {
    /// The origin this request was sent to.
    pub(crate) fn own_origin(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Option<String> {
        let forwarded = |name: &HeaderName| {
            self.peer_trusted
                .then(|| headers.get(name)?.to_str().ok())
                .flatten()
                .and_then(|v| v.split(',').next())
                .map(str::trim)
        };
        let scheme =
            forwarded(&X_FORWARDED_PROTO).unwrap_or(if self.tls { "https" } else { "http" });
        let host = forwarded(&X_FORWARDED_HOST)
            .or_else(|| headers.get(HOST)?.to_str().ok())
            .or(authority)?;
        origin_of(&format!("{scheme}://{host}"))
    }
}

/// The CSRF rule for a request the session cookie authenticated: its `Origin` (else its
/// `Referer`) must be the gateway's own or one `[cors]` allows. Whether the method needs it
/// is the caller's to say.
pub(crate) fn cross_site_allowed(
    headers: &HeaderMap,
    own: Option<&str>,
    cors: Option<&Cors>,
) -> bool {
    let claimed = match headers.get(ORIGIN) {
        Some(o) => o.to_str().ok().and_then(origin_of),
        None => headers
            .get(REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(origin_of),
    };
    let Some(claimed) = claimed else {
        return false;
    };
    own == Some(claimed.as_str()) || cors.is_some_and(|c| c.lists(&claimed))
}

/// Methods that change nothing (RFC 9110 section 9.2.1): the cookie needs no origin check.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::new(CorsSpec {
            origins: origins.iter().map(|o| o.to_string()).collect(),
            methods: vec![Method::GET, Method::POST],
            headers: vec![http::header::AUTHORIZATION, http::header::CONTENT_TYPE],
            expose: vec![HeaderName::from_static("x-request-id")],
            credentials,
            max_age_secs: 600,
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn origins_are_compared_serialised() {
        assert_eq!(
            origin_of("HTTPS://App.Example.com:443/x?y").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://a.test:8080").as_deref(),
            Some("http://a.test:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc/passwd"), None);
        let c = cors(&["https://app.example.com"], false);
        assert!(c.allows("https://APP.example.com"));
        assert!(!c.allows("https://app.example.com.evil.test"));
        assert!(!c.allows("http://app.example.com"));
        assert!(cors(&["*"], false).allows("https://anything.test"));
    }

    /// The answer names the origin as a browser serialises it, never the header as sent: a
    /// case or a default port the browser would not write makes the browser refuse it.
    #[test]
    fn the_allowed_origin_is_answered_serialised() {
        let c = cors(&["https://app.example.com"], false);
        let h = headers(&[("origin", "HTTPS://App.Example.com:443")]);
        assert_eq!(
            c.allowed_origin(&h).unwrap(),
            HeaderValue::from_static("https://app.example.com")
        );
        let h = headers(&[("origin", "https://evil.test")]);
        assert_eq!(c.allowed_origin(&h), None);
    }

    #[test]
    fn a_preflight_is_answered_only_when_everything_is_allowed() {
        let c = cors(&["https://app.test"], true);
        let ok = c.preflight(&headers(&[
            ("origin", "https://app.test"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "Content-Type, authorization",
            ),
        ]));
        let names: Vec<_> = ok.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"access-control-allow-credentials"),
            "{names:?}"
        );
        assert_eq!(ok[0].1, "https://app.test");
        for bad in [
            headers(&[
                ("origin", "https://evil.test"),
                ("access-control-request-method", "GET"),
            ]),
            headers(&[
                ("origin", "https://app.test"),
                ("access-control-request-method", "DELETE"),
            ]),
            headers(&[
                ("origin", "https://app.test"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-user-id"),
            ]),
        ] {
            assert!(c.preflight(&bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_needs_its_own_or_an_allowed_origin() {
        let c = cors(&["https://app.test"], true);
        let own = Some("https://api.test");
        assert!(cross_site_allowed(
            &headers(&[("origin", "https://api.test")]),
            own,
            Some(&c)
        ));
        assert!(cross_site_allowed(
            &headers(&[("origin", "https://app.test")]),
            own,
            Some(&c)
        ));
        assert!(cross_site_allowed(
            &headers(&[("referer", "https://api.test/page?x")]),
            own,
            None
        ));
        assert!(!cross_site_allowed(
            &headers(&[("origin", "https://evil.test")]),
            own,
            Some(&c)
        ));
        assert!(!cross_site_allowed(
            &headers(&[("origin", "null")]),
            own,
            Some(&c)
        ));
        assert!(
            !cross_site_allowed(&headers(&[]), own, Some(&c)),
            "neither header"
        );
        // Origin wins over a Referer that would pass.
        assert!(!cross_site_allowed(
            &headers(&[
                ("origin", "https://evil.test"),
                ("referer", "https://api.test/")
            ]),
            own,
            None
        ));
        // `*` lets any origin read, never any origin post with the cookie.
        let any = cors(&["*"], false);
        assert!(!cross_site_allowed(
            &headers(&[("origin", "https://evil.test")]),
            own,
            Some(&any)
        ));
    }

    #[test]
    fn the_own_origin_is_the_hosts_or_a_trusted_proxys() {
        let h = headers(&[
            ("host", "api.test:8443"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.test"),
        ]);
        let direct = Site {
            tls: false,
            peer_trusted: false,
        };
        assert_eq!(
            direct.own_origin(&h, None).as_deref(),
            Some("http://api.test:8443")
        );
        let behind = Site {
            tls: false,
            peer_trusted: true,
        };
        assert_eq!(
            behind.own_origin(&h, None).as_deref(),
            Some("https://public.test")
        );
        let h2 = Site {
            tls: true,
            peer_trusted: false,
        };
        assert_eq!(
            h2.own_origin(&HeaderMap::new(), Some("api.test"))
                .as_deref(),
            Some("https://api.test")
        );
    }
}
