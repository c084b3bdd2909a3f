//! The admin listener: health, readiness, metrics (parsed as Prometheus text), and the
//! token-guarded revoke and unlock endpoints.

use serde_json::json;

use crate::login::{argon2id, login, pair};
use crate::support::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
const KEY: &str = "pcs_admin_test_key";

fn config(admin: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    format!(
        r#"
[server]
listen = ["{{LISTEN}}"]
admin_listen = "{{ADMIN}}"
threads = 1

{admin}

[tokens]
issuer = "portcullis"
audience = "api"
secret = "{HS_SECRET}"

[login]
rate_limit = "1000/s"
max_failed_attempts = 2

[roles]
viewer = {{ permissions = ["orders:read"] }}

[[api_keys]]
id = "batch"
key_sha256 = "{digest}"
roles = ["viewer"]

[rate_limits]
tiny = {{ rate = "1/h", burst = 1, key = "ip" }}

[[upstreams]]
name = "echo"
targets = ["{{UPSTREAM}}"]

[[routes]]
name = "api"
path = "/api/**"
upstream = "echo"
roles_any = ["viewer"]

[[routes]]
name = "tiny"
path = "/tiny/**"
upstream = "echo"
auth = "none"
rate_limit = ["tiny"]
"#
    )
}

async fn start(admin: &str) -> Gateway {
    let users = format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id("pw-alice-admin-test")
    );
    let gw = Gateway::start_with_files(
        &config(admin),
        start_echo().await,
        &[("users.toml", &users)],
    )
    .await;
    // The admin listener starts with the proxy; wait for it too.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    gw
}

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

#[tokio::test]
async fn revoke_and_unlock_need_the_admin_token() {
    let gw = start(&format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"")).await;
    assert_eq!(
        gw.admin_request("GET", "/healthz", &[], "").await.status,
        200
    );
    let r = gw.admin_request("GET", "/readyz", &[], "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("ready"))
    );

    let token = hs_token(&access_claims("bob", &["viewer"]));
    let mut claims = access_claims("bob", &["viewer"]);
    claims.insert("jti".into(), json!("jti-to-revoke"));
    let revocable = hs_token(&claims);
    assert_eq!(
        gw.get("/api/x", &[("Authorization", &bearer(&revocable))])
            .await
            .status,
        200
    );

    let body = json!({"jti": "jti-to-revoke"}).to_string();
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token-0123456789")],
        vec![("Authorization", "Basic YWRtaW46YWRtaW4=")],
    ] {
        let r = gw
            .admin_request("POST", "/admin/revoke", &headers, &body)
            .await;
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.json()["error"], "invalid_token");
    }
    // Refused attempts changed nothing.
    assert_eq!(
        gw.get("/api/x", &[("Authorization", &bearer(&revocable))])
            .await
            .status,
        200
    );

    let a = auth();
    let h = [
        ("Authorization", a.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(
        gw.admin_request("POST", "/admin/revoke", &h, &body)
            .await
            .status,
        204
    );
    gw.get("/api/x", &[("Authorization", &bearer(&revocable))])
        .await
        .assert_refusal(401, "invalid_token");
    // Other tokens of bob still work; a subject revocation ends them.
    assert_eq!(
        gw.get("/api/x", &[("Authorization", &bearer(&token))])
            .await
            .status,
        200
    );
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &h,
            &json!({"subject": "bob"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    gw.get("/api/x", &[("Authorization", &bearer(&token))])
        .await
        .assert_refusal(401, "invalid_token");
    // An API key by id.
    assert_eq!(gw.get("/api/x", &[("X-API-Key", KEY)]).await.status, 200);
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &h,
            &json!({"api_key_id": "batch"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = gw.get("/api/x", &[("X-API-Key", KEY)]).await;
    assert_eq!(
        r.assert_refusal(401, "invalid_token")["error_description"],
        "API key revoked"
    );
    // A session, by sid.
    let (access, _) = pair(&login(&gw, "alice", "pw-alice-admin-test").await);
    let sid = {
        use base64::Engine;
        let payload = access.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["sid"].clone()
    };
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &h,
            &json!({"sid": sid}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    gw.get("/api/x", &[("Authorization", &bearer(&access))])
        .await
        .assert_refusal(401, "invalid_token");
    for bad in [
        "",
        "[]",
        "{}",
        r#"{"jti": 5}"#,
        r#"{"jti": "a", "sid": "b"}"#,
    ] {
        let r = gw.admin_request("POST", "/admin/revoke", &h, bad).await;
        assert_eq!(r.status, 400, "{bad}");
    }

    // Unlock: two failures lock alice; the admin clears it.
    for _ in 0..2 {
        login(&gw, "alice", "wrong").await;
    }
    login(&gw, "alice", "pw-alice-admin-test")
        .await
        .assert_refusal(429, "account_locked");
    let r = gw
        .admin_request(
            "POST",
            "/admin/unlock",
            &[("Authorization", &a)],
            r#"{"username": "alice"}"#,
        )
        .await;
    assert_eq!(r.status, 204);
    pair(&login(&gw, "alice", "pw-alice-admin-test").await);
    assert_eq!(
        gw.admin_request("POST", "/admin/unlock", &[], r#"{"username": "alice"}"#)
            .await
            .status,
        401
    );
    let audit = gw.settled_stdout().await;
    assert!(audit.contains(r#""event":"revocation""#) && audit.contains(r#""event":"unlock""#));
    assert!(
        !audit.contains(ADMIN_TOKEN),
        "the admin token is never logged"
    );
    assert_eq!(gw.admin_request("GET", "/nope", &[], "").await.status, 404);
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off_but_health_and_metrics_stay() {
    let gw = start("").await;
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &[("Authorization", &auth())],
            r#"{"jti":"x"}"#,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        gw.admin_request("GET", "/healthz", &[], "").await.status,
        200
    );
    assert_eq!(
        gw.admin_request("GET", "/metrics", &[], "").await.status,
        200
    );
}

fn scrape_of(r: &Response) -> prometheus_parse::Scrape {
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.clone()).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of a counter or gauge sample with exactly these labels (0 when absent).
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or(0.0)
}

fn histogram_count(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => f64::NAN,
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_move_with_traffic() {
    let gw = start("").await;
    let before = scrape_of(&gw.admin_request("GET", "/metrics", &[], "").await);
    assert_eq!(value(&before, "portcullis_store_up", &[]), 1.0);
    assert_eq!(
        value(
            &before,
            "portcullis_config_reloads_total",
            &[("result", "ok")]
        ),
        0.0
    );

    let good = hs_token(&access_claims("carol", &["viewer"]));
    for _ in 0..3 {
        assert_eq!(
            gw.get("/api/x", &[("Authorization", &bearer(&good))])
                .await
                .status,
            200
        );
    }
    gw.get("/api/x", &[])
        .await
        .assert_refusal(401, "missing_credentials");
    gw.get("/api/x", &[("Authorization", "Bearer garbage")])
        .await
        .assert_refusal(401, "invalid_token");
    let stranger = hs_token(&access_claims("dan", &["nobody"]));
    gw.get("/api/x", &[("Authorization", &bearer(&stranger))])
        .await
        .assert_refusal(403, "insufficient_scope");
    assert_eq!(gw.get("/tiny/x", &[]).await.status, 200);
    gw.get("/tiny/x", &[])
        .await
        .assert_refusal(429, "rate_limited");
    gw.get("/nowhere", &[])
        .await
        .assert_refusal(404, "not_found");

    let after = scrape_of(&gw.admin_request("GET", "/metrics", &[], "").await);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        moved(
            "portcullis_requests_total",
            &[("route", "api"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        moved(
            "portcullis_requests_total",
            &[("route", "api"), ("status", "401")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "portcullis_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "portcullis_auth_failures_total",
            &[("reason", "missing_credentials")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "portcullis_auth_failures_total",
            &[("reason", "invalid_token")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "portcullis_auth_failures_total",
            &[("reason", "insufficient_scope")]
        ),
        1.0
    );
    assert_eq!(
        moved("portcullis_rate_limited_total", &[("policy", "tiny")]),
        1.0
    );
    assert!(
        histogram_count(
            &after,
            "portcullis_request_duration_seconds",
            &[("route", "api")]
        ) >= 6.0
    );
    assert!(
        histogram_count(
            &after,
            "portcullis_upstream_duration_seconds",
            &[("upstream", "echo")]
        ) >= 4.0
    );
    // Labels are bounded: no path, no user id anywhere.
    let text = String::from_utf8(gw.admin_request("GET", "/metrics", &[], "").await.body).unwrap();
    for leak in ["/api/x", "carol", "/nowhere", "dan"] {
        assert!(!text.contains(leak), "{leak} in the metrics");
    }
}
