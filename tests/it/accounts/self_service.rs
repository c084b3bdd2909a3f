//! The self-service endpoints: each one's success, its refusals, bad input (400, never 500)
//! and another user's resources (404).

use serde_json::json;

use super::*;
use crate::login::{login, pair, refresh};

both! {
    async fn register_login_make_and_use_an_api_key(backend: Backend) {
        let gw = start(backend).await;
        let r = register(&gw, "Alice", PASSWORD).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["username"], "alice", "names are lower-cased");
        let sub = r.json()["sub"].as_str().unwrap().to_string();
        let (access, _) = pair(&login(&gw, "ALICE", PASSWORD).await);
        assert_eq!(with_token(&gw, &access).await.echo().headers["x-user-id"], std::slice::from_ref(&sub));

        let r = me(&gw, "POST", "/auth/api-keys", &access, Some(json!({"name": "ci"}))).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let made = r.json();
        let key = made["key"].as_str().unwrap().to_string();
        assert_eq!(made["roles"], json!(["user"]), "the maker's roles by default");
        let echo = with_key(&gw, &key).await.echo();
        assert_eq!(echo.headers["x-user-id"], [sub]);
        assert_eq!(echo.headers["x-auth-method"], ["api_key"]);

        let listed = me(&gw, "GET", "/auth/api-keys", &access, None).await.json();
        let keys = listed["api_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["id"], made["id"]);
        assert_eq!(keys[0]["prefix"], key[..8]);
        assert!(!listed.to_string().contains(&key), "never the key itself");

        let id = made["id"].as_str().unwrap();
        let r = me(&gw, "DELETE", &format!("/auth/api-keys/{id}"), &access, None).await;
        assert_eq!(r.status, 204);
        with_key(&gw, &key).await.assert_refusal(401, "invalid_token");
        let logs = gw.settled_stdout().await;
        assert!(logs.contains("api_key_created") && logs.contains("api_key_deleted"));
        assert!(!logs.contains(&key) && !logs.contains(PASSWORD), "no secret logged");
    }
}

both! {
    async fn a_new_password_ends_every_other_session(backend: Backend) {
        let gw = start(backend).await;
        let (a, _) = signed_up(&gw, "bob").await;
        let (b, b_refresh) = pair(&login(&gw, "bob", PASSWORD).await);
        let key = me(&gw, "POST", "/auth/api-keys", &a, Some(json!({"name": "ci"}))).await.json()["key"]
            .as_str()
            .unwrap()
            .to_string();
        let new = "a much better passphrase 2026";
        let r = me(&gw, "POST", "/auth/password", &a,
            Some(json!({"current_password": PASSWORD, "new_password": new}))).await;
        let (fresh, _) = pair(&r);
        assert_eq!(with_token(&gw, &fresh).await.status, 200);
        with_token(&gw, &b).await.assert_refusal(401, "invalid_token");
        with_token(&gw, &a).await.assert_refusal(401, "invalid_token");
        assert_eq!(refresh(&gw, &b_refresh).await.status, 401);
        login(&gw, "bob", PASSWORD).await.assert_refusal(401, "invalid_credentials");
        pair(&login(&gw, "bob", new).await);
        assert_eq!(with_key(&gw, &key).await.status, 200, "the user's keys stay");
    }
}

#[tokio::test]
async fn a_wrong_current_password_counts_towards_the_lockout() {
    let gw = start_with(Backend::Sqlite, "max_failed_attempts = 2").await;
    let (a, _) = signed_up(&gw, "carl").await;
    for _ in 0..2 {
        let r = me(
            &gw,
            "POST",
            "/auth/password",
            &a,
            Some(json!({"current_password": "wrong", "new_password": "whatever it is 123"})),
        )
        .await;
        r.assert_refusal(401, "invalid_credentials");
    }
    login(&gw, "carl", PASSWORD)
        .await
        .assert_refusal(429, "account_locked");
}

#[tokio::test]
async fn registration_refusals() {
    let gw = start(Backend::Sqlite).await;
    assert_eq!(register(&gw, "dora", PASSWORD).await.status, 201);
    let mut checks = Checks::new();
    for (name, password, status, code) in [
        ("DORA", PASSWORD, 409, "username_taken"),
        ("erin", "short", 400, "weak_password"),
        ("erin", "password1234", 400, "weak_password"),
        ("erin", "erin-is-my-password", 400, "weak_password"),
        ("no spaces", PASSWORD, 400, "invalid_request"),
        ("", PASSWORD, 400, "invalid_request"),
    ] {
        let r = register(&gw, name, password).await;
        checks.eq(
            (name, password),
            (r.status, r.json()["error"].clone()),
            (status, json!(code)),
        );
    }
    let r = register(&gw, "erin", "short").await;
    checks.eq(
        "the rule is named",
        r.json()["error_description"].clone(),
        json!("a password needs at least 12 characters"),
    );
    for body in ["{", "[]", r#"{"username": 5}"#] {
        let r = gw
            .request(
                "POST",
                "/auth/register",
                &[("Content-Type", "application/json")],
                body,
            )
            .await;
        checks.eq(body, r.status, 400);
    }
}

#[tokio::test]
async fn without_registration_or_users_db_the_endpoints_are_404() {
    let off = Gateway::start(
        &config(&Backend::Sqlite, "")
            .build()
            .replace("enabled = true", "enabled = false"),
        start_echo().await,
    )
    .await;
    register(&off, "fred", PASSWORD)
        .await
        .assert_refusal(404, "not_found");
    // Not there whatever the method (not 405).
    off.get("/auth/register", &[])
        .await
        .assert_refusal(404, "not_found");
    let file = Gateway::start_with_files(
        &toml().table("[login]\nrate_limit = \"1000/s\"").build(),
        start_echo().await,
        &[("users.toml", "")],
    )
    .await;
    let mut checks = Checks::new();
    for path in [
        "/auth/register",
        "/auth/sessions",
        "/auth/api-keys",
        "/auth/mfa/setup",
    ] {
        let method = if path == "/auth/sessions" {
            "GET"
        } else {
            "POST"
        };
        checks.eq(path, file.request(method, path, &[], "").await.status, 404);
        checks.eq(
            (path, "PUT"),
            file.request("PUT", path, &[], "").await.status,
            404,
        );
    }
}

#[tokio::test]
async fn self_service_needs_a_logins_access_token() {
    let gw = start(Backend::Sqlite).await;
    let (access, refresh_token) = signed_up(&gw, "gwen").await;
    let key = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "k"})),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut checks = Checks::new();
    let r = gw.get("/auth/sessions", &[("X-API-Key", &key)]).await;
    checks.eq(
        "an API key",
        (r.status, r.json()["error"].clone()),
        (403, json!("insufficient_scope")),
    );
    let r = gw.get("/auth/sessions", &[]).await;
    checks.eq("nothing", r.status, 401);
    let r = me(&gw, "GET", "/auth/sessions", &refresh_token, None).await;
    checks.eq("a refresh token", r.status, 401);
    // A valid token of the gateway's issuer whose subject is no user of the database.
    let stranger = hs_token(&access_claims("not-a-db-user", &["user"]));
    let r = me(&gw, "GET", "/auth/sessions", &stranger, None).await;
    checks.eq("no such user", r.status, 403);
    let r = me(&gw, "GET", "/auth/sessions", &access, None).await;
    checks.eq("the login's token", r.status, 200);
}

#[tokio::test]
async fn sessions_are_listed_and_ended_one_by_one() {
    let gw = start(Backend::Sqlite).await;
    let (a, _) = signed_up(&gw, "hana").await;
    let r = gw
        .request(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("User-Agent", "Phone/1.0"),
            ],
            &json!({"username": "hana", "password": PASSWORD}).to_string(),
        )
        .await;
    let (b, b_refresh) = pair(&r);
    let listed = me(&gw, "GET", "/auth/sessions", &a, None).await.json();
    let sessions = listed["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{listed}");
    // Two logins in one second: their order in the list is not the point.
    let phone = sessions
        .iter()
        .find(|s| s["user_agent"] == "Phone/1.0")
        .expect("the phone's session is listed");
    let laptop = sessions
        .iter()
        .find(|s| s["user_agent"] != "Phone/1.0")
        .unwrap();
    assert_eq!(
        (laptop["current"].clone(), phone["current"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(phone["client_ip"], "127.0.0.1");
    assert!(phone["created_at"].as_str().unwrap().ends_with('Z'));
    let phone = phone["sid"].as_str().unwrap();

    // Another user cannot see or end it.
    let (other, _) = signed_up(&gw, "ivan").await;
    let r = me(
        &gw,
        "DELETE",
        &format!("/auth/sessions/{phone}"),
        &other,
        None,
    )
    .await;
    r.assert_refusal(404, "not_found");
    assert_eq!(with_token(&gw, &b).await.status, 200);

    assert_eq!(
        me(&gw, "DELETE", &format!("/auth/sessions/{phone}"), &a, None)
            .await
            .status,
        204
    );
    with_token(&gw, &b)
        .await
        .assert_refusal(401, "invalid_token");
    assert_eq!(refresh(&gw, &b_refresh).await.status, 401);
    let left = me(&gw, "GET", "/auth/sessions", &a, None).await.json();
    assert_eq!(left["sessions"].as_array().unwrap().len(), 1);
    me(&gw, "DELETE", "/auth/sessions/no-such-sid", &a, None)
        .await
        .assert_refusal(404, "not_found");
}

#[tokio::test]
async fn api_key_requests_are_checked() {
    let gw = start(Backend::Sqlite).await;
    let (access, _) = signed_up(&gw, "jack").await;
    let mut checks = Checks::new();
    for (body, status, code) in [
        (json!({}), 400, "invalid_request"),
        (json!({"name": ""}), 400, "invalid_request"),
        (
            json!({"name": "x", "roles": ["admin"]}),
            403,
            "insufficient_scope",
        ),
        (
            json!({"name": "x", "roles": "user"}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "expires_at": "tomorrow"}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "allowed_ips": ["10.0.0.0/33"]}),
            400,
            "invalid_request",
        ),
    ] {
        let r = me(&gw, "POST", "/auth/api-keys", &access, Some(body.clone())).await;
        checks.eq(
            &body,
            (r.status, r.json()["error"].clone()),
            (status, json!(code)),
        );
    }
    let r = gw
        .request(
            "POST",
            "/auth/api-keys",
            &[
                ("Authorization", &bearer(&access)),
                ("Content-Type", "application/json"),
            ],
            "{nope",
        )
        .await;
    checks.eq("broken JSON", r.status, 400);
    // A fenced key with an expiry (within api_key_ttl): made, and refused from elsewhere.
    let expiry = rfc3339(now() + 30 * 86400);
    let r = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "fenced", "expires_at": expiry, "allowed_ips": ["10.0.0.0/8"]})),
    )
    .await;
    checks.eq("fenced", r.status, 201);
    checks.eq("expiry", r.json()["expires_at"].clone(), json!(expiry));
    let key = r.json()["key"].as_str().unwrap_or_default().to_string();
    let r = with_key(&gw, &key).await;
    checks.eq(
        "from 127.0.0.1",
        r.json()["error_description"].clone(),
        json!("API key not allowed from this address"),
    );
    // Another user's key: 404, and it keeps working.
    let (other, _) = signed_up(&gw, "kate").await;
    let r = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &other,
        Some(json!({"name": "hers"})),
    )
    .await;
    let (id, hers) = (
        r.json()["id"].as_str().unwrap().to_string(),
        r.json()["key"].as_str().unwrap().to_string(),
    );
    let r = me(
        &gw,
        "DELETE",
        &format!("/auth/api-keys/{id}"),
        &access,
        None,
    )
    .await;
    checks.eq("another user's key", r.status, 404);
    checks.eq("still hers", with_key(&gw, &hers).await.status, 200);
}

#[tokio::test]
async fn mfa_set_up_enabled_used_and_disabled() {
    let gw = start(Backend::Sqlite).await;
    let (access, _) = signed_up(&gw, "lena").await;
    // Enabling before setting up, or with a wrong code, is refused.
    me(
        &gw,
        "POST",
        "/auth/mfa/enable",
        &access,
        Some(json!({"code": "123456"})),
    )
    .await
    .assert_refusal(400, "invalid_request");
    let setup = me(&gw, "POST", "/auth/mfa/setup", &access, None)
        .await
        .json();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/portcullis:lena?secret="));
    me(
        &gw,
        "POST",
        "/auth/mfa/enable",
        &access,
        Some(json!({"code": "000000"})),
    )
    .await
    .assert_refusal(401, "invalid_code");
    // Not yet on: the password alone still logs in.
    pair(&login(&gw, "lena", PASSWORD).await);
    let code = totp(&secret, now());
    let r = me(
        &gw,
        "POST",
        "/auth/mfa/enable",
        &access,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let codes: Vec<String> = serde_json::from_value(r.json()["backup_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    // Once on, the access token alone cannot replace the second factor.
    me(&gw, "POST", "/auth/mfa/setup", &access, None)
        .await
        .assert_refusal(400, "invalid_request");
    me(
        &gw,
        "POST",
        "/auth/mfa/enable",
        &access,
        Some(json!({"code": totp(&secret, now())})),
    )
    .await
    .assert_refusal(400, "invalid_request");
    // From the next login on, a code is asked for; a backup code works once.
    login(&gw, "lena", PASSWORD)
        .await
        .assert_refusal(401, "mfa_required");
    let with_code = |c: &str| json!({"username": "lena", "password": PASSWORD, "totp": c});
    pair(
        &gw.post_json("/auth/login", &[], &with_code(&codes[0]))
            .await,
    );
    gw.post_json("/auth/login", &[], &with_code(&codes[0]))
        .await
        .assert_refusal(401, "invalid_code");
    // The secret is sealed in the database.
    if let Ok(db) = std::fs::read(gw.dir.path().join("users.db")) {
        assert!(
            !String::from_utf8_lossy(&db).contains(&secret),
            "the TOTP secret is stored sealed"
        );
    }
    // Disabling needs the password and a code.
    me(
        &gw,
        "POST",
        "/auth/mfa/disable",
        &access,
        Some(json!({"password": "wrong", "code": codes[1]})),
    )
    .await
    .assert_refusal(401, "invalid_credentials");
    let r = me(
        &gw,
        "POST",
        "/auth/mfa/disable",
        &access,
        Some(json!({"password": PASSWORD, "code": codes[1]})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    pair(&login(&gw, "lena", PASSWORD).await);
}

/// The RFC 6238 code of `secret` (base32) at `time`.
pub(crate) fn totp(secret: &str, time: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().unwrap();
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).generate(time as u64)
}
