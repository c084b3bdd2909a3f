//! The logs of a whole session (logins, refreshes, API keys, refusals, a reload, the admin API)
//! hold none of the secrets it used, in any line, on stdout or stderr; and they are JSON lines
//! with the access and audit events operators rely on.

use serde_json::{json, Value};

use crate::login::{argon2id, login, pair, refresh};
use crate::support::*;

const PASSWORD: &str = "session-password-Zq8";
const API_KEY: &str = "pcs_session_key_4XhB2dQ";
const ADMIN_TOKEN: &str = "session-admin-token-Jt7w0123";

#[tokio::test]
async fn a_full_session_leaves_no_secret_in_any_output() {
    use sha2::{Digest, Sha256};
    let toml = format!(
        r#"
[server]
listen = ["{{LISTEN}}"]
admin_listen = "{{ADMIN}}"
threads = 1

[admin]
token = "{ADMIN_TOKEN}"

[tokens]
issuer = "portcullis"
audience = "api"
secret = "{HS_SECRET}"

[login]
rate_limit = "1000/s"
cookie = {{ name = "sess" }}

[roles]
viewer = {{ permissions = ["orders:read"] }}

[[api_keys]]
id = "session-key"
key_sha256 = "{digest}"
roles = ["viewer"]

[[upstreams]]
name = "echo"
targets = ["{{UPSTREAM}}"]

[[routes]]
name = "api"
path = "/api/**"
upstream = "echo"
roles_any = ["viewer"]
"#,
        digest = hex::encode(Sha256::digest(API_KEY.as_bytes()))
    );
    let users = format!(
        "[[users]]\nusername = \"erin\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(PASSWORD)
    );
    let gw = Gateway::start_with_files(&toml, start_echo().await, &[("users.toml", &users)]).await;
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
