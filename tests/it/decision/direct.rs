//! The decision listener on its own: the three ways a proxy describes a request, untrusted
//! peers, refusals and normalisation as on the proxy, what an allowed answer carries, and
//! the logs and metrics of decisions. Its upstream is a listener that counts connections: a
//! decision never contacts it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

use super::*;

/// A listener that counts the connections it is offered.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok(_conn) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count)
}

#[tokio::test]
async fn the_forwarded_request_is_judged_as_the_proxy_would() {
    let (upstream, connections) = counting_upstream().await;
    let viewer = bearer(&token("alice", &["viewer"]));
    let traefik = |method: &'static str, uri: &'static str| {
        vec![("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri)]
    };
    let nginx = |method: &'static str, uri: &'static str| {
        vec![("X-Original-Method", method), ("X-Original-URI", uri)]
    };

    // Allowed: 200, no body, the identity headers as the upstream would get them.
    for (form, mut headers) in [
        ("x-forwarded", traefik("GET", "/api/orders?x=1")),
        ("x-original", nginx("GET", "/api/orders?x=1")),
    ] {
        let (_gw, decision) = start(upstream, form).await;
        headers.push(("Authorization", &viewer));
        headers.push(("X-User-Id", "admin"));
        let r = call(decision, "GET", "/", &headers).await;
        assert_eq!(
            r.status,
            200,
            "{form}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.body.is_empty(), "{form}");
        assert_eq!(r.header("x-user-id"), Some("alice"), "{form}");
        assert_eq!(r.header("x-user-roles"), Some("viewer"), "{form}");
        assert_eq!(
            r.header("x-user-permissions"),
            Some("orders:read"),
            "{form}"
        );
        assert_eq!(r.header("x-auth-method"), Some("jwt"), "{form}");
        assert!(r.header("x-request-id").is_some(), "{form}");
    }
    let (_gw, decision) = start(upstream, "x-forwarded").await;
    // An anonymous caller on an open route: every identity header, empty, so that a proxy
    // copying them overwrites what the client sent.
    let r = call(decision, "GET", "/", &traefik("GET", "/public/x")).await;
    assert_eq!(r.status, 200);
    for header in [
        "x-user-id",
        "x-user-roles",
        "x-user-permissions",
        "x-auth-method",
        "x-user-email",
    ] {
        assert_eq!(r.header(header), Some(""), "{header}");
    }
    let r = call(
        decision,
        "GET",
        "/",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/limited/x"),
            ("Authorization", &viewer),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.header("ratelimit-limit")),
        (200, Some("5")),
        "the limits' headers"
    );

    // Refused, exactly as on the proxy.
    let mut checks = Checks::new();
    for (case, method, uri, auth, status, error) in [
        (
            "no credential",
            "GET",
            "/api/orders",
            "",
            401,
            "missing_credentials",
        ),
        (
            "a bad token",
            "GET",
            "/api/orders",
            "Bearer nope",
            401,
            "invalid_token",
        ),
        (
            "the wrong role",
            "GET",
            "/admin/settings",
            viewer.as_str(),
            403,
            "insufficient_scope",
        ),
        // The front proxy forwards its own copy: a path normalising would change is refused.
        (
            "a dot-segment trick",
            "GET",
            "/public/../admin/x",
            viewer.as_str(),
            400,
            "invalid_request",
        ),
        (
            "an encoded one",
            "GET",
            "/public/%2e%2e/admin/x",
            viewer.as_str(),
            400,
            "invalid_request",
        ),
        (
            "a semicolon",
            "GET",
            "/admin;x=1/settings",
            viewer.as_str(),
            400,
            "invalid_request",
        ),
        (
            "an encoded slash",
            "GET",
            "/api/a%2Fb",
            viewer.as_str(),
            400,
            "invalid_request",
        ),
        (
            "no route",
            "GET",
            "/nowhere",
            viewer.as_str(),
            404,
            "not_found",
        ),
        (
            "a built-in endpoint",
            "POST",
            "/auth/login",
            "",
            404,
            "not_found",
        ),
    ] {
        let mut h = vec![("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri)];
        if !auth.is_empty() {
            h.push(("Authorization", auth));
        }
        let r = call(decision, "GET", "/", &h).await;
        checks.eq(case, r.status, status);
        checks.eq((case, "error"), r.json()["error"].clone(), error.into());
    }
    let r = call(decision, "GET", "/", &traefik("GET", "/api/x")).await;
    checks.eq(
        "the challenge",
        r.header("www-authenticate"),
        Some(r#"Bearer realm="portcullis""#),
    );
    // An absolute URI as the target: not origin-form.
    let r = call(
        decision,
        "GET",
        "/",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "https://api.test/admin/x?y"),
            ("Authorization", &viewer),
        ],
    )
    .await;
    checks.eq("an absolute URI", r.status, 400);
    drop(checks);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the upstream was never contacted"
    );
}

/// Envoy's `ext_authz` (HTTP) sends the request itself, its path behind `path_prefix`.
#[tokio::test]
async fn envoys_form_is_the_request_itself_less_the_prefix() {
    let (upstream, _) = counting_upstream().await;
    let decision: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let toml = config_form(decision, "path")
        .replace("[decision]\n", "[decision]\npath_prefix = \"/check\"\n");
    let (gw, decision) = start_toml(upstream, decision, &toml).await;
    let viewer = bearer(&token("alice", &["viewer"]));
    let mut checks = Checks::new();
    for (target, auth, status) in [
        ("/check/api/orders?x=1", viewer.as_str(), 200),
        ("/check/admin/x", viewer.as_str(), 403),
        ("/check/api/orders", "", 401),
        ("/check/public/../admin/x", viewer.as_str(), 400),
        // Not under the prefix: no request is described.
        ("/checking/api/orders", viewer.as_str(), 400),
        ("/api/orders", viewer.as_str(), 400),
    ] {
        let h: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth)]
        };
        let r = call(decision, "POST", target, &h).await;
        checks.eq(target, r.status, status);
    }
    let r = call(
        decision,
        "GET",
        "/check/api/orders",
        &[("Authorization", &viewer)],
    )
    .await;
    checks.eq("identity", r.header("x-user-id"), Some("alice"));
    drop(gw);
}

/// A peer outside `trusted_proxies` could describe any request: 403 `untrusted_proxy`.
#[tokio::test]
async fn an_untrusted_peer_gets_no_decision() {
    let (upstream, _) = counting_upstream().await;
    let (_gw, decision) = start(upstream, "x-forwarded").await;
    // From 127.0.0.2: loopback, but not the trusted 127.0.0.1/32.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = socket.connect(decision).await.unwrap();
    let viewer = bearer(&token("alice", &["viewer"]));
    let raw = raw_request(
        "decision.test",
        "GET",
        "/",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/api/orders"),
            ("Authorization", &viewer),
        ],
        "",
    );
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains(r#""error":"untrusted_proxy""#), "{text}");
}

#[tokio::test]
async fn decisions_are_logged_and_counted_as_decisions() {
    let (upstream, _) = counting_upstream().await;
    let (gw, decision) = start(upstream, "x-forwarded").await;
    let viewer = bearer(&token("alice", &["viewer"]));
    for auth in [viewer.as_str(), "Bearer nope"] {
        call(
            decision,
            "GET",
            "/",
            &[
                ("X-Forwarded-Method", "DELETE"),
                ("X-Forwarded-Uri", "/api/orders/7"),
                ("Authorization", auth),
            ],
        )
        .await;
    }
    let metrics = gw.admin_request("GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    for want in [
        r#"portcullis_decisions_total{route="api",status="200"} 1"#,
        r#"portcullis_decisions_total{route="api",status="401"} 1"#,
        r#"portcullis_auth_failures_total{reason="invalid_token"} 1"#,
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    assert!(
        !text.contains("portcullis_requests_total{route=\"api\""),
        "{text}"
    );
    let logs = gw.settled_stdout().await;
    let access: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(r#""target":"access""#) && l.contains(r#""decision":true"#))
        .collect();
    assert_eq!(access.len(), 2, "{logs}");
    assert!(
        access[0].contains(r#""method":"DELETE""#)
            && access[0].contains(r#""path":"/api/orders/7""#)
    );
    assert!(access[0].contains(r#""subject":"alice""#));
    assert!(logs.contains(r#""event":"refused""#) && logs.contains(r#""decision":true"#));
    assert!(!logs.contains(&viewer[7..]), "no token in the logs");
}

/// Browsers behind a front proxy get what they would get directly: a preflight described to
/// the decision listener is allowed without a credential (200, with the `Access-Control-*`
/// headers to copy), and every decision answer to an allowed origin carries the CORS headers.
#[tokio::test]
async fn browsers_behind_the_front_proxy_get_cors_answers() {
    let (upstream, _) = counting_upstream().await;
    let decision: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let toml = config_form(decision, "x-forwarded").replace(
        "[admin]",
        "[cors]\nallowed_origins = [\"https://app.example.com\"]\n\n[admin]",
    );
    let (_gw, decision) = start_toml(upstream, decision, &toml).await;
    let origin = "https://app.example.com";
    let mut checks = Checks::new();
    let preflight = |origin: &'static str| {
        vec![
            ("X-Forwarded-Method", "OPTIONS"),
            ("X-Forwarded-Uri", "/api/orders"),
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
        ]
    };
    let r = call(decision, "GET", "/", &preflight(origin)).await;
    checks.eq("a preflight's status", r.status, 200);
    checks.eq(
        "its allowed origin",
        r.header("access-control-allow-origin"),
        Some(origin),
    );
    checks.eq(
        "its methods",
        r.header("access-control-allow-methods").is_some(),
        true,
    );
    let r = call(decision, "GET", "/", &preflight("https://evil.example")).await;
    checks.eq("a foreign origin's preflight", r.status, 200);
    checks.eq(
        "with nothing to allow",
        r.header("access-control-allow-origin"),
        None,
    );
    // A refusal and an allowed decision, both to the allowed origin.
    let viewer = bearer(&token("alice", &["viewer"]));
    for (what, auth, status) in [("refused", "", 401), ("allowed", viewer.as_str(), 200)] {
        let mut h = vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/api/orders"),
            ("Origin", origin),
        ];
        if !auth.is_empty() {
            h.push(("Authorization", auth));
        }
        let r = call(decision, "GET", "/", &h).await;
        checks.eq(format!("{what}: status"), r.status, status);
        checks.eq(
            format!("{what}: the CORS origin"),
            r.header("access-control-allow-origin"),
            Some(origin),
        );
        checks.eq(format!("{what}: Vary"), r.header("vary"), Some("Origin"));
    }
}

/// Only the source `forwarded` names describes the judged request: under `x-original`, a
/// client's own `X-Forwarded-Uri` (nginx relays every client header to its subrequest) is
/// ignored, and a source without its method or target describes nothing (400).
#[tokio::test]
async fn only_the_named_source_describes_the_request() {
    let (upstream, connections) = counting_upstream().await;
    let (_gw, decision) = start(upstream, "x-original").await;
    let viewer = bearer(&token("alice", &["viewer"]));
    let mut checks = Checks::new();
    for (case, headers, status) in [
        (
            "a spoofed X-Forwarded-Uri beside the real target",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/admin/secret"),
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
                ("Authorization", viewer.as_str()),
            ],
            403,
        ),
        (
            "the other form alone",
            vec![
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
            ],
            400,
        ),
        (
            "a target without its method",
            vec![("X-Original-URI", "/public/x")],
            400,
        ),
        (
            "a method without its target",
            vec![("X-Original-Method", "GET")],
            400,
        ),
        (
            "a repeated target",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/admin/secret"),
                ("X-Original-URI", "/public/x"),
            ],
            400,
        ),
        (
            "the real target",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/public/x"),
            ],
            200,
        ),
    ] {
        let r = call(decision, "GET", "/", &headers).await;
        checks.eq(case, r.status, status);
    }
    drop(checks);
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

/// A target nginx and the upstream would read as another path than the one judged: a
/// fragment (`/admin/secret#/../../public/x` is judged `/public/x` by RFC 3986 and served as
/// `/admin/secret`), a space, a control or a non-ASCII byte: 400.
#[tokio::test]
async fn targets_that_hide_another_path_are_refused() {
    let (upstream, _) = counting_upstream().await;
    let (_gw, decision) = start(upstream, "x-forwarded").await;
    let mut checks = Checks::new();
    for target in [
        "/admin/secret#/../../public/x",
        "/public/x#frag",
        "/public/a b",
        "/public/a\tb",
        "/public/caf\u{e9}",
    ] {
        let r = call(
            decision,
            "GET",
            "/",
            &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", target)],
        )
        .await;
        checks.eq(target, r.status, 400);
    }
}

/// Front proxies do not relay `Connection`: a WebSocket handshake is told by its
/// `Sec-WebSocket-Key` (or `Upgrade`), and the session cookie's Origin rule applies to it.
#[tokio::test]
async fn websocket_handshakes_behind_a_proxy_get_the_cookies_origin_rule() {
    let (upstream, _) = counting_upstream().await;
    let decision: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let toml = format!(
        "{}\n[login]\nusers_file = \"users.toml\"\ncookie = {{ name = \"pc_session\", secure = false }}\n",
        config_form(decision, "x-forwarded")
    );
    let users = "users = []\n";
    let (_gw, decision) = start_files(upstream, decision, &toml, &[("users.toml", users)]).await;
    let cookie = format!("pc_session={}", token("alice", &["viewer"]));
    let mut checks = Checks::new();
    for (case, extra, status) in [
        (
            "a key, another origin",
            vec![
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Origin", "https://evil.test"),
            ],
            403,
        ),
        (
            "an Upgrade, another origin",
            vec![("Upgrade", "websocket"), ("Origin", "https://evil.test")],
            403,
        ),
        (
            "a key, its own origin",
            vec![
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", "app.test"),
                ("Origin", "http://app.test"),
            ],
            200,
        ),
        ("a plain GET", vec![("Origin", "https://evil.test")], 200),
    ] {
        let mut h = vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/api/ws"),
            ("Cookie", cookie.as_str()),
        ];
        h.extend(extra);
        let r = call(decision, "GET", "/", &h).await;
        checks.eq(case, r.status, status);
    }
}
