//! API keys as credentials: every form, every refusal, and `portcullis new-api-key`.

use crate::support::*;

/// Mints a key with the CLI and returns (key, its TOML block).
fn new_key(id: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["new-api-key", "--id", id];
    args.extend_from_slice(extra);
    let out = cli(&args, None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (key, block) = text.split_once("\n\n").unwrap();
    assert!(!block.contains(key), "the block holds only the digest");
    (key.to_string(), block.to_string())
}

/// A gateway with three keys minted by `portcullis new-api-key`: a good one, an expired one
/// and one fenced to other networks; routes that take keys only, JWTs only, or either.
struct Keys {
    gw: Gateway,
    good: String,
    expired: String,
    fenced: String,
}

async fn keys() -> Keys {
    let (good, block) = new_key(
        "billing",
        &["--subject", "svc-billing", "--roles", "service"],
    );
    let (expired, mut expired_block) = new_key("old", &["--roles", "service"]);
    expired_block.push_str("expires_at = \"2020-01-01T00:00:00Z\"\n");
    let (fenced, mut fenced_block) = new_key("fenced", &["--roles", "service"]);
    fenced_block.push_str("allowed_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n");
    let config = toml()
        .table(
            r#"[roles]
service = { permissions = ["invoices:read"] }
viewer = {}"#,
        )
        .table(&block)
        .table(&expired_block)
        .table(&fenced_block)
        .route("keys-only", "/keys-only/**", r#"accept = ["api_key"]"#)
        .route("jwt-only", "/jwt-only/**", r#"accept = ["jwt"]"#)
        .route("any", "/**", r#"roles_any = ["service", "viewer"]"#);
    let gw = Gateway::start(&config.build(), start_echo().await).await;
    Keys {
        gw,
        good,
        expired,
        fenced,
    }
}

fn jwt() -> String {
    bearer(&hs_token(&access_claims("alice", &["viewer"])))
}

#[tokio::test]
async fn a_key_in_every_form_is_accepted_and_not_forwarded() {
    let Keys { gw, good, .. } = keys().await;
    for (name, value) in [
        ("X-API-Key", good.clone()),
        ("Authorization", format!("ApiKey {good}")),
        ("Authorization", format!("apikey {good}")),
    ] {
        let echo = gw
            .get("/keys-only/x", &[(name, &value), ("X-User-Id", "spoof")])
            .await
            .echo();
        let mut checks = Checks::new();
        checks.eq(
            (name, "x-user-id"),
            &echo.headers["x-user-id"],
            &vec!["svc-billing".to_string()],
        );
        checks.eq(
            (name, "x-auth-method"),
            &echo.headers["x-auth-method"],
            &vec!["api_key".to_string()],
        );
        checks.eq(
            (name, "x-user-permissions"),
            &echo.headers["x-user-permissions"],
            &vec!["invoices:read".to_string()],
        );
        checks.that(
            (name, "the key is not forwarded"),
            !echo.headers.contains_key("x-api-key") && !echo.headers.contains_key("authorization"),
        );
    }
}

#[tokio::test]
async fn unknown_expired_and_fenced_keys_are_refused_with_their_reason() {
    let k = keys().await;
    let mut checks = Checks::new();
    for (key, description) in [
        ("pcs_not-a-configured-key", "unknown API key"),
        (k.expired.as_str(), "API key expired"),
        (k.fenced.as_str(), "API key not allowed from this address"),
    ] {
        let r = k.gw.get("/keys-only/x", &[("X-API-Key", key)]).await;
        checks.eq(description, r.status, 401);
        checks.eq(
            description,
            r.json()["error_description"].clone(),
            serde_json::json!(description),
        );
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_open_allowed_ips() {
    let k = keys().await;
    k.gw.get(
        "/keys-only/x",
        &[("X-API-Key", &k.fenced), ("X-Forwarded-For", "10.0.0.1")],
    )
    .await
    .assert_refusal(401, "invalid_token");
}

#[tokio::test]
async fn two_credentials_at_once_are_a_400() {
    let Keys { gw, good, .. } = keys().await;
    let jwt = jwt();
    for headers in [
        [
            ("X-API-Key", good.as_str()),
            ("Authorization", jwt.as_str()),
        ],
        [("X-API-Key", good.as_str()), ("X-API-Key", good.as_str())],
    ] {
        gw.get("/x", &headers)
            .await
            .assert_refusal(400, "invalid_request");
    }
}

#[tokio::test]
async fn a_kind_the_route_does_not_accept_counts_as_no_credential() {
    let Keys { gw, good, .. } = keys().await;
    gw.get("/jwt-only/x", &[("X-API-Key", &good)])
        .await
        .assert_refusal(401, "missing_credentials");
    gw.get("/keys-only/x", &[("Authorization", &jwt())])
        .await
        .assert_refusal(401, "missing_credentials");
}

#[tokio::test]
async fn without_accept_both_kinds_work() {
    let Keys { gw, good, .. } = keys().await;
    assert_eq!(gw.get("/x", &[("X-API-Key", &good)]).await.status, 200);
    assert_eq!(gw.get("/x", &[("Authorization", &jwt())]).await.status, 200);
}

#[tokio::test]
async fn no_key_reaches_a_log_line() {
    let k = keys().await;
    for key in [&k.good, &k.expired, &k.fenced] {
        k.gw.get("/keys-only/x", &[("X-API-Key", key)]).await;
    }
    let logs = k.gw.settled_stdout().await + &k.gw.stderr();
    assert!(logs.contains(r#""auth_method":"api_key""#));
    for key in [&k.good, &k.expired, &k.fenced] {
        assert!(!logs.contains(key.as_str()), "an API key reached the logs");
    }
}

#[test]
fn bad_api_key_config_is_refused_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[[api_keys]]
id = "a"
key_sha256 = "abc123"
allowed_ips = ["10.0.0.0/33"]
roles = ["ghost"]
expires_at = "tomorrow"
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in [
        "gateway.toml:6:14: api_keys[0].key_sha256: must be a SHA-256 digest: 64 hex characters",
        "gateway.toml:7:16: api_keys[0].allowed_ips[0]: `10.0.0.0/33` is not a CIDR or IP address",
        "gateway.toml:8:10: api_keys[0].roles[0]: unknown role `ghost`",
        "gateway.toml:9:14: api_keys[0].expires_at: `tomorrow` is not an RFC 3339 date-time",
    ] {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
}
