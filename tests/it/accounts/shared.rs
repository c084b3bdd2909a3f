//! Two gateways on one PostgreSQL and one Redis: what one instance changes holds on the
//! other within a second (keys through the database's change log, revocations through
//! Redis). The times measured are printed.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::login::{login, pair};

pub(super) async fn gateway(db: &PgDatabase, redis: &RedisServer) -> Gateway {
    gateway_on(&db.url(), redis).await
}

/// As `gateway`, on the database at `backend_url` (a relay's, say).
pub(super) async fn gateway_on(backend_url: &str, redis: &RedisServer) -> Gateway {
    let toml = toml()
        .admin(Some(ADMIN))
        .tokens("access_ttl = \"15m\"")
        .table(&format!(
            "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"shared:\"",
            redis.url()
        ))
        .table(&format!(
            "[login]\nusers_db = \"{backend_url}\"\ndb_key = \"{DB_KEY}\"\nrate_limit = \"1000/s\"\n\
             registration = {{ enabled = true, roles = [\"user\"] }}"
        ))
        .table("[roles]\nuser = { permissions = [\"orders:read\"] }")
        .route("api", "/api/**", r#"roles_any = ["user"]"#)
        .build();
    let gw = Gateway::start(&toml, start_echo().await).await;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw
}

/// How long until `status` of `check` is `want` (polled every 5 ms), at most 5 s.
pub(super) async fn until_status<F, Fut>(want: u16, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check().await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never {want} within 5 s");
}

#[tokio::test]
async fn a_key_made_on_one_instance_works_on_the_other_within_a_second() {
    let (db, redis) = (PgDatabase::create().await, RedisServer::start().await);
    let (a, b) = (gateway(&db, &redis).await, gateway(&db, &redis).await);
    let (access, _) = signed_up(&a, "sam").await;
    let r = me(
        &a,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "ci"})),
    )
    .await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let took = until_status(200, || async { with_key(&b, &key).await.status }).await;
    eprintln!("PROPAGATION key created on A, accepted on B after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    assert_eq!(
        me(&a, "DELETE", &format!("/auth/api-keys/{id}"), &access, None)
            .await
            .status,
        204
    );
    let took = until_status(401, || async { with_key(&b, &key).await.status }).await;
    eprintln!("PROPAGATION key deleted on A, refused on B after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn a_user_disabled_on_one_instance_is_refused_on_the_other_within_a_second() {
    let (db, redis) = (PgDatabase::create().await, RedisServer::start().await);
    let (a, b) = (gateway(&db, &redis).await, gateway(&db, &redis).await);
    let (access, _) = signed_up(&a, "tia").await;
    let key = me(
        &a,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "ci"})),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    until_status(200, || async { with_key(&b, &key).await.status }).await;
    // B verifies the token itself (same issuer), and has it cached.
    assert_eq!(with_token(&b, &access).await.status, 200);
    assert_eq!(
        admin(
            &a,
            "PATCH",
            "/admin/users/tia",
            Some(json!({"disabled": true}))
        )
        .await
        .status,
        200
    );
    let token_took = until_status(401, || async { with_token(&b, &access).await.status }).await;
    let key_took = until_status(401, || async { with_key(&b, &key).await.status }).await;
    eprintln!("PROPAGATION user disabled on A: token refused on B after {token_took:?}, key after {key_took:?} more");
    assert!(token_took < Duration::from_secs(1) && key_took < Duration::from_secs(1));
    login(&b, "tia", PASSWORD)
        .await
        .assert_refusal(401, "invalid_credentials");
    // And back: enabled on B, a login on A works.
    admin(
        &b,
        "PATCH",
        "/admin/users/tia",
        Some(json!({"disabled": false})),
    )
    .await;
    pair(&login(&a, "tia", PASSWORD).await);
}

/// Without notifications (SQLite has none), the poll carries a change: two gateways on one
/// SQLite file, which docs/CONFIG.md keeps to one instance, show the backstop on its own.
#[tokio::test]
async fn without_notifications_the_poll_carries_changes_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.db");
    let toml = config(&Backend::Sqlite, "")
        .build()
        .replace("sqlite://users.db", &format!("sqlite://{}", file.display()));
    let a = Gateway::start(&toml, start_echo().await).await;
    let b = Gateway::start(&toml, start_echo().await).await;
    let (access, _) = signed_up(&a, "una").await;
    let key = me(
        &a,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "ci"})),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let took = until_status(200, || async { with_key(&b, &key).await.status }).await;
    eprintln!("PROPAGATION (poll only) key created on A, accepted on B after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// Sessions live in the store beside the refresh state: on Redis, every instance lists them,
/// and one ended on one instance no longer refreshes on the other.
#[tokio::test]
async fn sessions_in_redis_are_listed_and_ended_from_any_instance() {
    let (db, redis) = (PgDatabase::create().await, RedisServer::start().await);
    let (a, b) = (gateway(&db, &redis).await, gateway(&db, &redis).await);
    let (on_a, _) = signed_up(&a, "vic").await;
    let r = b
        .request(
            "POST",
            "/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("User-Agent", "tablet"),
            ],
            &json!({"username": "vic", "password": PASSWORD}).to_string(),
        )
        .await;
    let (on_b, b_refresh) = pair(&r);
    let listed = me(&a, "GET", "/auth/sessions", &on_a, None).await.json();
    let sessions = listed["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{listed}");
    let tablet = sessions
        .iter()
        .find(|s| s["user_agent"] == "tablet")
        .expect("B's session, listed on A");
    assert_eq!(tablet["current"], false);
    let sid = tablet["sid"].as_str().unwrap();
    assert_eq!(
        me(&a, "DELETE", &format!("/auth/sessions/{sid}"), &on_a, None)
            .await
            .status,
        204
    );
    let took = until_status(401, || async { with_token(&b, &on_b).await.status }).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(crate::login::refresh(&b, &b_refresh).await.status, 401);
    let left = me(&b, "GET", "/auth/sessions", &on_a, None).await.json();
    assert_eq!(left["sessions"].as_array().unwrap().len(), 1, "{left}");
}
