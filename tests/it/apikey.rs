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

fn config(blocks: &[String]) -> String {
    format!(
        r#"
[server]
listen = ["{{LISTEN}}"]
threads = 1

[tokens]
issuer = "portcullis"
audience = "api"
secret = "{HS_SECRET}"

[roles]
service = {{ permissions = ["invoices:read"] }}
viewer = {{}}

[[upstreams]]
name = "echo"
targets = ["{{UPSTREAM}}"]

[[routes]]
path = "/keys-only/**"
upstream = "echo"
accept = ["api_key"]

[[routes]]
path = "/jwt-only/**"
upstream = "echo"
accept = ["jwt"]

[[routes]]
path = "/**"
upstream = "echo"
roles_any = ["service", "viewer"]

{}
"#,
        blocks.join("\n")
    )
}

#[tokio::test]
async fn api_keys_in_every_form_and_every_refusal() {
    let (good, block) = new_key(
        "billing",
        &["--subject", "svc-billing", "--roles", "service"],
    );
    let (expired, mut expired_block) = new_key("old", &["--roles", "service"]);
    expired_block.push_str("expires_at = \"2020-01-01T00:00:00Z\"\n");
    let (fenced, mut fenced_block) = new_key("fenced", &["--roles", "service"]);
    fenced_block.push_str("allowed_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n");
    let gw = Gateway::start(
        &config(&[block, expired_block, fenced_block]),
        start_echo().await,
    )
    .await;

    for (name, value) in [
        ("X-API-Key", good.clone()),
        ("Authorization", format!("ApiKey {good}")),
        ("Authorization", format!("apikey {good}")),
    ] {
        let echo = gw
            .get("/keys-only/x", &[(name, &value), ("X-User-Id", "spoof")])
            .await
            .echo();
        assert_eq!(echo.headers["x-user-id"], ["svc-billing"], "{name}");
        assert_eq!(echo.headers["x-auth-method"], ["api_key"]);
        assert_eq!(echo.headers["x-user-permissions"], ["invoices:read"]);
        assert!(
            !echo.headers.contains_key("x-api-key") && !echo.headers.contains_key("authorization"),
            "the key is not forwarded"
        );
    }
    for (key, description) in [
        ("pcs_not-a-configured-key", "unknown API key"),
        (expired.as_str(), "API key expired"),
        (fenced.as_str(), "API key not allowed from this address"),
    ] {
        let r = gw.get("/keys-only/x", &[("X-API-Key", key)]).await;
        assert_eq!(
            r.assert_refusal(401, "invalid_token")["error_description"],
            description
        );
    }
    // A spoofed X-Forwarded-For from an untrusted client does not open allowed_ips.
    let r = gw
        .get(
            "/keys-only/x",
            &[("X-API-Key", &fenced), ("X-Forwarded-For", "10.0.0.1")],
        )
        .await;
    r.assert_refusal(401, "invalid_token");
    // Two credentials at once, even two copies of one key: 400.
    let jwt = hs_token(&access_claims("alice", &["viewer"]));
    gw.get(
        "/x",
        &[("X-API-Key", &good), ("Authorization", &bearer(&jwt))],
    )
    .await
    .assert_refusal(400, "invalid_request");
    gw.get("/x", &[("X-API-Key", &good), ("X-API-Key", &good)])
        .await
        .assert_refusal(400, "invalid_request");
    // A kind the route does not accept counts as no credential.
    gw.get("/jwt-only/x", &[("X-API-Key", &good)])
        .await
        .assert_refusal(401, "missing_credentials");
    gw.get("/keys-only/x", &[("Authorization", &bearer(&jwt))])
        .await
        .assert_refusal(401, "missing_credentials");
    // Without `accept`, both kinds work.
    assert_eq!(gw.get("/x", &[("X-API-Key", &good)]).await.status, 200);
    assert_eq!(
        gw.get("/x", &[("Authorization", &bearer(&jwt))])
            .await
            .status,
        200
    );
    // The key never reaches a log line.
    let logs = gw.settled_stdout().await + &gw.stderr();
    assert!(logs.contains(r#""auth_method":"api_key""#));
    for k in [&good, &expired, &fenced] {
        assert!(!logs.contains(k.as_str()), "an API key reached the logs");
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
