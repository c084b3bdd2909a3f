//! The admin listener: health, readiness, metrics (parsed as Prometheus text), and the
//! token-guarded revoke and unlock endpoints.

use serde_json::json;

use crate::login::{argon2id, claims, login, pair};
use crate::support::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
const KEY: &str = "pcs_admin_test_key";

/// Two login users' worth of config: a viewer role, an API key, a one-request budget.
fn config(admin_token: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    toml()
        .admin(admin_token)
        .table("[login]\nrate_limit = \"1000/s\"\nmax_failed_attempts = 2")
        .table(
            r#"[roles]
viewer = { permissions = ["orders:read"] }"#,
        )
        .table(&format!(
            "[[api_keys]]\nid = \"batch\"\nkey_sha256 = \"{digest}\"\nroles = [\"viewer\"]"
        ))
        .table(
            r#"[rate_limits]
tiny = { rate = "1/h", burst = 1, key = "ip" }"#,
        )
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .route(
            "tiny",
            "/tiny/**",
            r#"auth = "none"
rate_limit = ["tiny"]"#,
        )
        .build()
}

const ALICE_PASSWORD: &str = "pw-alice-admin-test";

async fn start(admin_token: Option<&str>) -> Gateway {
    let users = format!(
        "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(ALICE_PASSWORD)
    );
    let gw = Gateway::start_with_files(
        &config(admin_token),
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

/// A gateway with the admin API on.
async fn with_admin_api() -> Gateway {
    start(Some(ADMIN_TOKEN)).await
}

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// A POST to the admin API with the admin token, as JSON.
async fn admin_post(gw: &Gateway, path: &str, body: &str) -> Response {
    let a = auth();
    let h = [
        ("Authorization", a.as_str()),
        ("Content-Type", "application/json"),
    ];
    gw.admin_request("POST", path, &h, body).await
}

async fn status_with_token(gw: &Gateway, token: &str) -> u16 {
    gw.get("/api/x", &[("Authorization", &bearer(token))])
        .await
        .status
}

fn token_with_jti(sub: &str, jti: &str) -> String {
    let mut claims = access_claims(sub, &["viewer"]);
    claims.insert("jti".into(), json!(jti));
    hs_token(&claims)
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let gw = with_admin_api().await;
    assert_eq!(
        gw.admin_request("GET", "/healthz", &[], "").await.status,
        200
    );
    let r = gw.admin_request("GET", "/readyz", &[], "").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("ready"))
    );
    assert_eq!(gw.admin_request("GET", "/nope", &[], "").await.status, 404);
}

#[tokio::test]
async fn revoke_and_unlock_refuse_a_missing_or_wrong_admin_token() {
    let gw = with_admin_api().await;
    let revocable = token_with_jti("bob", "jti-to-revoke");
    let body = json!({"jti": "jti-to-revoke"}).to_string();
    let mut checks = Checks::new();
    for (path, body) in [
        ("/admin/revoke", body.as_str()),
        ("/admin/unlock", r#"{"username": "alice"}"#),
    ] {
        for headers in [
            vec![],
            vec![("Authorization", "Bearer wrong-token-0123456789")],
            vec![("Authorization", "Basic YWRtaW46YWRtaW4=")],
        ] {
            let r = gw.admin_request("POST", path, &headers, body).await;
            checks.eq((path, &headers), r.status, 401);
            if r.status == 401 {
                checks.eq(
                    (path, &headers),
                    r.json()["error"].clone(),
                    json!("invalid_token"),
                );
            }
        }
    }
    checks.eq(
        "refused attempts changed nothing",
        status_with_token(&gw, &revocable).await,
        200,
    );
}

#[tokio::test]
async fn a_revoked_jti_ends_that_token_only() {
    let gw = with_admin_api().await;
    let revocable = token_with_jti("bob", "jti-to-revoke");
    let other = token_with_jti("bob", "another-jti");
    assert_eq!(status_with_token(&gw, &revocable).await, 200);
    let r = admin_post(&gw, "/admin/revoke", r#"{"jti": "jti-to-revoke"}"#).await;
    assert_eq!(r.status, 204);
    gw.get("/api/x", &[("Authorization", &bearer(&revocable))])
        .await
        .assert_refusal(401, "invalid_token");
    assert_eq!(
        status_with_token(&gw, &other).await,
        200,
        "bob's other tokens work"
    );
}

#[tokio::test]
async fn a_revoked_subject_ends_all_its_tokens() {
    let gw = with_admin_api().await;
    let tokens = [
        hs_token(&access_claims("bob", &["viewer"])),
        token_with_jti("bob", "one"),
    ];
    let carol = hs_token(&access_claims("carol", &["viewer"]));
    let r = admin_post(&gw, "/admin/revoke", r#"{"subject": "bob"}"#).await;
    assert_eq!(r.status, 204);
    for t in &tokens {
        gw.get("/api/x", &[("Authorization", &bearer(t))])
            .await
            .assert_refusal(401, "invalid_token");
    }
    assert_eq!(status_with_token(&gw, &carol).await, 200);
}

#[tokio::test]
async fn a_revoked_api_key_id_ends_that_key() {
    let gw = with_admin_api().await;
    assert_eq!(gw.get("/api/x", &[("X-API-Key", KEY)]).await.status, 200);
    let r = admin_post(&gw, "/admin/revoke", r#"{"api_key_id": "batch"}"#).await;
    assert_eq!(r.status, 204);
    let r = gw.get("/api/x", &[("X-API-Key", KEY)]).await;
    assert_eq!(
        r.assert_refusal(401, "invalid_token")["error_description"],
        "API key revoked"
    );
}

#[tokio::test]
async fn a_revoked_session_ends_its_access_token() {
    let gw = with_admin_api().await;
    let (access, _) = pair(&login(&gw, "alice", ALICE_PASSWORD).await);
    let sid = claims(&access)["sid"].clone();
    assert_eq!(status_with_token(&gw, &access).await, 200);
    let r = admin_post(&gw, "/admin/revoke", &json!({"sid": sid}).to_string()).await;
    assert_eq!(r.status, 204);
    gw.get("/api/x", &[("Authorization", &bearer(&access))])
        .await
        .assert_refusal(401, "invalid_token");
}

#[tokio::test]
async fn a_malformed_revocation_is_a_400() {
    let gw = with_admin_api().await;
    let mut checks = Checks::new();
    for bad in [
        "",
        "[]",
        "{}",
        r#"{"jti": 5}"#,
        r#"{"jti": "a", "sid": "b"}"#,
        "{not json",
    ] {
        checks.eq(bad, admin_post(&gw, "/admin/revoke", bad).await.status, 400);
    }
}

#[tokio::test]
async fn unlock_clears_a_lockout() {
    let gw = with_admin_api().await;
    for _ in 0..2 {
        login(&gw, "alice", "wrong").await;
    }
    login(&gw, "alice", ALICE_PASSWORD)
        .await
        .assert_refusal(429, "account_locked");
    let r = admin_post(&gw, "/admin/unlock", r#"{"username": "alice"}"#).await;
    assert_eq!(r.status, 204);
    pair(&login(&gw, "alice", ALICE_PASSWORD).await);
}

#[tokio::test]
async fn admin_actions_are_audited_without_the_admin_token() {
    let gw = with_admin_api().await;
    admin_post(&gw, "/admin/revoke", r#"{"jti": "x"}"#).await;
    admin_post(&gw, "/admin/unlock", r#"{"username": "alice"}"#).await;
    let audit = gw.settled_stdout().await;
    assert!(audit.contains(r#""event":"revocation""#), "{audit}");
    assert!(audit.contains(r#""event":"unlock""#), "{audit}");
    assert!(
        !audit.contains(ADMIN_TOKEN),
        "the admin token is never logged"
    );
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off_but_health_and_metrics_stay() {
    let gw = start(None).await;
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
    let gw = start(None).await;
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
    let mut checks = Checks::new();
    for (name, labels, by) in [
        (
            "portcullis_requests_total",
            &[("route", "api"), ("status", "200")][..],
            3.0,
        ),
        (
            "portcullis_requests_total",
            &[("route", "api"), ("status", "401")],
            2.0,
        ),
        (
            "portcullis_requests_total",
            &[("route", "unmatched"), ("status", "404")],
            1.0,
        ),
        (
            "portcullis_auth_failures_total",
            &[("reason", "missing_credentials")],
            1.0,
        ),
        (
            "portcullis_auth_failures_total",
            &[("reason", "invalid_token")],
            1.0,
        ),
        (
            "portcullis_auth_failures_total",
            &[("reason", "insufficient_scope")],
            1.0,
        ),
        ("portcullis_rate_limited_total", &[("policy", "tiny")], 1.0),
    ] {
        checks.eq((name, labels), moved(name, labels), by);
    }
    for (name, labels, at_least) in [
        ("portcullis_request_duration_seconds", ("route", "api"), 6.0),
        (
            "portcullis_upstream_duration_seconds",
            ("upstream", "echo"),
            4.0,
        ),
    ] {
        let n = histogram_count(&after, name, &[labels]);
        checks.that((name, labels, n), n >= at_least);
    }
    // Labels are bounded: no path, no user id anywhere.
    let text = String::from_utf8(gw.admin_request("GET", "/metrics", &[], "").await.body).unwrap();
    for leak in ["/api/x", "carol", "/nowhere", "dan"] {
        assert!(!text.contains(leak), "{leak} in the metrics");
    }
}
