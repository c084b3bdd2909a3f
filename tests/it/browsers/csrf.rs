//! The session cookie rides along on cross-site requests: with an unsafe method it counts
//! only from the gateway's own origin or an allowed one (403 `invalid_origin`). Bearer tokens
//! and API keys are not affected.

use super::*;

/// What a test request sends as `Host`: the gateway's own origin is this.
const OWN: &str = "http://gateway.test";

#[tokio::test]
async fn an_unsafe_request_by_cookie_needs_a_known_origin() {
    let gw = start().await;
    let cookie = format!("pc_session={}", alice());
    let token = bearer(&alice());
    let mut checks = Checks::new();
    for (case, method, headers, status) in [
        ("no Origin, no Referer", "POST", vec![], 403),
        (
            "another origin",
            "POST",
            vec![("Origin", "https://evil.test")],
            403,
        ),
        ("Origin null", "DELETE", vec![("Origin", "null")], 403),
        (
            "a look-alike",
            "PUT",
            vec![("Origin", "https://app.test.evil.test")],
            403,
        ),
        (
            "another origin's Referer",
            "POST",
            vec![("Referer", "https://evil.test/form")],
            403,
        ),
        ("its own origin", "POST", vec![("Origin", OWN)], 200),
        ("an allowed origin", "PATCH", vec![("Origin", APP)], 200),
        (
            "its own Referer",
            "POST",
            vec![("Referer", "http://gateway.test/page?x=1")],
            200,
        ),
        (
            "a safe method",
            "GET",
            vec![("Origin", "https://evil.test")],
            200,
        ),
    ] {
        let mut h = headers.clone();
        h.push(("Cookie", &cookie));
        let r = gw.request(method, "/api/orders", &h, "").await;
        checks.eq(case, r.status, status);
        if status == 403 {
            checks.eq(
                (case, "error"),
                r.json()["error"].clone(),
                serde_json::json!("invalid_origin"),
            );
        }
    }
    // A Bearer token is no ambient credential: no origin rule.
    let r = gw
        .request(
            "POST",
            "/api/orders",
            &[("Origin", "https://evil.test"), ("Authorization", &token)],
            "",
        )
        .await;
    checks.eq("Bearer from another origin", r.status, 200);
    // Logging out by cookie is an unsafe request too.
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("Origin", "https://evil.test"), ("Cookie", &cookie)],
            "",
        )
        .await;
    checks.eq("logout from another origin", r.status, 403);
    let r = gw
        .request(
            "POST",
            "/auth/logout",
            &[("Origin", OWN), ("Cookie", &cookie)],
            "",
        )
        .await;
    checks.eq("logout from its own origin", r.status, 204);
}

#[tokio::test]
async fn api_keys_are_not_affected() {
    let key = "pcs_browser-test-key";
    let digest = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(key.as_bytes()))
    };
    let toml = config().table(&format!(
        "[[api_keys]]\nid = \"k\"\nkey_sha256 = \"{digest}\"\nsubject = \"svc\"\nroles = [\"user\"]"
    ));
    let gw = Gateway::start_with_files(
        &toml.build(),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await;
    let r = gw
        .request(
            "DELETE",
            "/api/orders",
            &[("Origin", "https://evil.test"), ("X-API-Key", key)],
            "",
        )
        .await;
    assert_eq!(r.echo().headers["x-auth-method"], ["api_key"]);
}
