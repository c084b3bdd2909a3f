//! A stolen 15-minute token must not become lasting access: keys and MFA changes need a
//! recent login, keys are bounded (a cap, a default expiry, a paginated list), and keys follow
//! their owner: disabled, deleted or revoked by an operator, the owner's keys are refused on
//! every instance within a second, the database reachable or not.

use std::time::Duration;

use serde_json::json;

use super::faults::{postgres_addr, through, Relay};
use super::shared::{gateway, gateway_on, until_status};
use super::*;
use crate::login::{login, pair};

/// A gateway on SQLite whose clock the test moves.
async fn frozen(extra: &str) -> Gateway {
    let toml = config(&Backend::Sqlite, extra).build();
    let gw = Gateway::start_frozen(&toml, start_echo().await, &[]).await;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw
}

async fn new_key(gw: &Gateway, access: &str, body: Value) -> Response {
    me(gw, "POST", "/auth/api-keys", access, Some(body)).await
}

#[tokio::test]
async fn keys_and_mfa_need_a_recent_login() {
    let gw = frozen("").await;
    let (access, _) = signed_up(&gw, "rita").await;
    assert_eq!(
        new_key(&gw, &access, json!({"name": "a"})).await.status,
        201
    );
    // Six minutes on, the token is still good (15 minutes), the login no longer recent.
    gw.advance_clock(6 * 60);
    assert_eq!(with_token(&gw, &access).await.status, 200);
    let mut checks = Checks::new();
    for (path, body) in [
        ("/auth/api-keys", Some(json!({"name": "b"}))),
        ("/auth/mfa/setup", None),
        ("/auth/mfa/enable", Some(json!({"code": "123456"}))),
        (
            "/auth/mfa/disable",
            Some(json!({"password": PASSWORD, "code": "123456"})),
        ),
    ] {
        let r = me(&gw, "POST", path, &access, body).await;
        checks.eq(path, r.status, 401);
        checks.eq(
            (path, "error"),
            r.json()["error"].clone(),
            json!("insufficient_user_authentication"),
        );
        checks.eq(
            (path, "challenge"),
            r.header("www-authenticate").is_some_and(|c| {
                c.contains(r#"error="insufficient_user_authentication""#)
                    && c.ends_with("max_age=300")
            }),
            true,
        );
    }
    // A fresh login is recent again.
    let (fresh, _) = pair(&login(&gw, "rita", PASSWORD).await);
    checks.eq(
        "after a new login",
        new_key(&gw, &fresh, json!({"name": "c"})).await.status,
        201,
    );
}

both! {
    async fn a_user_holds_a_bounded_number_of_keys(backend: Backend) {
        let gw = start_with(backend, "max_api_keys_per_user = 5").await;
        let (access, _) = signed_up(&gw, "kurt").await;
        // Twelve at once: exactly the cap is made, the rest refused with 409.
        let attempts = (0..12).map(|i| {
            let (gw, access) = (&gw, access.clone());
            async move { new_key(gw, &access, json!({"name": format!("k{i}")})).await.status }
        });
        let mut statuses = futures_util::future::join_all(attempts).await;
        statuses.sort();
        assert_eq!(statuses, [201, 201, 201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
        let r = new_key(&gw, &access, json!({"name": "one more"})).await;
        r.assert_refusal(409, "too_many_keys");
        let listed = me(&gw, "GET", "/auth/api-keys", &access, None).await.json();
        assert_eq!(listed["api_keys"].as_array().unwrap().len(), 5);
    }
}

#[tokio::test]
async fn keys_expire_by_default_and_are_listed_by_pages() {
    let gw = start(Backend::Sqlite).await;
    let (access, _) = signed_up(&gw, "lena").await;
    let made = new_key(&gw, &access, json!({"name": "ci"})).await.json();
    let expires = made["expires_at"].as_str().expect("a default expiry");
    let in_90_days = |t: &str| {
        let days = (rfc3339_secs(t) - now()) / 86400;
        (89..=90).contains(&days) && rfc3339(rfc3339_secs(t)) == t
    };
    assert!(in_90_days(expires), "{expires}");
    let r = new_key(
        &gw,
        &access,
        json!({"name": "forever", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    r.assert_refusal(400, "invalid_request");
    for i in 0..4 {
        assert_eq!(
            new_key(&gw, &access, json!({"name": format!("k{i}")}))
                .await
                .status,
            201
        );
    }
    // Five keys, two a page.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..4 {
        let path = match &after {
            None => "/auth/api-keys?limit=2".to_string(),
            Some(id) => format!("/auth/api-keys?limit=2&after={id}"),
        };
        let page = me(&gw, "GET", &path, &access, None).await.json();
        for k in page["api_keys"].as_array().unwrap() {
            seen.push(k["name"].as_str().unwrap().to_string());
        }
        after = page["next"].as_str().map(str::to_string);
        if after.is_none() {
            break;
        }
    }
    // Made in the same second: the order is the ids', each key listed once.
    seen.sort();
    assert_eq!(seen, ["ci", "k0", "k1", "k2", "k3"]);
    let r = me(&gw, "GET", "/auth/api-keys?limit=101", &access, None).await;
    r.assert_refusal(400, "invalid_request");
}

fn rfc3339_secs(t: &str) -> i64 {
    let t = chrono_like(t);
    t.expect("an RFC 3339 time")
}

/// Seconds of `YYYY-MM-DDTHH:MM:SSZ` (the form the gateway writes).
fn chrono_like(t: &str) -> Option<i64> {
    let (date, time) = t.strip_suffix('Z')?.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h[0] * 3600 + h[1] * 60 + h[2])
}

/// Disabled with the database cut off from the second instance: its follower cannot learn
/// it, the store's revocation refuses the key there within a second anyway. Deleting, and an
/// operator's revocation of the subject, end the keys the same way.
#[tokio::test]
async fn keys_follow_their_owner_on_every_instance_without_the_database() {
    let (db, redis) = (PgDatabase::create().await, RedisServer::start().await);
    let relay = Relay::start(postgres_addr(&db)).await;
    let a = gateway(&db, &redis).await;
    let b = gateway_on(&through(&db, &relay), &redis).await;
    let mut keys = Vec::new();
    for name in ["olga", "pete", "quin"] {
        let (access, _) = signed_up(&a, name).await;
        let key = new_key(&a, &access, json!({"name": "ci"})).await.json()["key"]
            .as_str()
            .unwrap()
            .to_string();
        until_status(200, || async { with_key(&b, &key).await.status }).await;
        keys.push(key);
    }
    relay.cut();
    let r = admin(
        &a,
        "PATCH",
        "/admin/users/olga",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 200);
    let took = until_status(401, || async { with_key(&b, &keys[0]).await.status }).await;
    eprintln!(
        "KEYS disabled owner: key refused on the other instance (database cut) after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");

    assert_eq!(
        admin(&a, "DELETE", "/admin/users/pete", None).await.status,
        204
    );
    let took = until_status(401, || async { with_key(&b, &keys[1]).await.status }).await;
    eprintln!("KEYS deleted owner: key refused on the other instance after {took:?}");

    let subject = admin(&a, "GET", "/admin/users/quin", None).await.json()["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let r = a
        .admin_request(
            "POST",
            "/admin/revoke",
            &[
                ("Authorization", &format!("Bearer {ADMIN}")),
                ("Content-Type", "application/json"),
            ],
            &json!({ "subject": subject }).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    let took = until_status(401, || async { with_key(&b, &keys[2]).await.status }).await;
    eprintln!("KEYS operator's revocation of the subject: key refused after {took:?}");
    relay.restore();
}

// A deleted user's token makes no key, not even for a later user of the name (the database
// stores a key only for the owner it was asked for: `accounts::db` tests the race).
both! {
    async fn a_deleted_users_token_makes_no_key(backend: Backend) {
        let gw = start(backend).await;
        let (access, _) = signed_up(&gw, "vlad").await;
        assert_eq!(admin(&gw, "DELETE", "/admin/users/vlad", None).await.status, 204);
        assert_eq!(register(&gw, "vlad", PASSWORD).await.status, 201);
        let r = new_key(&gw, &access, json!({"name": "stale"})).await;
        assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        let (fresh, _) = pair(&login(&gw, "vlad", PASSWORD).await);
        let listed = me(&gw, "GET", "/auth/api-keys", &fresh, None).await.json();
        assert_eq!(listed["api_keys"].as_array().unwrap().len(), 0);
    }
}
