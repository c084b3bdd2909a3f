//! `[tokens] max_ttl` (SPEC section 3 step 8): no token lives longer than the revocations that
//! can cover it, so a revocation, once answered, holds for as long as any token it covers.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Map, Value};

use crate::cli::write_config;
use crate::standard;
use crate::support::*;

const DAY: i64 = 86400;
const ADMIN_TOKEN: &str = "lifetimes-admin-token-0123456789";

/// An HS256 access token issued at `iat` (or without `iat`) living until `exp`.
fn token_living(sub: &str, iat: Option<i64>, exp: i64) -> Map<String, Value> {
    let mut c = access_claims(sub, &["viewer"]);
    match iat {
        Some(iat) => {
            c.insert("iat".into(), iat.into());
            c.insert("nbf".into(), iat.into());
        }
        None => {
            c.remove("iat");
        }
    }
    c.insert("exp".into(), exp.into());
    c
}

async fn call(gw: &Gateway, claims: &Map<String, Value>) -> Response {
    gw.get("/api/x", &[("Authorization", &bearer(&hs_token(claims)))])
        .await
}

#[tokio::test]
async fn tokens_living_longer_than_max_ttl_are_refused() {
    let gw = Gateway::start(&standard().build(), start_echo().await).await;
    let now = now();
    assert_eq!(
        call(&gw, &token_living("a", Some(now), now + 29 * DAY))
            .await
            .status,
        200
    );
    for (iat, exp) in [
        (Some(now), now + 31 * DAY),
        (Some(now - 40 * DAY), now + DAY),
        (None, now + 31 * DAY),
    ] {
        let body = call(&gw, &token_living("a", iat, exp))
            .await
            .assert_refusal(401, "invalid_token");
        assert_eq!(body["error_description"], "token lifetime exceeds max_ttl");
    }
    // A trusted issuer's token too.
    let key = EncodingKey::from_rsa_pem(&key("rsa_private.pem")).unwrap();
    let c = json!({"iss": "rsa-idp", "sub": "r1", "iat": now, "exp": now + 90 * DAY});
    let t = sign(Algorithm::RS256, &key, None, c.as_object().unwrap());
    gw.get("/api/x", &[("Authorization", &bearer(&t))])
        .await
        .assert_refusal(401, "invalid_token");
}

#[tokio::test]
async fn max_ttl_is_configurable() {
    let config = standard()
        .tokens("max_ttl = \"2h\"\nrefresh_ttl = \"1h\"")
        .build();
    let gw = Gateway::start(&config, start_echo().await).await;
    let now = now();
    assert_eq!(
        call(&gw, &token_living("a", Some(now), now + 3600))
            .await
            .status,
        200
    );
    call(&gw, &token_living("a", Some(now), now + 3 * 3600))
        .await
        .assert_refusal(401, "invalid_token");
}

fn admin_config() -> String {
    standard().admin(Some(ADMIN_TOKEN)).build()
}

async fn revoke(gw: &Gateway, body: Value) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = gw
        .admin_request(
            "POST",
            "/admin/revoke",
            &[("Authorization", &auth)],
            &body.to_string(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// Tokens of 20 days (within the 30-day max_ttl), revoked by jti, by session and by subject:
/// eight days later (past the week revocations used to be kept) they are still refused.
#[tokio::test]
async fn revocations_outlive_every_token_they_cover() {
    let gw = Gateway::start_frozen(&admin_config(), start_echo().await, &[]).await;
    let now = gw.clock_now();
    let by_jti = token_living("jti-holder", Some(now), now + 20 * DAY);
    let mut by_sid = token_living("sid-holder", Some(now), now + 20 * DAY);
    by_sid.insert("sid".into(), "session-20d".into());
    let by_subject = token_living("subject-holder", Some(now), now + 20 * DAY);
    let tokens = [&by_jti, &by_sid, &by_subject];
    for t in tokens {
        assert_eq!(call(&gw, t).await.status, 200);
    }
    revoke(&gw, json!({"jti": by_jti["jti"]})).await;
    revoke(&gw, json!({"sid": "session-20d"})).await;
    revoke(&gw, json!({"subject": "subject-holder"})).await;
    for days in [0, 8, 19] {
        gw.advance_clock(if days == 0 { 0 } else { 8 * DAY });
        for t in tokens {
            let body = call(&gw, t).await.assert_refusal(401, "invalid_token");
            assert_eq!(body["error_description"], "token revoked", "{days}");
        }
    }
}

#[test]
fn token_refuses_a_ttl_over_max_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &standard().build());
    let out = cli(&["token", "-c", &path, "--sub", "a", "--ttl", "90d"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no token printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_ttl"), "{err}");
    let out = cli(&["token", "-c", &path, "--sub", "a", "--ttl", "29d"], None);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn check_refuses_own_lifetimes_over_max_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let config = standard().tokens("refresh_ttl = \"60d\"").build();
    let path = write_config(dir.path(), &config);
    let out = cli(&["check", "-c", &path], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tokens.refresh_ttl: must not be longer than max_ttl"),
        "{err}"
    );
}
