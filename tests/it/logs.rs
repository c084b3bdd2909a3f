//! The logs of a whole session (logins, refreshes, API keys, refusals, a reload, the admin API)
//! hold none of the secrets it used, in any line, on stdout or stderr; and they are JSON lines
//! with the access and audit events operators rely on.

use serde_json::{json, Value};

use crate::login::{argon2id, login, pair, refresh};
use crate::support::*;

const PASSWORD: &str = "session-password-Zq8";
const API_KEY: &str = "pcs_session_key_4XhB2dQ";
const ADMIN_TOKEN: &str = "session-admin-token-Jt7w0123";
const VIEWER: &str = r#"[roles]
viewer = { permissions = ["orders:read"] }"#;

#[tokio::test]
async fn a_full_session_leaves_no_secret_in_any_output() {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    let toml = toml()
        .admin(Some(ADMIN_TOKEN))
        .table("[login]\nrate_limit = \"1000/s\"\ncookie = { name = \"sess\" }\nrefresh_reuse_grace = \"0s\"")
        .table(VIEWER)
        .table(&format!(
            "[[api_keys]]\nid = \"session-key\"\nkey_sha256 = \"{digest}\"\nroles = [\"viewer\"]"
        ))
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build();
    let users = format!(
        "[[users]]\nusername = \"erin\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(PASSWORD)
    );
    let gw = Gateway::start_process(&toml, start_echo().await, &[("users.toml", &users)]).await;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let (access, refresh1) = pair(&login(&gw, "erin", PASSWORD).await);
    let (access2, refresh2) = pair(&refresh(&gw, &refresh1).await);
    refresh(&gw, &refresh1)
        .await
        .assert_refusal(401, "invalid_grant");
    login(&gw, "erin", "the-wrong-Pw9")
        .await
        .assert_refusal(401, "invalid_credentials");
    assert_eq!(
        gw.get("/api/x", &[("X-API-Key", API_KEY)]).await.status,
        200
    );
    gw.get("/api/x", &[("X-API-Key", "pcs_not_a_real_key_Qw3")])
        .await
        .assert_refusal(401, "invalid_token");
    gw.get("/api/x", &[("Authorization", &bearer(&access2))])
        .await
        .assert_refusal(401, "invalid_token");
    let minted = hs_token(&access_claims("frank", &["viewer"]));
    assert_eq!(
        gw.get("/api/x", &[("Authorization", &bearer(&minted))])
            .await
            .status,
        200
    );
    assert_eq!(
        gw.get("/api/x", &[("Cookie", &format!("sess={minted}"))])
            .await
            .status,
        200
    );
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            &json!({"subject": "frank"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 204);
    gw.admin_request(
        "POST",
        "/admin/revoke",
        &[("Authorization", "Bearer guessed-admin-token-1")],
        "{}",
    )
    .await;
    gw.sighup();
    gw.wait_for_log("config reloaded", 1).await;
    let mfa_like = gw
        .post_json(
            "/auth/mfa",
            &[],
            &json!({"mfa_token": "mfa-secret-Lq2", "code": "123456"}),
        )
        .await;
    mfa_like.assert_refusal(401, "invalid_grant");

    let stdout = gw.settled_stdout().await;
    let all = format!("{stdout}\n{}", gw.stderr());
    for secret in [
        PASSWORD,
        "the-wrong-Pw9",
        API_KEY,
        "pcs_not_a_real_key_Qw3",
        ADMIN_TOKEN,
        "guessed-admin-token-1",
        HS_SECRET,
        "mfa-secret-Lq2",
        &access,
        &access2,
        &refresh1,
        &refresh2,
        &minted,
    ] {
        assert!(
            !all.contains(secret),
            "a secret reached the output: {secret}"
        );
    }
    // Every stdout line is one JSON object; the access and audit events are there.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let has = |target: &str, key: &str, value: &str| {
        lines
            .iter()
            .any(|l| l["target"] == target && l[key] == value)
    };
    assert!(has("audit", "event", "login"));
    assert!(has("audit", "event", "refresh"));
    assert!(has("audit", "event", "refresh_reuse"));
    assert!(has("audit", "event", "revocation"));
    assert!(has("audit", "reason", "invalid_token"));
    let access_line = lines
        .iter()
        .find(|l| l["target"] == "access" && l["auth_method"] == "api_key")
        .expect("an access event for the API-key request");
    for field in [
        "request_id",
        "method",
        "path",
        "route",
        "status",
        "latency_ms",
        "client_ip",
        "subject",
    ] {
        assert!(
            !access_line[field].is_null(),
            "access event without {field}: {access_line}"
        );
    }
    // Pingora's own log lines come through tracing too.
    assert!(lines.iter().any(|l| l["target"]
        .as_str()
        .is_some_and(|t| t.starts_with("pingora"))));
}

/// Log lines leave through a bounded queue: a stdout nobody reads (a pipe to a stalled
/// journald) slows no request, and what cannot be written is dropped and counted.
#[tokio::test]
async fn a_stalled_log_reader_slows_nothing_and_drops_are_counted() {
    let config = crate::standard().admin(None).build();
    let gw = Gateway::start_with_stalled_stdout(&config, start_echo().await, 64).await;
    // Far more lines than the pipe (64 KiB) and the queue hold.
    for i in 0..600 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), gw.get("/public/x", &[]))
            .await
            .unwrap_or_else(|_| panic!("request {i} waited on the log"));
        assert_eq!(r.status, 200);
    }
    let r = gw.admin_request("GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    let dropped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no drop counter in {text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(dropped > 100.0, "dropped {dropped}");
}

fn audit_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "audit")
        .collect()
}

/// Every audit event a request causes names that request's id, so an operator can join the
/// audit trail with the access log.
#[tokio::test]
async fn every_audit_event_of_a_request_carries_its_request_id() {
    let toml = toml()
        .admin(Some(ADMIN_TOKEN))
        .table("[login]\nrate_limit = \"1000/s\"\nmax_failed_attempts = 2")
        .table(VIEWER)
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build();
    let users = format!(
        "[[users]]\nusername = \"ivy\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(PASSWORD)
    );
    let gw = Gateway::start_with_files(&toml, start_echo().await, &[("users.toml", &users)]).await;
    fn rid(s: &str) -> [(&'static str, &str); 1] {
        [("X-Request-Id", s)]
    }
    let good = json!({"username": "ivy", "password": PASSWORD});
    let r = gw.post_json("/auth/login", &rid("rid-login"), &good).await;
    let (access, refresh1) = pair(&r);
    let r = gw
        .post_json(
            "/auth/refresh",
            &rid("rid-refresh"),
            &json!({"refresh_token": refresh1}),
        )
        .await;
    let (access2, _) = pair(&r);
    gw.post_json(
        "/auth/refresh",
        &rid("rid-reuse"),
        &json!({"refresh_token": refresh1}),
    )
    .await
    .assert_refusal(401, "invalid_grant");
    let (access3, _) = pair(&login(&gw, "ivy", PASSWORD).await);
    let logout = bearer(&access3);
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("X-Request-Id", "rid-logout"), ("Authorization", &logout)],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    let bad = json!({"username": "ivy", "password": "wrong"});
    for id in ["rid-fail-1", "rid-fail-2"] {
        gw.post_json("/auth/login", &rid(id), &bad).await;
    }
    gw.get(
        "/api/x",
        &[
            ("X-Request-Id", "rid-refused"),
            ("Authorization", &bearer(&access)),
        ],
    )
    .await
    .assert_refusal(401, "invalid_token");
    let _ = access2;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &[("Authorization", &admin), ("X-Request-Id", "rid-admin")],
            r#"{"subject": "someone"}"#,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-request-id"), Some("rid-admin"));

    let lines = audit_lines(&gw.settled_stdout().await);
    let find = |pred: &dyn Fn(&Value) -> bool| -> Value {
        lines
            .iter()
            .find(|l| pred(l))
            .cloned()
            .unwrap_or_else(|| panic!("no such audit event in {lines:#?}"))
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "rid-login",
            find(&|l| l["event"] == "login" && l["result"] == "success"),
        ),
        ("rid-refresh", find(&|l| l["event"] == "refresh")),
        ("rid-reuse", find(&|l| l["event"] == "refresh_reuse")),
        ("rid-logout", find(&|l| l["event"] == "logout")),
        (
            "rid-fail-1",
            find(&|l| l["event"] == "login" && l["result"] == "failure"),
        ),
        ("rid-fail-2", find(&|l| l["event"] == "lockout")),
        (
            "rid-refused",
            find(&|l| l["event"] == "refused" && l["request_id"] == "rid-refused"),
        ),
    ];
    for (want, line) in cases {
        assert_eq!(line["request_id"], want, "{line}");
    }
}

/// The access event of a refused request names the caller whose credential verified.
#[tokio::test]
async fn a_refused_request_is_logged_with_its_verified_caller() {
    let gw = Gateway::start(&crate::standard().build(), start_echo().await).await;
    let t = bearer(&hs_token(&access_claims("bob", &["user"])));
    gw.get(
        "/admin/x",
        &[("X-Request-Id", "rid-403"), ("Authorization", &t)],
    )
    .await
    .assert_refusal(403, "insufficient_scope");
    let stdout = gw.settled_stdout().await;
    let line: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "access" && l["request_id"] == "rid-403")
        .unwrap();
    assert_eq!(line["status"], 403);
    assert_eq!(line["subject"], "bob");
    assert_eq!(line["auth_method"], "jwt");
}
