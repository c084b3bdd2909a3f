//! `[cors]`: preflights answered before credentials and never proxied; the CORS headers on
//! every answer to an allowed origin, refusals and built-in endpoints included; a route's
//! `cors = false`; `check` refusing `*` with credentials.

use super::*;

const ALLOW_ORIGIN: &str = "access-control-allow-origin";

fn preflight<'a>(origin: &'a str, method: &'a str, headers: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
    ];
    if !headers.is_empty() {
        h.push(("Access-Control-Request-Headers", headers));
    }
    h
}

/// Whether any `Access-Control-Allow-*` header is there.
fn allows_anything(r: &Response) -> bool {
    r.headers
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-allow"))
}

#[tokio::test]
async fn a_preflight_is_answered_without_credentials_and_never_proxied() {
    // The routes' upstream is a closed port: a preflight that went upstream would be a 502.
    let toml = config()
        .without_echo()
        .table("[[upstreams]]\nname = \"echo\"\ntargets = [\"127.0.0.1:1\"]");
    let gw = Gateway::start_with_files(
        &toml.build(),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await;
    let r = gw
        .request(
            "OPTIONS",
            "/api/orders",
            &preflight(APP, "POST", "Content-Type, Authorization"),
            "",
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.is_empty());
    assert_eq!(r.header(ALLOW_ORIGIN), Some(APP));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, content-type, x-api-key, x-request-id")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));

    // Refused preflights: 204 with no Access-Control-Allow-* (the browser then refuses).
    let mut checks = Checks::new();
    for (case, headers, path) in [
        (
            "another origin",
            preflight("https://evil.test", "GET", ""),
            "/api/x",
        ),
        (
            "a method not allowed",
            preflight(APP, "TRACE", ""),
            "/api/x",
        ),
        (
            "a header not allowed",
            preflight(APP, "GET", "X-User-Id"),
            "/api/x",
        ),
        (
            "a route with cors = false",
            preflight(APP, "GET", ""),
            "/private/x",
        ),
    ] {
        let r = gw.request("OPTIONS", path, &headers, "").await;
        checks.eq(case, (r.status, allows_anything(&r)), (204, false));
    }
    // The built-in endpoints answer preflights too: a page on another origin logs in.
    let r = gw
        .request(
            "OPTIONS",
            "/auth/login",
            &preflight(APP, "POST", "content-type"),
            "",
        )
        .await;
    checks.eq("login's preflight", r.header(ALLOW_ORIGIN), Some(APP));
    // An OPTIONS that is no preflight goes through the pipeline: no credential, 401.
    let r = gw
        .request("OPTIONS", "/api/x", &[("Origin", APP)], "")
        .await;
    checks.eq("a plain OPTIONS", r.status, 401);
}

/// (case, method, path, headers, status)
type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, String)>, u16);

#[tokio::test]
async fn every_answer_to_an_allowed_origin_carries_the_cors_headers() {
    let gw = start().await;
    let token = bearer(&alice());
    let from_app = |extra: &[(&'static str, String)]| {
        let mut h: Vec<(&str, String)> = vec![("Origin", APP.to_string())];
        h.extend(extra.iter().cloned());
        h
    };
    let mut checks = Checks::new();
    let cases: Vec<Case> = vec![
        (
            "proxied",
            "GET",
            "/api/x",
            from_app(&[("Authorization", token.clone())]),
            200,
        ),
        ("no credential (401)", "GET", "/api/x", from_app(&[]), 401),
        (
            "a bad token (401)",
            "GET",
            "/api/x",
            from_app(&[("Authorization", "Bearer nope".into())]),
            401,
        ),
        ("no route (404)", "GET", "/nowhere", from_app(&[]), 404),
        (
            "a refused path (400)",
            "GET",
            "/api/a%2Fb",
            from_app(&[]),
            400,
        ),
        (
            "the JWKS",
            "GET",
            "/.well-known/jwks.json",
            from_app(&[]),
            200,
        ),
        (
            "login refused (401)",
            "POST",
            "/auth/login",
            from_app(&[("Content-Type", "application/json".into())]),
            400,
        ),
    ];
    for (case, method, path, headers, status) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = if method == "POST" { "{}" } else { "" };
        let r = gw.request(method, path, &h, body).await;
        checks.eq((case, "status"), r.status, status);
        checks.eq((case, "allow-origin"), r.header(ALLOW_ORIGIN), Some(APP));
        checks.eq(
            (case, "credentials"),
            r.header("access-control-allow-credentials"),
            Some("true"),
        );
        checks.that(
            (case, "expose"),
            r.header("access-control-expose-headers")
                .is_some_and(|e| e.contains("x-request-id") && e.contains("ratelimit-remaining")),
        );
        checks.that(
            (case, "vary"),
            r.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("vary") && v.contains("Origin")),
        );
    }
    // A rate-limit refusal too, with its headers exposed to the page.
    for _ in 0..3 {
        gw.get("/limited/x", &[("Origin", APP), ("Authorization", &token)])
            .await;
    }
    let r = gw
        .get("/limited/x", &[("Origin", APP), ("Authorization", &token)])
        .await;
    checks.eq("429", (r.status, r.header(ALLOW_ORIGIN)), (429, Some(APP)));

    // Another origin, and a route with cors = false, get none of it.
    let r = gw
        .get(
            "/api/x",
            &[("Origin", "https://evil.test"), ("Authorization", &token)],
        )
        .await;
    checks.eq(
        "another origin",
        (r.status, r.header(ALLOW_ORIGIN)),
        (200, None),
    );
    let r = gw
        .get("/private/x", &[("Origin", APP), ("Authorization", &token)])
        .await;
    checks.eq(
        "cors = false",
        (r.status, r.header(ALLOW_ORIGIN)),
        (200, None),
    );
    // Without an Origin (not a browser's cross-origin call), nothing is added.
    let r = gw.get("/api/x", &[("Authorization", &token)]).await;
    checks.eq("no Origin", r.header(ALLOW_ORIGIN), None);
}

/// Without `[cors]`, nothing changes: a preflight is an ordinary OPTIONS request.
#[tokio::test]
async fn without_cors_a_preflight_is_an_ordinary_request() {
    let gw = Gateway::start(
        &toml().route("api", "/api/**", "").build(),
        start_echo().await,
    )
    .await;
    let r = gw
        .request("OPTIONS", "/api/x", &preflight(APP, "GET", ""), "")
        .await;
    r.assert_refusal(401, "missing_credentials");
    assert!(!allows_anything(&r));
}

#[test]
fn check_refuses_any_origin_with_credentials_and_bad_origins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[cors]
allowed_origins = ["*", "https://app.test/path", "app.test"]
allow_credentials = true
allowed_methods = ["get"]

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/**"
upstream = "echo"
auth = "none"
cors = false
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "gateway.toml:5:20: cors.allowed_origins[0]: `*` (any origin) cannot go with allow_credentials = true",
        "gateway.toml:5:25: cors.allowed_origins[1]: `https://app.test/path` is not an origin",
        "gateway.toml:5:50: cors.allowed_origins[2]: `app.test` is not an origin",
        "gateway.toml:7:20: cors.allowed_methods[0]: `get` is not an upper-case HTTP method",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

/// The answer names the origin as the browser serialises it, never the header as sent: a
/// browser compares the serialised form, and refuses an answer that echoes another spelling.
#[tokio::test]
async fn the_allowed_origin_is_answered_in_its_serialised_form() {
    let gw = start().await;
    let token = bearer(&alice());
    for sent in [
        "HTTPS://APP.TEST",
        "https://app.test:443",
        "https://App.Test",
    ] {
        let r = gw
            .get(
                "/api/orders",
                &[("Origin", sent), ("Authorization", &token)],
            )
            .await;
        assert_eq!(r.status, 200, "{sent}");
        assert_eq!(r.header(ALLOW_ORIGIN), Some(APP), "{sent}");
    }
}
