//! Login attempts under pressure (SPEC section 4's preamble), on the memory and the redis
//! backend: attempt limits that hold when many attempts arrive at once, usernames too long to
//! work on, and refusals whose time does not tell unknown users from wrong passwords.

use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use serde_json::json;

use crate::login::login;
use crate::support::*;

const PASSWORD: &str = "the-right-password";
/// RFC 6238's SHA-1 test secret.
const TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// argon2id at its default cost (about 15 ms a check here): long enough that attempts sent
/// together are all in flight before the first one is decided.
fn default_cost_hash(password: &str) -> String {
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

fn users(hash: &str) -> String {
    format!(
        r#"
[[users]]
username = "alice"
password_hash = "{hash}"
roles = ["viewer"]

[[users]]
username = "bob"
password_hash = "{hash}"
roles = ["viewer"]
totp_secret = "{TOTP}"
"#
    )
}

/// `store`: the `[store]` section (empty for the memory backend); `login_extra` goes into
/// `[login]`.
fn config(store: &str, login_extra: &str) -> String {
    let mut t = toml()
        .table(&format!("[login]\nrate_limit = \"1000/s\"\n{login_extra}"))
        .table(
            r#"[roles]
viewer = { permissions = ["orders:read"] }"#,
        )
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#);
    if !store.is_empty() {
        t = t.table(store);
    }
    t.build()
}

async fn start(store: &str, login_extra: &str, users_toml: &str) -> Gateway {
    let gw = Gateway::start_with_files(
        &config(store, login_extra),
        start_echo().await,
        &[("users.toml", users_toml)],
    )
    .await;
    // Until the store is reachable, logins answer 503.
    let deadline = Instant::now() + Duration::from_secs(10);
    while login(&gw, "probe-nobody", "x").await.status == 503 {
        assert!(
            Instant::now() < deadline,
            "the store never became reachable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw
}

/// Sends every body to `path` at once; the statuses and error codes, in no order.
async fn all_at_once(gw: &Gateway, path: &str, bodies: Vec<serde_json::Value>) -> Vec<String> {
    let mut tasks = Vec::new();
    for body in bodies {
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.to_string().len()
        );
        let addr = gw.addr;
        tasks.push(tokio::spawn(
            async move { send_raw(addr, raw.as_bytes()).await },
        ));
    }
    let mut out = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        let code = r.json()["error"].as_str().unwrap_or("").to_string();
        out.push(format!("{} {code}", r.status));
    }
    out
}

fn count(outcomes: &[String], what: &str) -> usize {
    outcomes.iter().filter(|o| *o == what).count()
}

async fn concurrent_wrong_passwords(store: &str) {
    let gw = start(
        store,
        "max_failed_attempts = 5",
        &users(&default_cost_hash(PASSWORD)),
    )
    .await;
    for username in ["alice", "nobody-at-all"] {
        let bodies = (0..20)
            .map(|i| json!({"username": username, "password": format!("wrong-{i}")}))
            .collect();
        let outcomes = all_at_once(&gw, "/auth/login", bodies).await;
        assert_eq!(
            count(&outcomes, "401 invalid_credentials"),
            5,
            "{username}: {outcomes:?}"
        );
        assert_eq!(
            count(&outcomes, "429 account_locked"),
            15,
            "{username}: {outcomes:?}"
        );
        // And the right password now: locked.
        login(&gw, username, PASSWORD)
            .await
            .assert_refusal(429, "account_locked");
    }
}

#[tokio::test]
async fn twenty_wrong_passwords_at_once_are_five_evaluated_memory() {
    concurrent_wrong_passwords("").await;
}

#[tokio::test]
async fn twenty_wrong_passwords_at_once_are_five_evaluated_redis() {
    let redis = RedisServer::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"",
        redis.url()
    );
    concurrent_wrong_passwords(&store).await;
}

async fn concurrent_wrong_codes(store: &str) {
    // The user's own limit is high: the mfa_token's five is what is tested.
    let gw = start(
        store,
        "max_failed_attempts = 100",
        &users(&default_cost_hash(PASSWORD)),
    )
    .await;
    let r = login(&gw, "bob", PASSWORD).await;
    let token = r.assert_refusal(401, "mfa_required")["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bodies = (0..20)
        .map(|i| json!({"mfa_token": token, "code": format!("{:06}", 100_000 + i)}))
        .collect();
    let outcomes = all_at_once(&gw, "/auth/mfa", bodies).await;
    assert_eq!(count(&outcomes, "401 invalid_code"), 5, "{outcomes:?}");
    assert_eq!(count(&outcomes, "401 invalid_grant"), 15, "{outcomes:?}");
}

#[tokio::test]
async fn twenty_codes_at_once_against_one_mfa_token_are_five_checked_memory() {
    concurrent_wrong_codes("").await;
}

#[tokio::test]
async fn twenty_codes_at_once_against_one_mfa_token_are_five_checked_redis() {
    let redis = RedisServer::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"",
        redis.url()
    );
    concurrent_wrong_codes(&store).await;
}

#[tokio::test]
async fn an_mfa_login_that_asks_for_the_code_is_no_failed_attempt() {
    let gw = start(
        "",
        "max_failed_attempts = 2",
        &users(&default_cost_hash(PASSWORD)),
    )
    .await;
    for _ in 0..4 {
        login(&gw, "bob", PASSWORD)
            .await
            .assert_refusal(401, "mfa_required");
    }
}

#[tokio::test]
async fn usernames_over_256_bytes_are_refused_before_any_work() {
    let gw = start(
        "",
        "max_failed_attempts = 2",
        &users(&default_cost_hash(PASSWORD)),
    )
    .await;
    let long = "u".repeat(60 * 1024);
    for _ in 0..3 {
        let r = login(&gw, &long, "whatever").await;
        let body = r.assert_refusal(400, "invalid_request");
        assert_eq!(body["error_description"], "username too long");
    }
    // The token endpoint's password grant too.
    let r = gw
        .post_form(
            "/auth/token",
            &[
                ("grant_type", "password"),
                ("username", &long),
                ("password", "x"),
            ],
        )
        .await;
    r.assert_refusal(400, "invalid_request");
    // 256 bytes is still a username (unknown here: refused as usual).
    login(&gw, &"u".repeat(256), "x")
        .await
        .assert_refusal(401, "invalid_credentials");
    let logs = gw.settled_stdout().await;
    assert!(
        !logs.contains(&"u".repeat(257)),
        "the long name reached the log"
    );
}

/// How long a login that must be refused as `invalid_credentials` took.
async fn refusal_time(gw: &Gateway, username: &str) -> Duration {
    let start = Instant::now();
    login(gw, username, "wrong")
        .await
        .assert_refusal(401, "invalid_credentials");
    start.elapsed()
}

/// With bcrypt users, an unknown username must not answer faster than a wrong password: the
/// decoy check costs what the users' hashes cost (here bcrypt at cost 10, ~60 ms, against
/// the ~15 ms of argon2's default).
#[tokio::test]
async fn unknown_users_take_as_long_as_wrong_passwords_with_bcrypt_users() {
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let users = format!(
        "[[users]]\nusername = \"carol\"\npassword_hash = \"{hash}\"\nroles = [\"viewer\"]\n"
    );
    let gw = start("", "max_failed_attempts = 1000", &users).await;
    // Interleaved, so that whatever else the machine does falls on both alike.
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..5 {
        wrong.push(refusal_time(&gw, "carol").await);
        unknown.push(refusal_time(&gw, &format!("nobody-{round}")).await);
    }
    wrong.sort();
    unknown.sort();
    let ratio = unknown[2].as_secs_f64() / wrong[2].as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "median unknown {:?} against wrong password {:?} (ratio {ratio:.2})",
        unknown[2],
        wrong[2]
    );
}

/// Users of two costs (cheap argon2id, bcrypt at cost 10): no single decoy can match both, so
/// unknown names are spread over the users' costs, each name keeping its own; an unknown name
/// cannot be told from a user of one cost or the other.
#[tokio::test]
async fn unknown_users_take_as_long_as_one_of_the_users_with_mixed_costs() {
    let users = format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n\n\
         [[users]]\nusername = \"carol\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        crate::login::argon2id(PASSWORD),
        bcrypt::hash(PASSWORD, 10).unwrap()
    );
    let gw = start("", "max_failed_attempts = 1000", &users).await;
    let slow = |d: Duration| d > Duration::from_millis(30);
    assert!(slow(refusal_time(&gw, "carol").await));
    assert!(!slow(refusal_time(&gw, "alice").await));
    let mut slow_names = 0;
    for i in 0..12 {
        let name = format!("nobody-{i}");
        let first = slow(refusal_time(&gw, &name).await);
        assert_eq!(
            first,
            slow(refusal_time(&gw, &name).await),
            "{name} changed cost"
        );
        slow_names += usize::from(first);
    }
    assert!(
        (1..12).contains(&slow_names),
        "{slow_names} of 12 unknown names were slow"
    );
}
