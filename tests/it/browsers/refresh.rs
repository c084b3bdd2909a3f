//! `refresh_reuse_grace`: two tabs refreshing at once, or a retried request, get the same
//! successor instead of a revoked session; after the grace, reuse still revokes it. On the
//! memory store and on Redis (one atomic script), with the gateway's clock moved by the test.

use super::*;
use crate::login::{claims, login, pair, refresh};

fn config(store: &str) -> String {
    toml()
        .tokens("access_ttl = \"15m\"")
        .table(store)
        .table(
            "[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"\n\
             refresh_reuse_grace = \"10s\"",
        )
        .table("[roles]\nuser = {}")
        .route("api", "/api/**", "roles_any = [\"user\"]")
        .build()
}

async fn grace_holds_and_ends(gw: &Gateway) {
    let (_, first) = pair(&login(gw, "alice", PASSWORD).await);
    // Two tabs at once: both succeed, with one successor.
    let (a, b) = tokio::join!(refresh(gw, &first), refresh(gw, &first));
    let (a_access, a_refresh) = pair(&a);
    let (b_access, b_refresh) = pair(&b);
    let (ca, cb) = (claims(&a_refresh), claims(&b_refresh));
    eprintln!(
        "REFRESH two at once: {} and {}, successor jti {} and {}",
        a.status, b.status, ca["jti"], cb["jti"]
    );
    assert_eq!(ca["jti"], cb["jti"], "one successor");
    assert_eq!(ca["sid"], cb["sid"]);
    assert_eq!(ca["sid"], claims(&first)["sid"], "the same session");
    for access in [&a_access, &b_access] {
        assert_eq!(crate::login::call(gw, access).await.status, 200);
    }
    // A retry a few seconds later still gets the successor, and the successor rotates.
    gw.advance_clock(9);
    let (_, again) = pair(&refresh(gw, &first).await);
    assert_eq!(claims(&again)["jti"], ca["jti"]);
    let (third_access, third) = pair(&refresh(gw, &a_refresh).await);
    let (_, fourth) = pair(&refresh(gw, &third).await);
    // After the grace, the spent token is reuse: the whole session is revoked.
    gw.advance_clock(11);
    refresh(gw, &third)
        .await
        .assert_refusal(401, "invalid_grant");
    crate::login::call(gw, &third_access)
        .await
        .assert_refusal(401, "invalid_token");
    refresh(gw, &fourth)
        .await
        .assert_refusal(401, "invalid_grant");
}

#[tokio::test]
async fn within_the_grace_a_spent_refresh_token_yields_its_successor_memory() {
    let gw =
        Gateway::start_frozen(&config(""), start_echo().await, &[("users.toml", &users())]).await;
    grace_holds_and_ends(&gw).await;
}

#[tokio::test]
async fn within_the_grace_a_spent_refresh_token_yields_its_successor_redis() {
    let redis = RedisServer::start().await;
    // The test moves the clock by 20 s: revocation state must not count as stale for that.
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nmax_staleness = \"1m\"",
        redis.url()
    );
    let gw = Gateway::start_frozen(
        &config(&store),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await;
    crate::redis::wait_until_connected(&gw).await;
    grace_holds_and_ends(&gw).await;
}

/// Two instances on one Redis, each refreshing the same token at once: both succeed with one
/// successor.
#[tokio::test]
async fn two_instances_refreshing_at_once_share_one_successor() {
    let redis = RedisServer::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"",
        redis.url()
    );
    let files = [("users.toml", users())];
    let files: Vec<(&str, &str)> = files.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Gateway::start_with_files(&config(&store), start_echo().await, &files).await;
    let b = Gateway::start_with_files(&config(&store), start_echo().await, &files).await;
    crate::redis::wait_until_connected(&a).await;
    crate::redis::wait_until_connected(&b).await;
    for _ in 0..5 {
        let (_, first) = pair(&login(&a, "alice", PASSWORD).await);
        let (ra, rb) = tokio::join!(refresh(&a, &first), refresh(&b, &first));
        let (_, ra) = pair(&ra);
        let (_, rb) = pair(&rb);
        assert_eq!(claims(&ra)["jti"], claims(&rb)["jti"]);
    }
    // Without a grace (the default), the same race revokes the session (SPEC section 4).
    let strict = config(&store).replace("refresh_reuse_grace = \"10s\"", "");
    let c = Gateway::start_with_files(&strict, start_echo().await, &files).await;
    crate::redis::wait_until_connected(&c).await;
    let (_, first) = pair(&login(&c, "alice", PASSWORD).await);
    let (r1, r2) = tokio::join!(refresh(&c, &first), refresh(&c, &first));
    let statuses = [r1.status, r2.status];
    assert!(
        statuses.contains(&200) && statuses.contains(&401),
        "{statuses:?}"
    );
}

#[test]
fn check_refuses_a_grace_over_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config("")
        .replace("\"10s\"", "\"2m\"")
        .replace("{LISTEN}", "127.0.0.1:1")
        .replace("{UPSTREAM}", "127.0.0.1:2");
    std::fs::write(dir.path().join("users.toml"), users()).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("login.refresh_reuse_grace: at most 60s"),
        "{err}"
    );
}
