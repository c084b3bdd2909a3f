//! The bypasses gateways of this kind were advised about (SPEC section 3, steps 3, 4, 5, 8
//! and 11): header aliases, forwarding and rewrite headers, `X-Forwarded-For` on several
//! lines, path parameters, HEAD on GET routes, and identities a header cannot carry.

use serde_json::json;

use crate::standard;
use crate::support::*;

fn token(sub: &str, roles: &[&str]) -> String {
    bearer(&hs_token(&access_claims(sub, roles)))
}

fn trusting(proxies: &str) -> String {
    standard()
        .server(&format!("trusted_proxies = [\"{proxies}\"]"))
        .build()
}

/// Names the echo upstream must not have received (it lower-cases names, keeps `_`).
fn assert_absent(echo: &Echo, names: &[&str]) {
    for name in names {
        let name = name.to_ascii_lowercase();
        assert!(
            !echo.headers.contains_key(&name),
            "`{name}` reached the upstream: {:?}",
            echo.headers
        );
    }
}

const ALIASES: &[(&str, &str)] = &[
    ("X_User_Id", "admin"),
    ("X-User_Id", "admin"),
    ("x_user_roles", "admin"),
    ("X_User_Permissions", "*"),
    ("X_Auth_Method", "api_key"),
    ("X_User_Email", "mallory@evil.test"),
    ("X_Forwarded_For", "6.6.6.6"),
    ("x_forwarded_proto", "https"),
    ("X_Forwarded_Host", "evil.test"),
    ("X_Request_Id", "forged"),
];

#[tokio::test]
async fn underscore_aliases_of_our_headers_never_reach_the_upstream() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let alice = token("alice", &["user"]);
    for (path, auth) in [
        ("/api/orders", Some(alice.as_str())),
        ("/maybe/x", Some(alice.as_str())),
        ("/maybe/x", None),
        ("/public/x", None),
    ] {
        let mut headers: Vec<(&str, &str)> = ALIASES.to_vec();
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let echo = gw.get(path, &headers).await.echo();
        let names: Vec<&str> = ALIASES.iter().map(|(n, _)| *n).collect();
        assert_absent(&echo, &names);
        if auth.is_some() {
            assert_eq!(echo.headers["x-user-id"], ["alice"], "{path}");
        }
    }
}

#[tokio::test]
async fn underscore_aliases_are_removed_from_trusted_proxies_too() {
    let gw = Gateway::start(&trusting("127.0.0.0/8"), start_echo().await).await;
    let echo = gw.get("/public/x", ALIASES).await.echo();
    let names: Vec<&str> = ALIASES.iter().map(|(n, _)| *n).collect();
    assert_absent(&echo, &names);
}

const REWRITES: &[(&str, &str)] = &[
    ("X-Original-URL", "/admin/settings"),
    ("X-Rewrite-URL", "/admin/settings"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
];

#[tokio::test]
async fn rewrite_and_method_override_headers_are_removed_from_every_peer() {
    for config in [standard().build(), trusting("127.0.0.0/8")] {
        let gw = Gateway::start(&config, start_echo().await).await;
        let echo = gw.get("/public/x", REWRITES).await.echo();
        let names: Vec<&str> = REWRITES.iter().map(|(n, _)| *n).collect();
        assert_absent(&echo, &names);
    }
}

const FORWARDING: &[(&str, &str)] = &[
    ("Forwarded", "for=6.6.6.6;proto=https"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Forwarded-Server", "evil.test"),
];

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_removed() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let echo = gw.get("/public/x", FORWARDING).await.echo();
    let names: Vec<&str> = FORWARDING.iter().map(|(n, _)| *n).collect();
    assert_absent(&echo, &names);
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_kept() {
    let gw = Gateway::start(&trusting("127.0.0.0/8"), start_echo().await).await;
    let echo = gw.get("/public/x", FORWARDING).await.echo();
    for (name, value) in FORWARDING {
        assert_eq!(
            echo.headers[&name.to_ascii_lowercase()],
            [*value],
            "{name} from a trusted proxy"
        );
    }
}

/// HAProxy's `option forwardfor` adds a line of its own: every line, in order, is one list,
/// for the client IP and for what goes upstream alike.
#[tokio::test]
async fn forwarded_for_on_several_lines_is_one_list() {
    let gw = Gateway::start(&trusting("127.0.0.0/8"), start_echo().await).await;
    let r = gw
        .get(
            "/public/x",
            &[
                ("X-Request-Id", "xff-lines"),
                ("X-Forwarded-For", "203.0.113.7, 198.51.100.1"),
                ("X-Forwarded-For", "192.0.2.44"),
            ],
        )
        .await;
    assert_eq!(
        r.echo().headers["x-forwarded-for"],
        ["203.0.113.7, 198.51.100.1, 192.0.2.44, 127.0.0.1"]
    );
    let logs = gw.settled_stdout().await;
    let line = logs
        .lines()
        .find(|l| l.contains(r#""request_id":"xff-lines""#))
        .unwrap();
    assert!(line.contains(r#""client_ip":"192.0.2.44""#), "{line}");
}

/// `/admin;x=1/users` is `/admin/users` to Tomcat, Jetty and Spring: it must not fall through
/// to a weaker route.
fn with_catch_all(server_extra: &str) -> String {
    standard()
        .server(server_extra)
        .route("catch-all", "/**", r#"auth = "optional""#)
        .build()
}

#[tokio::test]
async fn semicolons_in_the_path_are_refused() {
    let gw = Gateway::start(&with_catch_all(""), start_echo().await).await;
    for path in [
        "/admin;x=1/users",
        "/admin%3Bx=1/users",
        "/admin%3bx=1/users",
        "/admin/users;jsessionid=1",
        "/public/x;y",
    ] {
        gw.get(path, &[])
            .await
            .assert_refusal(400, "invalid_request");
    }
}

#[tokio::test]
async fn allow_path_semicolons_restores_them_but_not_dot_segments() {
    let config = with_catch_all("allow_path_semicolons = true");
    let gw = Gateway::start(&config, start_echo().await).await;
    assert_eq!(
        gw.get("/other;v=1/x", &[]).await.echo().path,
        "/other;v=1/x"
    );
    for path in ["/public/..;/admin/x", "/public/%2e%2e;/admin/x", "/a/.;x/b"] {
        gw.get(path, &[])
            .await
            .assert_refusal(400, "invalid_request");
    }
}

/// `/api/audit` allows GET only and needs `audit:read`; `/api/**` after it needs `viewer`. A
/// HEAD must be judged by the GET route, not fall through to the weaker one.
#[tokio::test]
async fn head_is_judged_by_the_get_route() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let user = token("bob", &["user"]);
    let r = gw
        .request("HEAD", "/api/audit", &[("Authorization", &user)], "")
        .await;
    assert_eq!(r.status, 403, "HEAD fell through to /api/**");
    let auditor = token("ann", &["auditor"]);
    let r = gw
        .request("HEAD", "/api/audit", &[("Authorization", &auditor)], "")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn subjects_with_control_characters_are_refused() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    for sub in [
        "alice\r\nX-Admin: 1",
        "alice\n",
        "a\u{0}b",
        "tab\there",
        "del\u{7f}",
    ] {
        let t = bearer(&hs_token(&access_claims(sub, &["user"])));
        let r = gw.get("/api/orders", &[("Authorization", &t)]).await;
        let body = r.assert_refusal(401, "invalid_token");
        assert_eq!(body["error_description"], "subject cannot be forwarded");
        // Not on an optional route either: the caller would pass as nobody.
        let r = gw.get("/maybe/x", &[("Authorization", &t)]).await;
        r.assert_refusal(401, "invalid_token");
    }
    // Other characters a header can carry are fine.
    let t = bearer(&hs_token(&access_claims("José Ünïcode", &["user"])));
    let echo = gw.get("/api/orders", &[("Authorization", &t)]).await.echo();
    assert_eq!(echo.headers["x-user-id"].len(), 1);
}

#[tokio::test]
async fn a_claim_a_header_cannot_carry_is_left_out_and_logged() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let mut claims = access_claims("alice", &["user"]);
    claims.insert("email".into(), json!("alice@example.com\r\nX-Admin: 1"));
    claims.insert("org".into(), json!({"id": "org-7"}));
    let t = bearer(&hs_token(&claims));
    let echo = gw.get("/api/orders", &[("Authorization", &t)]).await.echo();
    assert_absent(&echo, &["x-user-email", "x-admin"]);
    assert_eq!(echo.headers["x-org-id"], ["org-7"]);
    assert_eq!(echo.headers["x-user-id"], ["alice"]);
    let logs = gw.settled_stdout().await;
    assert!(
        logs.contains("identity value is not a valid header value; left out")
            && logs.contains("x-user-email"),
        "{logs}"
    );
}
