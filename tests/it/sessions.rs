//! Sessions a stolen token cannot stretch, and browser sessions that last: `auth_time` and
//! `amr` in every token, routes that require a second factor (RFC 9470), idle and absolute
//! lifetimes, a cap of sessions per user, login CSRF, and the refresh cookie that renews the
//! access cookie in passing. The gateway's clock is moved by the test.

use serde_json::json;

use crate::login::{argon2id, claims, pair, refresh};
use crate::support::*;

const PASSWORD: &str = "sessions-user-password";
const TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const BACKUP: &str = "k7m2p-x9q4r";

fn users() -> String {
    use sha2::{Digest, Sha256};
    let backup = hex::encode(Sha256::digest(BACKUP.replace('-', "").as_bytes()));
    format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{h}\"\nsubject = \"u-alice\"\nroles = [\"user\"]\n\n\
         [[users]]\nusername = \"bob\"\npassword_hash = \"{h}\"\nsubject = \"u-bob\"\nroles = [\"user\"]\n\
         totp_secret = \"{TOTP}\"\nbackup_codes_sha256 = [\"{backup}\"]\n",
        h = argon2id(PASSWORD)
    )
}

fn config(login_extra: &str) -> String {
    toml()
        .tokens("access_ttl = \"15m\"\nrefresh_ttl = \"7d\"")
        .table(&format!(
            "[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"\n\
             cookie = {{ name = \"pc_session\", secure = false }}\n{login_extra}"
        ))
        .table("[roles]\nuser = { permissions = [\"orders:read\"] }")
        .route("api", "/api/**", "roles_any = [\"user\"]")
        .route("vault", "/vault/**", "require_mfa = true")
        .build()
}

async fn start(login_extra: &str) -> Gateway {
    Gateway::start_frozen(
        &config(login_extra),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await
}

fn code(gw: &Gateway) -> String {
    let secret = totp_rs::Secret::Encoded(TOTP.into()).to_bytes().unwrap();
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret)
        .generate(gw.clock_now() as u64)
}

async fn login_with(gw: &Gateway, user: &str, totp: Option<&str>) -> Response {
    let mut body = json!({"username": user, "password": PASSWORD});
    if let Some(c) = totp {
        body["totp"] = c.into();
    }
    gw.post_json("/auth/login", &[], &body).await
}

async fn get(gw: &Gateway, path: &str, access: &str) -> Response {
    gw.get(path, &[("Authorization", &bearer(access))]).await
}

#[tokio::test]
async fn tokens_say_when_and_how_their_user_signed_in() {
    let gw = start("").await;
    let at = gw.clock_now();
    let (access, refresh_token) = pair(&login_with(&gw, "alice", None).await);
    let c = claims(&access);
    assert_eq!(
        (c["auth_time"].clone(), c["amr"].clone()),
        (json!(at), json!(["pwd"]))
    );
    assert_eq!(claims(&refresh_token)["auth_time"], json!(at));
    // A refresh later: the same login, by the same means.
    gw.advance_clock(120);
    let (renewed, _) = pair(&refresh(&gw, &refresh_token).await);
    let c = claims(&renewed);
    assert_eq!(
        (c["auth_time"].clone(), c["amr"].clone()),
        (json!(at), json!(["pwd"]))
    );
    assert_ne!(claims(&renewed)["iat"], json!(at));
    let totp = code(&gw);
    let (bob, _) = pair(&login_with(&gw, "bob", Some(&totp)).await);
    assert_eq!(claims(&bob)["amr"], json!(["pwd", "otp", "mfa"]));
    let (bob_backup, _) = pair(&login_with(&gw, "bob", Some(BACKUP)).await);
    assert_eq!(claims(&bob_backup)["amr"], json!(["pwd", "mfa"]));

    // A route that requires a second factor: RFC 9470's 401 for a password alone.
    let r = get(&gw, "/vault/x", &renewed).await;
    r.assert_refusal(401, "insufficient_user_authentication");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains(r#"error="insufficient_user_authentication""#)));
    assert_eq!(get(&gw, "/vault/x", &bob).await.status, 200);
    // Another issuer's token counts by its own `amr`.
    let mut other = access_claims("u-carol", &["user"]);
    other.insert("amr".into(), json!(["pwd", "hwk", "mfa"]));
    assert_eq!(get(&gw, "/vault/x", &hs_token(&other)).await.status, 200);
    get(
        &gw,
        "/vault/x",
        &hs_token(&access_claims("u-dan", &["user"])),
    )
    .await
    .assert_refusal(401, "insufficient_user_authentication");
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_lifetime() {
    let gw = start("session_idle_timeout = \"1h\"\nsession_max_lifetime = \"3h\"").await;
    // Idle: an hour and a minute without a refresh ends the session.
    let (_, idle) = pair(&login_with(&gw, "alice", None).await);
    gw.advance_clock(61 * 60);
    refresh(&gw, &idle)
        .await
        .assert_refusal(401, "invalid_grant");
    // Refreshed in time, it lives on, but not past its lifetime.
    let (_, mut token) = pair(&login_with(&gw, "alice", None).await);
    let mut refreshed = 0;
    loop {
        gw.advance_clock(50 * 60);
        let r = refresh(&gw, &token).await;
        if r.status != 200 {
            r.assert_refusal(401, "invalid_grant");
            break;
        }
        token = pair(&r).1;
        refreshed += 1;
        assert!(refreshed < 10, "the session outlived its lifetime");
    }
    // 50, 100 and 150 minutes pass; at 200 (past 3 h) no more.
    assert_eq!(refreshed, 3);
    // A refresh token never outlives the session: its `exp` is the session's end.
    let (_, fresh) = pair(&login_with(&gw, "alice", None).await);
    let c = claims(&fresh);
    let lifetime = c["exp"].as_i64().unwrap() - c["auth_time"].as_i64().unwrap();
    assert_eq!(lifetime, 3 * 3600);
}

#[tokio::test]
async fn a_user_holds_at_most_max_sessions() {
    let gw = start("max_sessions_per_user = 2").await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(pair(&login_with(&gw, "alice", None).await));
        gw.advance_clock(1);
    }
    // The least recently used one made room.
    get(&gw, "/api/x", &sessions[0].0)
        .await
        .assert_refusal(401, "invalid_token");
    refresh(&gw, &sessions[0].1)
        .await
        .assert_refusal(401, "invalid_grant");
    for (access, _) in &sessions[1..] {
        assert_eq!(get(&gw, "/api/x", access).await.status, 200);
    }
}

#[tokio::test]
async fn a_foreign_page_cannot_sign_a_browser_in() {
    let gw = start("").await;
    // What a test request sends as `Host`: the gateway's own origin.
    let own = "http://gateway.test".to_string();
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    let mut checks = Checks::new();
    for (case, path, origin, status) in [
        (
            "another origin",
            "/auth/login",
            Some("https://evil.test"),
            403,
        ),
        ("its own origin", "/auth/login", Some(own.as_str()), 200),
        ("no Origin (not a browser)", "/auth/login", None, 200),
        (
            "the token endpoint",
            "/auth/token",
            Some("https://evil.test"),
            403,
        ),
        (
            "the mfa endpoint",
            "/auth/mfa",
            Some("https://evil.test"),
            403,
        ),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        let body = match path {
            "/auth/token" => format!("grant_type=password&username=alice&password={PASSWORD}"),
            _ => body.clone(),
        };
        if path == "/auth/token" {
            headers[0] = ("Content-Type", "application/x-www-form-urlencoded");
        }
        let r = gw.request("POST", path, &headers, &body).await;
        checks.eq(case, r.status, status);
        if status == 403 {
            checks.eq(
                (case, "error"),
                r.json()["error"].clone(),
                json!("invalid_origin"),
            );
        }
    }
    // A foreign Referer counts as the origin when there is no Origin.
    let r = gw
        .request(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("Referer", "https://evil.test/form"),
            ],
            &body,
        )
        .await;
    checks.eq("a foreign Referer", r.status, 403);
}

/// The cookies a response sets, by name: (value, Max-Age).
fn set_cookies(r: &Response) -> Vec<(String, String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let max_age = attrs
                .split(';')
                .filter_map(|a| a.trim().strip_prefix("Max-Age="))
                .next()
                .unwrap_or_default();
            (name.to_string(), value.to_string(), max_age.to_string())
        })
        .collect()
}

fn cookie_of<'a>(cookies: &'a [(String, String, String)], name: &str) -> &'a str {
    &cookies.iter().find(|(n, _, _)| n == name).unwrap().1
}

#[tokio::test]
async fn a_browser_session_is_renewed_in_passing() {
    let gw = start("").await;
    let r = login_with(&gw, "alice", None).await;
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let refresh_cookie = cookie_of(&cookies, "pc_session_refresh").to_string();
    assert_eq!(refresh_cookie, r.json()["refresh_token"].as_str().unwrap());
    let sid = claims(&refresh_cookie)["sid"].clone();

    // Sixteen minutes on, the browser has dropped the expired access cookie: the refresh
    // cookie alone renews the session in passing, and the request goes through.
    gw.advance_clock(16 * 60);
    let sent = format!("pc_session_refresh={refresh_cookie}; theme=dark");
    let r = gw.get("/api/orders", &[("Cookie", &sent)]).await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-user-id"], ["u-alice"]);
    assert_eq!(echo.headers["x-auth-method"], ["cookie"]);
    assert_eq!(
        echo.headers["cookie"],
        ["theme=dark"],
        "no session cookie upstream"
    );
    let renewed = set_cookies(&r);
    let access = cookie_of(&renewed, "pc_session").to_string();
    let next_refresh = cookie_of(&renewed, "pc_session_refresh").to_string();
    assert_eq!(claims(&access)["sid"], sid, "the same session");
    assert_ne!(next_refresh, refresh_cookie, "rotated");
    eprintln!(
        "COOKIE renewed in passing: new access token jti {}, refresh rotated, upstream saw {:?}",
        claims(&access)["jti"],
        echo.headers["x-user-id"]
    );

    // Thirteen minutes later the access cookie expires within a fifth of its life: renewed
    // again, while still valid.
    gw.advance_clock(13 * 60);
    let sent = format!("pc_session={access}; pc_session_refresh={next_refresh}");
    let r = gw.get("/api/orders", &[("Cookie", &sent)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(set_cookies(&r).len(), 2, "renewed before it expires");
    // A fresh one is not.
    let fresh = set_cookies(&r);
    let sent = format!(
        "pc_session={}; pc_session_refresh={}",
        cookie_of(&fresh, "pc_session"),
        cookie_of(&fresh, "pc_session_refresh")
    );
    let r = gw.get("/api/orders", &[("Cookie", &sent)]).await;
    assert_eq!((r.status, set_cookies(&r).len()), (200, 0));

    // Logout clears both.
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("Cookie", &sent), ("Origin", "http://gateway.test")],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    let cleared = set_cookies(&r);
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|(_, v, age)| v.is_empty() && age == "0"));
    // A spent refresh cookie renews nothing.
    gw.advance_clock(16 * 60);
    let sent = format!("pc_session_refresh={refresh_cookie}");
    let r = gw.get("/api/orders", &[("Cookie", &sent)]).await;
    r.assert_refusal(401, "missing_credentials");
}
