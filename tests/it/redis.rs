//! The Redis store through real gateways sharing a real `redis-server` (standalone; the test
//! support starts it on a free port and kills it): revocations across instances within a
//! second, the refresh race, shared lockouts, global rate limits, an outage and its recovery,
//! and deployments kept apart by `key_prefix`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::login::{argon2id, call, login, pair, refresh};
use crate::support::*;

const PASSWORD: &str = "shared-state-password";

fn users() -> String {
    format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(PASSWORD)
    )
}

/// A gateway on `redis` with `key_prefix`; `extra` goes into `[store]`.
fn config(redis: &RedisServer, prefix: &str, store_extra: &str) -> String {
    config_for(&format!("\"{}\"", redis.url()), prefix, store_extra)
}

/// As `config`, `redis_url` written as given (a string or a list).
fn config_for(redis_url: &str, prefix: &str, store_extra: &str) -> String {
    toml()
        .table(&format!(
            "[store]\nbackend = \"redis\"\nredis_url = {redis_url}\nkey_prefix = \"{prefix}\"\n{store_extra}"
        ))
        .table("[login]\nrate_limit = \"1000/s\"\nmax_failed_attempts = 3\nlockout = \"10m\"")
        .table(
            r#"[roles]
viewer = { permissions = ["orders:read"] }"#,
        )
        .table(
            r#"[rate_limits]
shared = { rate = "1/h", burst = 40, key = "ip", scope = "global" }"#,
        )
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .route("limited", "/limited/**", "auth = \"none\"\nrate_limit = [\"shared\"]")
        .route("public", "/public/**", "auth = \"none\"")
        .build()
}

async fn gateway(redis: &RedisServer, prefix: &str, store_extra: &str) -> Gateway {
    let gw = Gateway::start_with_files(
        &config(redis, prefix, store_extra),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await;
    wait_until_connected(&gw).await;
    gw
}

/// A gateway whose clock the test moves (for `max_staleness`).
async fn frozen_gateway(redis: &RedisServer, store_extra: &str) -> Gateway {
    let gw = Gateway::start_frozen(
        &config(redis, "outage:", store_extra),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await;
    wait_until_connected(&gw).await;
    gw
}

/// Login answers 503 until the store is reachable and synced.
pub(crate) async fn wait_until_connected(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // A name of its own each time: probes must not lock anyone out.
    let probe = format!("probe-{}", uuid::Uuid::new_v4());
    while Instant::now() < deadline {
        let r = login(gw, &probe, "x").await;
        if r.status == 401 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway did not reach redis:\n{}", gw.stdout());
}

/// Polls `call` until it is refused; returns how long that took.
async fn time_until_refused(gw: &Gateway, access: &str, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if call(gw, access).await.status == 401 {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still accepted after {within:?}");
}

#[tokio::test]
async fn a_revocation_on_one_instance_holds_on_the_other_within_a_second() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis, "shared:", "").await;
    let b = gateway(&redis, "shared:", "").await;
    let (access, refresh_token) = pair(&login(&a, "alice", PASSWORD).await);
    assert_eq!(call(&b, &access).await.status, 200);

    let r = a
        .request(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&access))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    let took = time_until_refused(&b, &access, Duration::from_secs(1)).await;
    call(&b, &access).await.assert_refusal(401, "invalid_token");
    refresh(&b, &refresh_token)
        .await
        .assert_refusal(401, "invalid_grant");

    // Revoke-all of the subject, from B this time, reaches A.
    let (s1, _) = pair(&login(&a, "alice", PASSWORD).await);
    let (s2, _) = pair(&login(&b, "alice", PASSWORD).await);
    let r = b
        .request(
            "POST",
            "/auth/logout?all=true",
            &[("Authorization", &bearer(&s2))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    let took_all = time_until_refused(&a, &s1, Duration::from_secs(1)).await;
    println!("revocation seen on the other instance after {took:?} and {took_all:?}");
    // Every key has a TTL: nothing accumulates forever.
    let keys = redis.cli(&["--scan", "--pattern", "shared:*"]);
    assert!(!keys.is_empty());
    for key in keys.lines() {
        let ttl: i64 = redis.cli(&["TTL", key]).parse().unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let redis = RedisServer::start_tls().await;
    let ca = format!("redis_ca_file = \"{}/ca_cert.pem\"", keys_dir().display());
    let a = gateway(&redis, "tls:", &ca).await;
    let b = gateway(&redis, "tls:", &ca).await;
    assert!(redis.url().starts_with("rediss://"));
    let (access, _) = pair(&login(&a, "alice", PASSWORD).await);
    let r = a
        .request(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&access))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    time_until_refused(&b, &access, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_redis_cluster_through_the_url_list() {
    let cluster = RedisCluster::start().await;
    let urls = format!("{:?}", cluster.urls());
    let start = || async {
        let gw = Gateway::start_with_files(
            &config_for(&urls, "cluster:", ""),
            start_echo().await,
            &[("users.toml", &users())],
        )
        .await;
        wait_until_connected(&gw).await;
        gw
    };
    let a = start().await;
    let b = start().await;
    // No pub/sub in cluster mode: the poll alone brings the revocation within a second.
    let (access, refresh_token) = pair(&login(&a, "alice", PASSWORD).await);
    let (_, r2) = pair(&refresh(&b, &refresh_token).await);
    refresh(&a, &refresh_token)
        .await
        .assert_refusal(401, "invalid_grant");
    time_until_refused(&b, &access, Duration::from_secs(1)).await;
    refresh(&b, &r2).await.assert_refusal(401, "invalid_grant");
    let mut allowed = 0;
    for _ in 0..30 {
        for gw in [&a, &b] {
            if gw.get("/limited/x", &[]).await.status == 200 {
                allowed += 1;
            }
        }
    }
    assert_eq!(allowed, 40);
}

#[tokio::test]
async fn two_instances_racing_to_rotate_one_refresh_token_exactly_one_wins() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis, "race:", "").await;
    let b = gateway(&redis, "race:", "").await;
    for _ in 0..5 {
        let (_, refresh_token) = pair(&login(&a, "alice", PASSWORD).await);
        let (ra, rb) = tokio::join!(refresh(&a, &refresh_token), refresh(&b, &refresh_token));
        let wins = [ra.status, rb.status].iter().filter(|&&s| s == 200).count();
        assert_eq!(wins, 1, "{} and {}", ra.status, rb.status);
        let loser = if ra.status == 200 { rb } else { ra };
        loser.assert_refusal(401, "invalid_grant");
    }
}

#[tokio::test]
async fn failures_on_two_instances_add_up_to_one_lockout() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis, "lock:", "").await;
    let b = gateway(&redis, "lock:", "").await;
    login(&a, "alice", "wrong")
        .await
        .assert_refusal(401, "invalid_credentials");
    login(&b, "alice", "wrong")
        .await
        .assert_refusal(401, "invalid_credentials");
    login(&a, "alice", "wrong")
        .await
        .assert_refusal(401, "invalid_credentials");
    for gw in [&a, &b] {
        let r = login(gw, "alice", PASSWORD).await;
        r.assert_refusal(429, "account_locked");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((590..=600).contains(&retry), "{retry}");
    }
    // MFA and single-use markers are shared the same way (tests/it/login.rs covers their
    // rules); an unknown mfa_token is unknown everywhere.
    b.post_json(
        "/auth/mfa",
        &[],
        &json!({"mfa_token": "nope", "code": "123456"}),
    )
    .await
    .assert_refusal(401, "invalid_grant");
}

#[tokio::test]
async fn a_global_limit_is_one_budget_for_both_instances() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis, "global:", "").await;
    let b = gateway(&redis, "global:", "").await;
    // 120 requests from one client, half through each instance, four at a time: the
    // budget is 40 in all (burst 40, 1 an hour back).
    let mut allowed = 0;
    for round in 0..30 {
        let (r1, r2, r3, r4) = tokio::join!(
            a.get("/limited/x", &[]),
            b.get("/limited/x", &[]),
            a.get("/limited/x", &[]),
            b.get("/limited/x", &[]),
        );
        for r in [r1, r2, r3, r4] {
            match r.status {
                200 => allowed += 1,
                429 => {
                    r.assert_refusal(429, "rate_limited");
                    assert_eq!(r.header("ratelimit-limit"), Some("40"));
                }
                other => panic!("round {round}: {other}"),
            }
        }
    }
    assert_eq!(
        allowed, 40,
        "one budget, exactly (the target is within 10 %)"
    );
}

#[tokio::test]
async fn redis_killed_and_restarted_under_traffic() {
    let mut redis = RedisServer::start().await;
    let closed = frozen_gateway(&redis, "max_staleness = \"2s\"").await;
    let open = frozen_gateway(&redis, "on_failure = \"open\"\nmax_staleness = \"2s\"").await;
    let (revoked, _) = pair(&login(&closed, "alice", PASSWORD).await);
    let (access, _) = pair(&login(&closed, "alice", PASSWORD).await);
    let r = closed
        .request(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&revoked))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    time_until_refused(&open, &revoked, Duration::from_secs(1)).await;

    redis.kill();
    // Traffic through the outage: never a 500, whatever the moment.
    for gw in [&closed, &open] {
        for _ in 0..20 {
            let s = call(gw, &access).await.status;
            assert!(matches!(s, 200 | 503), "{s}");
        }
    }
    // Past max_staleness: closed refuses what needs revocation state, open serves it.
    closed.advance_clock(3);
    open.advance_clock(3);
    let r = call(&closed, &access).await;
    r.assert_refusal(503, "unavailable");
    assert_eq!(call(&open, &access).await.status, 200);
    for gw in [&closed, &open] {
        // Public routes are served; bad and revoked credentials are still 401.
        assert_eq!(gw.get("/public/x", &[]).await.status, 200);
        gw.get("/api/x", &[("Authorization", "Bearer not.a.token")])
            .await
            .assert_refusal(401, "invalid_token");
        call(gw, &revoked)
            .await
            .assert_refusal(401, "invalid_token");
        // The global limit falls back to this instance's own.
        assert_eq!(gw.get("/limited/x", &[]).await.status, 200);
    }
    // The login endpoints need the store: 503, fast.
    login(&closed, "alice", PASSWORD)
        .await
        .assert_refusal(503, "unavailable");
    login(&open, "alice", PASSWORD)
        .await
        .assert_refusal(503, "unavailable");

    // Redis comes back empty; within 10 s both recover by themselves.
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(&closed, &access).await.status != 200 {
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (fresh, _) = pair(&login(&closed, "alice", PASSWORD).await);
    assert_eq!(call(&open, &fresh).await.status, 200);
    // The revocation made before the outage still holds, and the instances wrote it back to
    // the empty Redis: an instance started now learns it.
    call(&closed, &revoked)
        .await
        .assert_refusal(401, "invalid_token");
    let late = frozen_gateway(&redis, "max_staleness = \"2s\"").await;
    time_until_refused(&late, &revoked, Duration::from_secs(2)).await;
    let logs = format!(
        "{}{}",
        closed.settled_stdout().await,
        open.settled_stdout().await
    );
    assert!(logs.contains("redis unreachable"), "the outage is logged");
    assert!(
        !logs.contains(" 500 ") && !logs.contains("\"status\":500"),
        "{logs}"
    );
}

/// Revokes `jti` in the deployment `prefix` as another instance of it would (the revoke
/// script's writes: version, both sorted sets, the publication).
fn publish_revocation(redis: &RedisServer, prefix: &str, jti: &str) {
    let until = now() + 3600;
    let member = format!("j\t{until}\t0\t{jti}");
    let script = "local v = redis.call('INCR', KEYS[1]) \
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) \
        redis.call('ZADD', KEYS[3], v, ARGV[1]) \
        for i = 1, 3 do redis.call('EXPIRE', KEYS[i], 3600) end \
        redis.call('PUBLISH', ARGV[3], v .. '\t' .. ARGV[1]) return v";
    let keys = ["version", "by_until", "by_version"].map(|k| format!("{prefix}{{rev}}:{k}"));
    let channel = format!("{prefix}revocations");
    let until = until.to_string();
    let mut args = vec!["EVAL", script, "3"];
    args.extend(keys.iter().map(String::as_str));
    args.extend([member.as_str(), until.as_str(), channel.as_str()]);
    redis.cli(&args);
}

#[tokio::test]
async fn deployments_with_different_prefixes_do_not_see_each_other() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis, "tenant-a:", "").await;
    let b = gateway(&redis, "tenant-b:", "").await;
    let (access, _) = pair(&login(&a, "alice", PASSWORD).await);
    // Same signing secret: the token is good on both until A revokes it.
    let r = a
        .request(
            "POST",
            "/auth/logout?all=true",
            &[("Authorization", &bearer(&access))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    call(&a, &access).await.assert_refusal(401, "invalid_token");
    for gw in [&a, &b] {
        for _ in 0..3 {
            login(gw, "carol", "wrong").await;
        }
    }
    login(&a, "carol", "wrong")
        .await
        .assert_refusal(429, "account_locked");
    // B learned nothing of A's revocation, and its lockout counts apart. A revocation in B's
    // own deployment, made after A's, shows that B has caught up with everything since.
    let mut control = access_claims("someone", &["viewer"]);
    control.insert("jti".into(), "control-jti".into());
    let control = hs_token(&control);
    assert_eq!(call(&b, &control).await.status, 200);
    publish_revocation(&redis, "tenant-b:", "control-jti");
    time_until_refused(&b, &control, Duration::from_secs(2)).await;
    assert_eq!(call(&b, &access).await.status, 200);
    for _ in 0..2 {
        login(&b, "dave", "wrong").await;
    }
    login(&a, "dave", "wrong").await;
    login(&b, "dave", "wrong")
        .await
        .assert_refusal(401, "invalid_credentials");
    assert!(
        redis
            .cli(&["--scan", "--pattern", "tenant-a:*"])
            .lines()
            .count()
            > 0
    );
    assert!(
        redis
            .cli(&["--scan", "--pattern", "tenant-b:*"])
            .lines()
            .count()
            > 0
    );
}

#[test]
fn bad_store_config_is_refused_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[store]
backend = "redis"
redis_url = ["redis://127.0.0.1:7000", "http://user:hunter2@example.com"]
on_failure = "maybe"
max_staleness = "0s"
key_prefix = ""

[rate_limits]
g = { rate = "5/s", key = "ip", scope = "global" }
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in [
        "gateway.toml:6:40: store.redis_url[1]: not a redis:// or rediss:// URL",
        "gateway.toml:7:14: store.on_failure: `maybe` is not one of closed, open",
        "gateway.toml:8:17: store.max_staleness: must be at least one second",
        "gateway.toml:9:14: store.key_prefix: must not be empty",
    ] {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
    assert!(
        !stderr.contains("hunter2"),
        "a password in a URL is not repeated"
    );
    assert!(
        !stderr.contains("scope"),
        "global scope is fine with redis: {stderr}"
    );

    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[rate_limits]
g = { rate = "5/s", key = "ip", scope = "global" }
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "gateway.toml:5:41: rate_limits.g.scope: scope \"global\" needs the shared store"
        ),
        "{stderr}"
    );
}

/// API-key revocations hold for ever: a Redis that comes back empty gets them back from the
/// instances, with a TTL Redis accepts, and an instance started afterwards refuses the key.
#[tokio::test]
async fn an_emptied_redis_gets_api_key_revocations_back() {
    use sha2::{Digest, Sha256};
    const KEY: &str = "pcs_refill_test_key";
    const ADMIN: &str = "refill-admin-token-0123456789";
    let redis = RedisServer::start().await;
    let config = config(&redis, "refill:", "")
        .replace("threads = 1", "threads = 1\nadmin_listen = \"{ADMIN}\"")
        + &format!(
            "\n[admin]\ntoken = \"{ADMIN}\"\n\n[[api_keys]]\nid = \"k1\"\nkey_sha256 = \"{}\"\nroles = [\"viewer\"]\n",
            hex::encode(Sha256::digest(KEY.as_bytes()))
        );
    let start = || async {
        let gw =
            Gateway::start_with_files(&config, start_echo().await, &[("users.toml", &users())])
                .await;
        wait_until_connected(&gw).await;
        gw
    };
    let a = start().await;
    let with_key = [("X-API-Key", KEY)];
    assert_eq!(a.get("/api/x", &with_key).await.status, 200);
    let r = a
        .admin_request(
            "POST",
            "/admin/revoke",
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            &json!({"api_key_id": "k1"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    a.get("/api/x", &with_key)
        .await
        .assert_refusal(401, "invalid_token");

    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let members = redis.cli(&["ZRANGE", "refill:{rev}:by_until", "0", "-1"]);
        if members.contains("k1") {
            break;
        }
        assert!(Instant::now() < deadline, "never written back: {members:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ttl: i64 = redis
        .cli(&["TTL", "refill:{rev}:by_until"])
        .parse()
        .unwrap();
    assert!(ttl > 300 * 86400, "ttl {ttl}");
    // The instance stays current (its polls succeed), and a new one learns the revocation.
    assert_eq!(a.admin_request("GET", "/readyz", &[], "").await.status, 200);
    let b = start().await;
    b.get("/api/x", &with_key)
        .await
        .assert_refusal(401, "invalid_token");
}

/// A revocation decided while Redis hangs (SIGSTOP: the command times out) is kept, in force
/// on the instance that decided it at once, and written when Redis answers again: the other
/// instance refuses the token within a second of Redis's return. Logout and an operator's
/// revocation alike.
#[tokio::test]
async fn a_revocation_made_while_redis_hangs_reaches_every_instance() {
    let redis = RedisServer::start().await;
    let toml = toml()
        .admin(Some("outage-admin-token-0123456789"))
        .table(&format!(
            "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"paused:\"",
            redis.url()
        ))
        .table("[login]\nrate_limit = \"1000/s\"")
        .table("[roles]\nviewer = {}")
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build();
    let files = [("users.toml", users())];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Gateway::start_with_files(&toml, start_echo().await, &files).await;
    let b = Gateway::start_with_files(&toml, start_echo().await, &files).await;
    wait_until_connected(&a).await;
    wait_until_connected(&b).await;
    let (by_logout, _) = pair(&login(&a, "alice", PASSWORD).await);
    let by_admin_claims = access_claims("bert", &["viewer"]);
    let by_admin = hs_token(&by_admin_claims);
    for t in [&by_logout, &by_admin] {
        assert_eq!(call(&b, t).await.status, 200);
    }

    redis.pause();
    let r = a
        .request(
            "POST",
            "/auth/logout",
            &[("Authorization", &bearer(&by_logout))],
            "",
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let r = a
        .admin_request(
            "POST",
            "/admin/revoke",
            &[
                ("Authorization", "Bearer outage-admin-token-0123456789"),
                ("Content-Type", "application/json"),
            ],
            &json!({ "jti": by_admin_claims["jti"] }).to_string(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    // In force where it was decided, at once.
    for t in [&by_logout, &by_admin] {
        assert_eq!(call(&a, t).await.status, 401);
    }
    redis.resume();
    let back = Instant::now();
    for t in [&by_logout, &by_admin] {
        let took = time_until_refused(&b, t, Duration::from_secs(3)).await;
        assert!(
            back.elapsed() < Duration::from_secs(1),
            "{:?} after Redis came back",
            back.elapsed()
        );
        eprintln!("REDIS a revocation made while Redis hung: refused on the other instance {took:?} after asking, {:?} after Redis's return", back.elapsed());
    }
}
