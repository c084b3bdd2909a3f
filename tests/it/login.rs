//! The login endpoints through the real gateway: login, refresh rotation and reuse detection,
//! logout, lockout with a moved clock, MFA with computed TOTP codes and backup codes, the
//! RFC 6749 token endpoint, the JWKS, cookies, bodies, and no secret in any log line.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Value};

use crate::support::*;

const ALICE_PASSWORD: &str = "alice-correct-horse";
const BOB_PASSWORD: &str = "bob-battery-staple";
const CAROL_PASSWORD: &str = "carol-bcrypt-pw";
const DAVE_PASSWORD: &str = "dave-disabled-pw";
/// RFC 6238's SHA-1 test secret.
const BOB_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const BOB_BACKUP_CODES: [&str; 2] = ["k7m2p-x9q4r", "a3b4c-d5e6f"];

/// A cheap argon2id hash (the tests log in many times); the format is what counts.
pub(crate) fn argon2id(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

fn users_toml() -> String {
    let backup: Vec<String> = BOB_BACKUP_CODES
        .iter()
        .map(|c| format!("\"{}\"", hex_sha256(&c.replace('-', ""))))
        .collect();
    format!(
        r#"
[[users]]
username = "alice"
password_hash = "{alice}"
subject = "u-alice"
roles = ["user"]
claims = {{ email = "alice@example.com" }}

[[users]]
username = "bob"
password_hash = "{bob}"
roles = ["viewer"]
totp_secret = "{BOB_TOTP}"
backup_codes_sha256 = [{backup}]

[[users]]
username = "carol"
password_hash = "{carol}"
roles = ["viewer"]

[[users]]
username = "dave"
password_hash = "{dave}"
roles = ["viewer"]
disabled = true
"#,
        alice = argon2id(ALICE_PASSWORD),
        bob = argon2id(BOB_PASSWORD),
        carol = bcrypt::hash(CAROL_PASSWORD, 4).unwrap(),
        dave = argon2id(DAVE_PASSWORD),
        backup = backup.join(", "),
    )
}

fn hex_sha256(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn config(login_extra: &str) -> String {
    toml()
        .tokens("access_ttl = \"15m\"\nrefresh_ttl = \"7d\"")
        .table(&format!(
            "[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"\n{login_extra}"
        ))
        .table(
            r#"[roles]
viewer = { permissions = ["orders:read"] }
user = { inherits = ["viewer"], permissions = ["orders:write"] }"#,
        )
        .table(
            r#"[identity]
claims = { email = "X-User-Email" }"#,
        )
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build()
}

async fn start(login_extra: &str) -> Gateway {
    Gateway::start_frozen(
        &config(login_extra),
        start_echo().await,
        &[("users.toml", &users_toml())],
    )
    .await
}

pub(crate) async fn login(gw: &Gateway, user: &str, password: &str) -> Response {
    gw.post_json(
        "/auth/login",
        &[],
        &json!({"username": user, "password": password}),
    )
    .await
}

/// A 200 token pair: (access, refresh).
pub(crate) fn pair(r: &Response) -> (String, String) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn call(gw: &Gateway, access: &str) -> Response {
    gw.get("/api/orders", &[("Authorization", &bearer(access))])
        .await
}

pub(crate) async fn refresh(gw: &Gateway, refresh: &str) -> Response {
    gw.post_json("/auth/refresh", &[], &json!({"refresh_token": refresh}))
        .await
}

/// The claims of a token, unverified (the tests check what the gateway put in).
pub(crate) fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Nothing secret the test used may appear in any line the gateway wrote.
async fn assert_no_secrets(gw: &Gateway, secrets: &[&str]) {
    let logs = format!("{}\n{}", gw.settled_stdout().await, gw.stderr());
    for s in secrets.iter().chain(&[
        ALICE_PASSWORD,
        BOB_PASSWORD,
        CAROL_PASSWORD,
        BOB_TOTP,
        HS_SECRET,
    ]) {
        assert!(!s.is_empty());
        assert!(!logs.contains(s), "a secret reached the logs: {s}\n{logs}");
    }
}

#[tokio::test]
async fn login_refresh_reuse_detection_and_the_whole_session_refused() {
    let gw = start("").await;
    let r = login(&gw, "alice", ALICE_PASSWORD).await;
    let (a1, r1) = pair(&r);
    let c = claims(&a1);
    assert_eq!(c["sub"], "u-alice");
    assert_eq!(c["typ"], "access");
    assert_eq!(c["roles"], json!(["user"]));
    assert_eq!(c["permissions"], json!(["orders:read", "orders:write"]));
    assert_eq!(c["email"], "alice@example.com");
    let sid = c["sid"].as_str().unwrap().to_string();
    assert_eq!(claims(&r1)["typ"], "refresh");
    assert_eq!(claims(&r1)["sid"], sid.as_str());

    let echo = call(&gw, &a1).await.echo();
    assert_eq!(echo.headers["x-user-id"], ["u-alice"]);
    assert_eq!(echo.headers["x-user-email"], ["alice@example.com"]);
    // A refresh token is no access token.
    call(&gw, &r1).await.assert_refusal(401, "invalid_token");

    let (a2, r2) = pair(&refresh(&gw, &r1).await);
    assert_eq!(
        claims(&a2)["sid"],
        sid.as_str(),
        "one session across refreshes"
    );
    assert_ne!(claims(&a2)["jti"], claims(&a1)["jti"]);
    assert_eq!(call(&gw, &a2).await.status, 200);

    // The spent refresh token again: the whole session dies, the newest tokens included.
    let body = refresh(&gw, &r1).await.assert_refusal(401, "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("reused"));
    call(&gw, &a2).await.assert_refusal(401, "invalid_token");
    call(&gw, &a1).await.assert_refusal(401, "invalid_token");
    refresh(&gw, &r2).await.assert_refusal(401, "invalid_grant");
    // Another login is another session, unaffected.
    let (a3, _) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    assert_eq!(call(&gw, &a3).await.status, 200);

    let audit = gw.settled_stdout().await;
    assert!(audit.contains(r#""event":"refresh_reuse""#), "{audit}");
    assert_no_secrets(&gw, &[&a1, &a2, &r1, &r2, &a3]).await;
}

#[tokio::test]
async fn logout_revokes_at_once_and_all_reaches_other_sessions() {
    let gw = start("").await;
    let (a1, r1) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&a1))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    call(&gw, &a1).await.assert_refusal(401, "invalid_token");
    refresh(&gw, &r1).await.assert_refusal(401, "invalid_grant");
    // Logging out again with the dead token: 401.
    gw.request(
        "POST",
        "/auth/logout",
        &[("Authorization", &bearer(&a1))],
        "",
    )
    .await
    .assert_refusal(401, "invalid_token");

    // Two sessions; `?all=true` from one kills the other's tokens too.
    let (s1, _) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let (s2, s2_refresh) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let (other_user, _) = pair(&login(&gw, "carol", CAROL_PASSWORD).await);
    let r = gw
        .request(
            "POST",
            "/auth/logout?all=true",
            &[("Authorization", &bearer(&s1))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    call(&gw, &s2).await.assert_refusal(401, "invalid_token");
    refresh(&gw, &s2_refresh)
        .await
        .assert_refusal(401, "invalid_grant");
    assert_eq!(call(&gw, &other_user).await.status, 200);
    // A login in a later second is not covered by the revoke-all.
    gw.advance_clock(1);
    let (fresh, _) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    assert_eq!(call(&gw, &fresh).await.status, 200);
    // Without a token: 401.
    gw.request("POST", "/auth/logout", &[], "")
        .await
        .assert_refusal(401, "missing_credentials");
    assert_no_secrets(&gw, &[&a1, &r1, &s1, &s2, &s2_refresh, &fresh]).await;
}

#[tokio::test]
async fn lockout_after_max_failures_and_its_expiry() {
    let gw = start("max_failed_attempts = 3\nlockout = \"10m\"").await;
    for _ in 0..3 {
        login(&gw, "alice", "wrong")
            .await
            .assert_refusal(401, "invalid_credentials");
    }
    // Locked: even the right password is refused, with the time left.
    let r = login(&gw, "alice", ALICE_PASSWORD).await;
    r.assert_refusal(429, "account_locked");
    assert_eq!(r.header("retry-after"), Some("600"));
    // Unknown users lock the same way, and their refusals read the same.
    let mut bodies = Vec::new();
    for user in ["nobody", "alice-twin"] {
        for _ in 0..3 {
            let r = login(&gw, user, "wrong").await;
            let mut b = r.assert_refusal(401, "invalid_credentials");
            b["request_id"] = Value::Null;
            bodies.push(b);
        }
        login(&gw, user, "wrong")
            .await
            .assert_refusal(429, "account_locked");
    }
    let known = login(&gw, "carol", "wrong").await;
    let mut known = known.assert_refusal(401, "invalid_credentials");
    known["request_id"] = Value::Null;
    let disabled = login(&gw, "dave", DAVE_PASSWORD).await;
    let mut disabled = disabled.assert_refusal(401, "invalid_credentials");
    disabled["request_id"] = Value::Null;
    assert!(bodies.iter().all(|b| *b == known && *b == disabled));

    // Nine minutes on: still locked, a minute left.
    gw.advance_clock(540);
    let r = login(&gw, "alice", ALICE_PASSWORD).await;
    r.assert_refusal(429, "account_locked");
    assert_eq!(r.header("retry-after"), Some("60"));
    gw.advance_clock(60);
    pair(&login(&gw, "alice", ALICE_PASSWORD).await);

    // A success resets the count: two failures, a success, two failures: not locked.
    pair(&login(&gw, "carol", CAROL_PASSWORD).await);
    for _ in 0..2 {
        login(&gw, "carol", "wrong").await;
    }
    pair(&login(&gw, "carol", CAROL_PASSWORD).await);
    for _ in 0..2 {
        login(&gw, "carol", "wrong").await;
    }
    pair(&login(&gw, "carol", CAROL_PASSWORD).await);
    let audit = gw.settled_stdout().await;
    assert!(audit.contains(r#""event":"lockout""#), "{audit}");
    assert_no_secrets(&gw, &[DAVE_PASSWORD]).await;
}

fn totp_at(time: i64) -> String {
    let secret = totp_rs::Secret::Encoded(BOB_TOTP.into())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).generate(time as u64)
}

/// Bob's password accepted: the mfa_token for the second step.
async fn mfa_token(gw: &Gateway) -> String {
    let r = login(gw, "bob", BOB_PASSWORD).await;
    r.assert_refusal(401, "mfa_required")["mfa_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn mfa(gw: &Gateway, token: &str, code: &str) -> Response {
    gw.post_json("/auth/mfa", &[], &json!({"mfa_token": token, "code": code}))
        .await
}

async fn mfa_gateway() -> Gateway {
    start("max_failed_attempts = 20").await
}

#[tokio::test]
async fn mfa_a_wrong_code_then_the_right_one_signs_in() {
    let gw = mfa_gateway().await;
    let t = mfa_token(&gw).await;
    mfa(&gw, &t, "000000")
        .await
        .assert_refusal(401, "invalid_code");
    let (access, _) = pair(&mfa(&gw, &t, &totp_at(gw.clock_now())).await);
    assert_eq!(call(&gw, &access).await.status, 200);
}

#[tokio::test]
async fn mfa_a_token_is_single_use() {
    let gw = mfa_gateway().await;
    let t = mfa_token(&gw).await;
    pair(&mfa(&gw, &t, &totp_at(gw.clock_now())).await);
    gw.advance_clock(30);
    mfa(&gw, &t, &totp_at(gw.clock_now()))
        .await
        .assert_refusal(401, "invalid_grant");
}

#[tokio::test]
async fn mfa_a_code_is_single_use_in_its_window_and_the_next_step_is_fine() {
    let gw = mfa_gateway().await;
    let code = totp_at(gw.clock_now());
    pair(&mfa(&gw, &mfa_token(&gw).await, &code).await);
    let fresh = mfa_token(&gw).await;
    mfa(&gw, &fresh, &code)
        .await
        .assert_refusal(401, "invalid_code");
    gw.advance_clock(30);
    pair(&mfa(&gw, &fresh, &totp_at(gw.clock_now())).await);
}

#[tokio::test]
async fn mfa_a_backup_code_works_once_in_logins_totp_field() {
    let gw = mfa_gateway().await;
    let with_code = |code: &str| json!({"username": "bob", "password": BOB_PASSWORD, "totp": code});
    // Typed in capitals, as printed: the same code.
    pair(
        &gw.post_json("/auth/login", &[], &with_code("K7M2P-X9Q4R"))
            .await,
    );
    gw.post_json("/auth/login", &[], &with_code(BOB_BACKUP_CODES[0]))
        .await
        .assert_refusal(401, "invalid_code");
}

#[tokio::test]
async fn mfa_a_backup_code_works_once_at_the_mfa_endpoint() {
    let gw = mfa_gateway().await;
    pair(&mfa(&gw, &mfa_token(&gw).await, BOB_BACKUP_CODES[1]).await);
    mfa(&gw, &mfa_token(&gw).await, BOB_BACKUP_CODES[1])
        .await
        .assert_refusal(401, "invalid_code");
}

#[tokio::test]
async fn mfa_a_token_dies_after_five_wrong_codes() {
    let gw = mfa_gateway().await;
    let t = mfa_token(&gw).await;
    for _ in 0..5 {
        mfa(&gw, &t, "111111")
            .await
            .assert_refusal(401, "invalid_code");
    }
    gw.advance_clock(30);
    mfa(&gw, &t, &totp_at(gw.clock_now()))
        .await
        .assert_refusal(401, "invalid_grant");
}

#[tokio::test]
async fn mfa_a_token_expires_after_five_minutes() {
    let gw = mfa_gateway().await;
    let t = mfa_token(&gw).await;
    gw.advance_clock(301);
    mfa(&gw, &t, &totp_at(gw.clock_now()))
        .await
        .assert_refusal(401, "invalid_grant");
}

#[tokio::test]
async fn mfa_tokens_and_codes_never_reach_the_logs() {
    let gw = mfa_gateway().await;
    let t = mfa_token(&gw).await;
    mfa(&gw, &t, "000000").await;
    let code = totp_at(gw.clock_now());
    pair(&mfa(&gw, &t, &code).await);
    let t2 = mfa_token(&gw).await;
    pair(&mfa(&gw, &t2, BOB_BACKUP_CODES[0]).await);
    assert_no_secrets(&gw, &[&t, &t2, &code, BOB_BACKUP_CODES[0]]).await;
}

#[tokio::test]
async fn mfa_failures_count_towards_the_lockout() {
    let gw = start("max_failed_attempts = 3").await;
    let t = login(&gw, "bob", BOB_PASSWORD).await.json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        gw.post_json("/auth/mfa", &[], &json!({"mfa_token": t, "code": "222222"}))
            .await
            .assert_refusal(401, "invalid_code");
    }
    login(&gw, "bob", BOB_PASSWORD)
        .await
        .assert_refusal(429, "account_locked");
}

#[tokio::test]
async fn the_token_endpoint_speaks_rfc_6749() {
    let gw = start("").await;
    let r = gw
        .post_form(
            "/auth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
            ],
        )
        .await;
    let (access, refresh_token) = pair(&r);
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(call(&gw, &access).await.status, 200);
    let r = gw
        .post_form(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
        .await;
    pair(&r);
    let mut checks = Checks::new();
    for (fields, code) in [
        (
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
            "invalid_grant",
        ),
        (vec![("username", "alice")], "invalid_request"),
        (
            vec![("grant_type", "client_credentials")],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
            ],
            "invalid_grant",
        ),
        (
            vec![("grant_type", "password"), ("username", "alice")],
            "invalid_request",
        ),
    ] {
        let r = gw.post_form("/auth/token", &fields).await;
        checks.eq(
            &fields,
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
        );
        checks.eq(&fields, r.header("cache-control"), Some("no-store"));
        checks.eq(&fields, r.header("pragma"), Some("no-cache"));
    }
    drop(checks);
    // An MFA user is told so, with the token for /auth/mfa.
    let r = gw
        .post_form(
            "/auth/token",
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", BOB_PASSWORD),
            ],
        )
        .await;
    let body = r.assert_refusal(400, "mfa_required");
    assert!(body["mfa_token"].as_str().is_some_and(|t| t.len() >= 43));
    assert_no_secrets(&gw, &[&access, &refresh_token]).await;
}

#[tokio::test]
async fn bodies_methods_and_unknown_paths() {
    let gw = start("").await;
    let big = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        "x".repeat(70_000)
    );
    let r = gw
        .request(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            &big,
        )
        .await;
    r.assert_refusal(413, "payload_too_large");
    for (ct, body) in [
        ("application/json", "{\"username\": \"alice\", "),
        (
            "application/json",
            r#"{"username": "alice", "password": 12}"#,
        ),
        ("application/json", r#"["alice"]"#),
        ("text/plain", "username=alice&password=x"),
        ("application/json", r#"{"password": "x"}"#),
    ] {
        let r = gw
            .request("POST", "/auth/login", &[("Content-Type", ct)], body)
            .await;
        r.assert_refusal(400, "invalid_request");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = gw.get("/auth/login", &[]).await;
    r.assert_refusal(405, "invalid_request");
    assert_eq!(r.header("allow"), Some("POST"));
    // Everything under the base path belongs to the gateway: never proxied.
    gw.get("/auth/elsewhere", &[])
        .await
        .assert_refusal(404, "not_found");
    gw.get("/auth", &[]).await.assert_refusal(404, "not_found");
    gw.get("/auth/../auth/nothing", &[])
        .await
        .assert_refusal(404, "not_found");
}

#[tokio::test]
async fn userinfo_and_the_login_rate_limit() {
    let gw = start("").await;
    let (access, _) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let r = gw
        .get("/auth/userinfo", &[("Authorization", &bearer(&access))])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.json(),
        json!({
            "sub": "u-alice",
            "roles": ["user", "viewer"],
            "permissions": ["orders:read", "orders:write"],
            // A user with an email: whether it is verified (SPEC 7.1), `false` unless said.
            "claims": {"email": "alice@example.com", "email_verified": false},
        })
    );
    gw.get("/auth/userinfo", &[])
        .await
        .assert_refusal(401, "missing_credentials");

    // One budget per client IP over login, token and mfa.
    let limited = Gateway::start_frozen(
        &config("").replace("rate_limit = \"1000/s\"", "rate_limit = \"3/h\""),
        start_echo().await,
        &[("users.toml", &users_toml())],
    )
    .await;
    let r = login(&limited, "alice", ALICE_PASSWORD).await;
    pair(&r);
    assert_eq!(r.header("ratelimit-remaining"), Some("2"));
    limited
        .post_form("/auth/token", &[("grant_type", "password")])
        .await
        .assert_refusal(400, "invalid_request");
    limited
        .post_json("/auth/mfa", &[], &json!({"mfa_token": "x", "code": "1"}))
        .await
        .assert_refusal(401, "invalid_grant");
    let r = login(&limited, "alice", ALICE_PASSWORD).await;
    r.assert_refusal(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-limit"), Some("3"));
}

#[tokio::test]
async fn the_login_cookie_is_a_credential_and_logout_clears_it() {
    let gw = start(r#"cookie = { name = "pc_session", same_site = "Strict" }"#).await;
    let r = login(&gw, "alice", ALICE_PASSWORD).await;
    let (access, _) = pair(&r);
    let set = r.header("set-cookie").unwrap();
    assert!(set.starts_with(&format!("pc_session={access};")), "{set}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=900",
    ] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    let cookie = format!("theme=dark; pc_session={access}; lang=en");
    let echo = gw.get("/api/orders", &[("Cookie", &cookie)]).await.echo();
    assert_eq!(echo.headers["x-auth-method"], ["cookie"]);
    assert_eq!(echo.headers["x-user-id"], ["u-alice"]);
    // The session cookie is a credential: removed before the upstream; the others stay.
    assert_eq!(echo.headers["cookie"], ["theme=dark; lang=en"]);

    // An unsafe request by cookie needs the gateway's own origin (CSRF).
    let r = gw
        .request("POST", "/auth/logout", &[("Cookie", &cookie)], "")
        .await;
    r.assert_refusal(403, "invalid_origin");
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("Cookie", &cookie), ("Origin", "http://gateway.test")],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    let cleared = r.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("pc_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    gw.get("/api/orders", &[("Cookie", &cookie)])
        .await
        .assert_refusal(401, "invalid_token");
    assert_no_secrets(&gw, &[&access]).await;
}

#[tokio::test]
async fn the_jwks_verifies_issued_tokens_independently() {
    let toml = config("")
        .replace(
            &format!("secret = \"{HS_SECRET}\""),
            "algorithm = \"RS256\"\nprivate_key_file = \"{KEYS}/rsa_private.pem\"",
        )
        .replace("[tokens]", "[tokens]\nkey_id = \"2026-12\"");
    let gw =
        Gateway::start_frozen(&toml, start_echo().await, &[("users.toml", &users_toml())]).await;
    let (access, refresh_token) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let jwks = gw.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&jwks.body).unwrap();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), Some("2026-12"));
    let jwk = set.find("2026-12").expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["api"]);
    v.set_issuer(&["portcullis"]);
    let data = jsonwebtoken::decode::<Value>(&access, &key, &v).unwrap();
    assert_eq!(data.claims["sub"], "u-alice");
    let data = jsonwebtoken::decode::<Value>(&refresh_token, &key, &v).unwrap();
    assert_eq!(data.claims["typ"], "refresh");
}

#[test]
fn hash_password_and_new_backup_codes() {
    // One trailing newline is dropped: the hash is of the password as typed.
    let out = cli(&["hash-password"], Some("s3cret pass\n"));
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim_end();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let parsed = argon2::PasswordHash::new(phc).unwrap();
    use argon2::PasswordVerifier;
    assert!(argon2::Argon2::default()
        .verify_password(b"s3cret pass", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"s3cret pass\n", &parsed)
        .is_err());
    assert!(!cli(&["hash-password"], Some("\n")).status.success());

    let out = cli(&["new-backup-codes", "--count", "4"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (codes, line) = text.split_once("\n\n").unwrap();
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 4);
    let expected: Vec<String> = codes
        .iter()
        .map(|c| format!("\"{}\"", hex_sha256(&c.replace('-', ""))))
        .collect();
    assert_eq!(
        line.trim_end(),
        format!("backup_codes_sha256 = [{}]", expected.join(", "))
    );
}

#[test]
fn check_reports_login_and_users_file_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "it-secret-0123456789-0123456789-0123456789"

[login]
base_path = "/auth/"
max_failed_attempts = 0
rate_limit = "0/min"
cookie = { same_site = "Sideways" }

[roles]
user = {}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        r#"[[users]]
username = "alice"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$bad"
roles = ["admin"]
"#,
    )
    .unwrap();
    let path = dir.path().join("gateway.toml");
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in [
        "gateway.toml:9:13: login.base_path: must be a path",
        "gateway.toml:10:23: login.max_failed_attempts: must be at least 1",
        "gateway.toml:11:14: login.rate_limit: rate `0/min` is zero",
        "gateway.toml:12:24: login.cookie.same_site: `Sideways` is not one of Strict, Lax, None",
        "users.toml:3:17: users[0].password_hash: not a valid argon2 PHC string",
        "users.toml:4:10: users[0].roles[0]: unknown role `admin`",
    ] {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
    // gateway.toml's errors come first.
    let first_users = stderr.find("users.toml:").unwrap();
    assert!(stderr[..first_users].contains("gateway.toml:12:"));

    // A users file that is missing is an error at the key naming it.
    std::fs::remove_file(dir.path().join("users.toml")).unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gateway.toml:8:1: login: ")
            && stderr.contains("users.toml: cannot read file"),
        "{stderr}"
    );
}
