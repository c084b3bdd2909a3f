//! SPEC section 3 end to end: identity headers, spoofing, paths, routing, refusals.

use serde_json::json;

use crate::standard;
use crate::support::*;

async fn gateway() -> Gateway {
    Gateway::start(&standard().build(), start_echo().await).await
}

fn token(sub: &str, roles: &[&str]) -> String {
    bearer(&hs_token(&access_claims(sub, roles)))
}

#[tokio::test]
async fn identity_headers_reach_the_upstream_and_spoofs_do_not() {
    let gw = gateway().await;
    let mut claims = access_claims("alice", &["user"]);
    claims.insert("email".into(), "alice@example.com".into());
    claims.insert("org".into(), json!({"id": "org-7"}));
    let auth = bearer(&hs_token(&claims));
    let r = gw
        .get(
            "/api/orders?limit=5&x=%2F",
            &[
                ("Authorization", &auth),
                ("X-User-Id", "admin"),
                ("x-user-id", "root"),
                ("X-USER-ROLES", "admin"),
                ("X-User-Permissions", "*"),
                ("X-Auth-Method", "api_key"),
                ("X-User-Email", "mallory@evil.test"),
                ("X-Org-Id", "org-1"),
            ],
        )
        .await;
    let echo = r.echo();
    assert_eq!(
        echo.headers["x-user-id"],
        ["alice"],
        "exactly once, the token's subject"
    );
    assert_eq!(echo.headers["x-user-roles"], ["user,viewer"]);
    assert_eq!(
        echo.headers["x-user-permissions"],
        ["orders:read,orders:write"]
    );
    assert_eq!(echo.headers["x-auth-method"], ["jwt"]);
    assert_eq!(echo.headers["x-user-email"], ["alice@example.com"]);
    assert_eq!(echo.headers["x-org-id"], ["org-7"]);
    assert!(
        !echo.headers.contains_key("authorization"),
        "credentials are not forwarded"
    );
    assert_eq!(echo.query, "limit=5&x=%2F", "the query is untouched");
    assert_eq!(echo.headers["x-forwarded-for"], ["127.0.0.1"]);
    assert_eq!(echo.headers["x-forwarded-proto"], ["http"]);
    assert_eq!(echo.headers["x-forwarded-host"], ["gateway.test"]);
    let rid = &echo.headers["x-request-id"][0];
    assert_eq!(r.header("x-request-id"), Some(rid.as_str()));
    // A refused token too: neither it nor the secret may reach any log line.
    let bad = format!("{}x", &auth[7..]);
    gw.get("/api/orders", &[("Authorization", &bearer(&bad))])
        .await
        .assert_refusal(401, "invalid_token");
    let logs = gw.settled_stdout().await + &gw.stderr();
    assert!(
        logs.contains(r#""subject":"alice""#),
        "the access log names the caller"
    );
    for secret in [&auth[7..], bad.as_str(), HS_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn spoofed_identity_is_removed_on_public_routes_too() {
    let gw = gateway().await;
    let echo = gw
        .get(
            "/public/info",
            &[
                ("X-User-Id", "admin"),
                ("X-User-Roles", "admin"),
                ("X-Forwarded-For", "6.6.6.6"),
            ],
        )
        .await
        .echo();
    for h in [
        "x-user-id",
        "x-user-roles",
        "x-user-permissions",
        "x-auth-method",
    ] {
        assert!(!echo.headers.contains_key(h), "{h} reached the upstream");
    }
    assert_eq!(
        echo.headers["x-forwarded-for"],
        ["127.0.0.1"],
        "an untrusted peer's XFF is replaced"
    );
    // A credential on an `auth = "none"` route is ignored, even an invalid one.
    let r = gw
        .get("/public/x", &[("Authorization", "Bearer not-a-jwt")])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let gw = gateway().await;
    let echo = gw
        .get("/public/x", &[("X-Request-Id", "client-chosen-42")])
        .await
        .echo();
    assert_eq!(echo.headers["x-request-id"], ["client-chosen-42"]);
    let long = "a".repeat(129);
    let r = gw.get("/public/x", &[("X-Request-Id", &long)]).await;
    let made = r.header("x-request-id").unwrap();
    assert_eq!(made.len(), 36, "a UUID replaces an over-long id");
    assert_eq!(r.echo().headers["x-request-id"], [made]);
}

#[tokio::test]
async fn roles_permissions_and_inheritance() {
    let gw = gateway().await;
    let mut own_permission = access_claims("p", &[]);
    own_permission.insert("permissions".into(), json!(["audit:read"]));
    let own_permission = bearer(&hs_token(&own_permission));
    let cases = [
        (
            "an admin on the admin route",
            "GET",
            "/admin/panel",
            token("root", &["admin"]),
            200,
            "",
        ),
        (
            "a user on the admin route",
            "GET",
            "/admin/panel",
            token("bob", &["user"]),
            403,
            "a required role is missing",
        ),
        // viewer is inherited by user and admin
        (
            "viewer",
            "GET",
            "/api/things",
            token("u", &["viewer"]),
            200,
            "",
        ),
        (
            "user inherits viewer",
            "GET",
            "/api/things",
            token("u", &["user"]),
            200,
            "",
        ),
        (
            "admin inherits viewer",
            "GET",
            "/api/things",
            token("u", &["admin"]),
            200,
            "",
        ),
        (
            "auditor is no viewer",
            "GET",
            "/api/things",
            token("u", &["auditor"]),
            403,
            "a required role is missing",
        ),
        // permissions_all: a role's permission, `*`, and a token's own permissions
        (
            "a role's permission",
            "GET",
            "/api/audit",
            token("a", &["auditor"]),
            200,
            "",
        ),
        (
            "* grants all",
            "GET",
            "/api/audit",
            token("a", &["admin"]),
            200,
            "",
        ),
        (
            "a permission missing",
            "GET",
            "/api/audit",
            token("a", &["user"]),
            403,
            "a required permission is missing",
        ),
        (
            "the token's own permission",
            "GET",
            "/api/audit",
            own_permission,
            200,
            "",
        ),
        // POST is not configured for /api/audit, so it falls through to /api/**
        (
            "another method falls through",
            "POST",
            "/api/audit",
            token("a", &["auditor"]),
            403,
            "a required role is missing",
        ),
    ];
    let mut checks = Checks::new();
    for (name, method, path, auth, status, description) in cases {
        let r = gw
            .request(method, path, &[("Authorization", &auth)], "")
            .await;
        checks.eq(name, r.status, status);
        if status == 403 && r.status == 403 {
            checks.eq(
                name,
                (
                    r.json()["error"].clone(),
                    r.json()["error_description"].clone(),
                ),
                (json!("insufficient_scope"), json!(description)),
            );
            checks.eq(
                name,
                r.header("www-authenticate").map(str::to_string),
                Some(format!(
                    r#"Bearer realm="portcullis", error="insufficient_scope", error_description="{description}""#
                )),
            );
        }
    }
}

#[tokio::test]
async fn ownership() {
    let gw = gateway().await;
    let alice = token("alice", &["viewer"]);
    assert_eq!(
        gw.get("/api/users/alice/orders/1", &[("Authorization", &alice)])
            .await
            .status,
        200
    );
    let r = gw
        .get("/api/users/bob/orders/1", &[("Authorization", &alice)])
        .await;
    assert_eq!(
        r.assert_refusal(403, "insufficient_scope")["error_description"],
        "not the owner of this resource"
    );
    // The captured segment is compared after normalisation: %61lice is alice.
    assert_eq!(
        gw.get("/api/users/%61lice/orders", &[("Authorization", &alice)])
            .await
            .status,
        200
    );
    // An admin may see anyone's.
    assert_eq!(
        gw.get(
            "/api/users/bob/orders/1",
            &[("Authorization", &token("root", &["admin"]))]
        )
        .await
        .status,
        200
    );
    // Anonymous: 401 missing_credentials with the bare challenge.
    let r = gw.get("/api/users/bob/orders/1", &[]).await;
    r.assert_refusal(401, "missing_credentials");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="portcullis""#)
    );
}

#[tokio::test]
async fn optional_auth() {
    let gw = gateway().await;
    let echo = gw.get("/maybe/x", &[]).await.echo();
    assert!(!echo.headers.contains_key("x-user-id"));
    let echo = gw
        .get("/maybe/x", &[("Authorization", &token("carol", &[]))])
        .await
        .echo();
    assert_eq!(echo.headers["x-user-id"], ["carol"]);
    gw.get("/maybe/x", &[("Authorization", "Bearer broken")])
        .await
        .assert_refusal(401, "invalid_token");
}

#[tokio::test]
async fn credential_rules() {
    let gw = gateway().await;
    let t = token("alice", &["viewer"]);
    // Repeated Authorization: 400 on any route.
    for path in ["/api/x", "/public/x"] {
        let r = gw
            .get(path, &[("Authorization", &t), ("Authorization", &t)])
            .await;
        r.assert_refusal(400, "invalid_request");
    }
    // An unknown scheme is no credential, and is forwarded untouched.
    let r = gw
        .get("/api/x", &[("Authorization", "Basic YWxpY2U6cHc=")])
        .await;
    r.assert_refusal(401, "missing_credentials");
    let echo = gw
        .get("/public/x", &[("Authorization", "Basic YWxpY2U6cHc=")])
        .await
        .echo();
    assert_eq!(echo.headers["authorization"], ["Basic YWxpY2U6cHc="]);
    // Scheme is case-insensitive.
    let lower = t.replacen("Bearer", "bEARER", 1);
    assert_eq!(
        gw.get("/api/x", &[("Authorization", &lower)]).await.status,
        200
    );
}

#[tokio::test]
async fn paths_are_normalised_before_routing_and_forwarding() {
    let gw = gateway().await;
    // Each of these names /admin/... after normalisation: without an admin token, refused.
    let viewer = token("v", &["viewer"]);
    for p in [
        "/public/../admin/x",
        "/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
        "//admin/x",
        "/public/./../admin/x",
        "/%61dmin/x",
    ] {
        let r = gw.get(p, &[("Authorization", &viewer)]).await;
        r.assert_refusal(403, "insufficient_scope");
        let r = gw.get(p, &[]).await;
        r.assert_refusal(401, "missing_credentials");
    }
    // With the admin token, the upstream sees the normalised path.
    let admin = token("root", &["admin"]);
    let echo = gw
        .get("/public/../admin//x/./y", &[("Authorization", &admin)])
        .await
        .echo();
    assert_eq!(echo.path, "/admin/x/y");
    // Smuggling is refused outright.
    for p in [
        "/admin%2F..",
        "/public%2F..%2Fadmin",
        "/public/..;/admin",
        "/public/%2e%2e;/admin",
        "/public\\..\\admin",
        "/a%5c",
        "/a%00",
    ] {
        gw.get(p, &[("Authorization", &admin)])
            .await
            .assert_refusal(400, "invalid_request");
    }
}

#[tokio::test]
async fn routing_and_strip_prefix() {
    let gw = gateway().await;
    gw.get("/nowhere", &[])
        .await
        .assert_refusal(404, "not_found");
    gw.get("/", &[]).await.assert_refusal(404, "not_found");
    assert_eq!(
        gw.get("/svc/inner/path?q=1", &[]).await.echo().path,
        "/inner/path"
    );
    assert_eq!(gw.get("/svc", &[]).await.echo().path, "/");
    assert_eq!(
        gw.get("/public", &[]).await.echo().path,
        "/public",
        "`/x/**` matches `/x`"
    );
}

#[tokio::test]
async fn jwks_endpoint_is_served_by_the_gateway() {
    let gw = gateway().await;
    let r = gw.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.json(), json!({"keys": []}), "HS256: an empty set");
}

#[tokio::test]
async fn oversized_headers_get_431_json() {
    let gw = gateway().await;
    let big = "x".repeat(70 * 1024);
    gw.get("/public/x", &[("X-Big", &big)])
        .await
        .assert_refusal(431, "invalid_request");
}

#[tokio::test]
async fn forwarded_headers_from_a_trusted_proxy_are_kept_and_extended() {
    let trusted = standard()
        .server(r#"trusted_proxies = ["127.0.0.0/8"]"#)
        .build();
    let gw = Gateway::start(&trusted, start_echo().await).await;
    let echo = gw
        .get(
            "/public/x",
            &[
                ("X-Forwarded-For", "203.0.113.7, 10.1.2.3"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "api.example.com"),
            ],
        )
        .await
        .echo();
    assert_eq!(
        echo.headers["x-forwarded-for"],
        ["203.0.113.7, 10.1.2.3, 127.0.0.1"]
    );
    assert_eq!(echo.headers["x-forwarded-proto"], ["https"]);
    assert_eq!(echo.headers["x-forwarded-host"], ["api.example.com"]);
    // The access log names the right-most untrusted address as the client.
    let log = gw.settled_stdout().await;
    assert!(log.contains(r#""client_ip":"10.1.2.3""#), "{log}");
}
