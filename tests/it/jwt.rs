//! The JWT matrix of SPEC step 8: every algorithm family, every claim rule, every attack.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::standard;
use crate::support::*;

async fn gateway() -> Gateway {
    Gateway::start(&standard().build(), start_echo().await).await
}

fn idp_claims(iss: &str, sub: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut c = access_claims(sub, &[]);
    c.insert("iss".into(), iss.into());
    c.remove("typ");
    c
}

async fn status_with(gw: &Gateway, token: &str) -> u16 {
    gw.get("/api/orders", &[("Authorization", &bearer(token))])
        .await
        .status
}

#[tokio::test]
async fn every_algorithm_family_verifies() {
    let gw = gateway().await;
    let with_role = |iss: &str| {
        let mut c = idp_claims(iss, "x");
        c.insert("roles".into(), json!(["viewer"]));
        c
    };
    let mut rsa = idp_claims("rsa-idp", "r1");
    rsa.insert("realm_access".into(), json!({"roles": ["viewer"]}));
    let rsa_key = EncodingKey::from_rsa_pem(&key("rsa_private.pem")).unwrap();
    let rsa2 = EncodingKey::from_rsa_pem(&key("rsa2_private.pem")).unwrap();
    let mut ec = with_role("ec-idp");
    ec.insert("aud".into(), "api".into());
    let cases = [
        (
            "own HS256",
            hs_token(&access_claims("alice", &["viewer"])),
            200,
        ),
        ("RS256", sign(Algorithm::RS256, &rsa_key, None, &rsa), 200),
        ("PS256", sign(Algorithm::PS256, &rsa_key, None, &rsa), 200),
        // An RSA algorithm, but not among the issuer's pinned ones.
        (
            "RS384 not pinned",
            sign(Algorithm::RS384, &rsa_key, None, &rsa),
            401,
        ),
        (
            "ES256",
            sign(
                Algorithm::ES256,
                &EncodingKey::from_ec_pem(&key("ec256_private.pem")).unwrap(),
                None,
                &ec,
            ),
            200,
        ),
        (
            "ES384",
            sign(
                Algorithm::ES384,
                &EncodingKey::from_ec_pem(&key("ec384_private.pem")).unwrap(),
                None,
                &with_role("ec384-idp"),
            ),
            200,
        ),
        (
            "EdDSA",
            sign(
                Algorithm::EdDSA,
                &EncodingKey::from_ed_pem(&key("ed25519_private.pem")).unwrap(),
                None,
                &with_role("ed-idp"),
            ),
            200,
        ),
        // A JWKS issuer: the key is chosen by kid; an unknown kid finds no key.
        (
            "JWKS by kid",
            sign(
                Algorithm::RS256,
                &rsa2,
                Some("idp-key-1"),
                &with_role("jwks-idp"),
            ),
            200,
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                &rsa2,
                Some("other-kid"),
                &with_role("jwks-idp"),
            ),
            401,
        ),
        // A valid signature by another issuer's key is still refused.
        (
            "wrong key for the issuer",
            sign(
                Algorithm::RS256,
                &rsa_key,
                Some("idp-key-1"),
                &with_role("jwks-idp"),
            ),
            401,
        ),
    ];
    let mut checks = Checks::new();
    for (name, token, status) in cases {
        checks.eq(name, status_with(&gw, &token).await, status);
    }
    let echo = gw
        .get(
            "/api/orders",
            &[(
                "Authorization",
                &bearer(&hs_token(&access_claims("alice", &["viewer"]))),
            )],
        )
        .await
        .echo();
    checks.eq(
        "the subject forwarded",
        &echo.headers["x-user-id"],
        &vec!["alice".to_string()],
    );
}

#[tokio::test]
async fn claim_rules() {
    let gw = gateway().await;
    let now = now();
    let cases: Vec<(&str, serde_json::Value, u16, &str)> = vec![
        (
            "expired",
            json!({"exp": now - 31, "iat": now - 100}),
            401,
            "token expired",
        ),
        (
            "expired within leeway",
            json!({"exp": now - 20, "iat": now - 100}),
            200,
            "",
        ),
        (
            "nbf in the future",
            json!({"nbf": now + 60}),
            401,
            "token not yet valid",
        ),
        ("nbf within leeway", json!({"nbf": now + 20}), 200, ""),
        (
            "iat in the future",
            json!({"iat": now + 60}),
            401,
            "token issued in the future",
        ),
        ("iat within leeway", json!({"iat": now + 20}), 200, ""),
        (
            "wrong iss",
            json!({"iss": "someone-else"}),
            401,
            "unknown issuer",
        ),
        ("wrong aud", json!({"aud": "other"}), 401, "wrong audience"),
        ("aud list", json!({"aud": ["other", "api"]}), 200, ""),
        ("no aud", json!({"aud": null}), 401, "wrong audience"),
        ("no exp", json!({"exp": null}), 401, "missing exp"),
        (
            "typ refresh",
            json!({"typ": "refresh"}),
            401,
            "wrong token type",
        ),
        ("no typ", json!({"typ": null}), 401, "wrong token type"),
        ("no sub", json!({"sub": null}), 401, "missing subject"),
    ];
    let mut checks = Checks::new();
    for (name, patch, status, description) in cases {
        let mut c = access_claims("alice", &["viewer"]);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
        let r = gw
            .get("/api/orders", &[("Authorization", &bearer(&hs_token(&c)))])
            .await;
        checks.eq(name, r.status, status);
        if status == 401 && r.status == 401 {
            checks.eq(name, r.json()["error"].clone(), json!("invalid_token"));
            checks.eq(
                name,
                r.json()["error_description"].clone(),
                json!(description),
            );
            checks.eq(
                name,
                r.header("www-authenticate").map(str::to_string),
                Some(format!(
                    r#"Bearer realm="portcullis", error="invalid_token", error_description="{description}""#
                )),
            );
        }
    }
}

#[tokio::test]
async fn forged_and_broken_tokens_are_refused() {
    let gw = gateway().await;
    let good = hs_token(&access_claims("alice", &["admin"]));
    let admin_claims = json!(access_claims("mallory", &["admin"]));

    // Tampered payload, original signature.
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil = raw_jwt(&json!({"alg": "HS256"}), &admin_claims, b"");
    let evil_payload = evil.split('.').nth(1).unwrap().to_string();
    parts[1] = &evil_payload;
    let tampered = parts.join(".");

    // Algorithm confusion: HS256 keyed with the RSA issuer's public key.
    let mut c = idp_claims("rsa-idp", "mallory");
    c.insert("realm_access".into(), json!({"roles": ["admin"]}));
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&key("rsa_public.pem")),
        None,
        &c,
    );
    let none = |sig: &[u8]| raw_jwt(&json!({"alg": "none", "typ": "JWT"}), &admin_claims, sig);

    let cases = [
        ("tampered payload", tampered, Some("invalid signature")),
        (
            "alg none, unsigned",
            none(b""),
            Some("unsupported algorithm"),
        ),
        (
            "alg none, signed",
            none(b"x"),
            Some("unsupported algorithm"),
        ),
        ("HS256 with the RSA public key", confused, None),
        ("garbage", "garbage".to_string(), None),
        ("three empty-ish parts", "a.b.c".to_string(), None),
        ("10 KB", "x".repeat(10 * 1024), None),
        ("a fourth part", format!("{good}.extra"), None),
        ("empty", String::new(), Some("empty token")),
    ];
    let mut checks = Checks::new();
    for (name, token, description) in cases {
        let r = gw
            .get(
                "/api/orders",
                &[("Authorization", &format!("Bearer {token}"))],
            )
            .await;
        checks.eq(
            name,
            (r.status, r.json()["error"].clone()),
            (401, json!("invalid_token")),
        );
        if let Some(d) = description {
            checks.eq(name, r.json()["error_description"].clone(), json!(d));
        }
    }
}

#[tokio::test]
async fn jku_is_never_fetched() {
    let gw = gateway().await;
    // A server that would hand out the attacker's key: it must never be contacted.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!("http://{}/jwks.json", trap.local_addr().unwrap());
    let attacker = EncodingKey::from_rsa_pem(&key("rsa2_private.pem")).unwrap();
    for field in ["jku", "x5u"] {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        if field == "jku" {
            header.jku = Some(trap_url.clone());
        } else {
            header.x5u = Some(trap_url.clone());
        }
        header.kid = Some("attacker".into());
        let mut c = idp_claims("rsa-idp", "mallory");
        c.insert("realm_access".into(), json!({"roles": ["admin"]}));
        let t = jsonwebtoken::encode(&header, &c, &attacker).unwrap();
        let r = gw
            .get("/api/orders", &[("Authorization", &bearer(&t))])
            .await;
        r.assert_refusal(401, "invalid_token");
    }
    // An embedded `jwk` header carrying the attacker's own public key is not used either.
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker, Algorithm::RS256).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.jwk = Some(jwk);
    let t = jsonwebtoken::encode(&header, &idp_claims("rsa-idp", "mallory"), &attacker).unwrap();
    gw.get("/api/orders", &[("Authorization", &bearer(&t))])
        .await
        .assert_refusal(401, "invalid_token");

    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the gateway connected to the jku/x5u URL"
    );
}

/// A verified token is cached by its digest (issue 7): a second use must still expire on time,
/// and a token differing in any byte is verified afresh.
#[tokio::test]
async fn cached_tokens_still_expire_and_near_misses_are_verified_afresh() {
    let gw = Gateway::start_frozen(&standard().build(), start_echo().await, &[]).await;
    let now = gw.clock_now();
    let mut own = access_claims("alice", &["viewer"]);
    own.insert("exp".into(), json!(now + 60));
    let own = hs_token(&own);
    let mut rsa = idp_claims("rsa-idp", "r1");
    rsa.insert("realm_access".into(), json!({"roles": ["viewer"]}));
    rsa.insert("exp".into(), json!(now + 60));
    let rsa = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(&key("rsa_private.pem")).unwrap(),
        None,
        &rsa,
    );
    for t in [&own, &rsa] {
        for _ in 0..3 {
            assert_eq!(status_with(&gw, t).await, 200);
        }
        // One changed signature byte: refused, though the rest is a cached token.
        let mut forged = t.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(status_with(&gw, &forged).await, 401);
        assert_eq!(status_with(&gw, t).await, 200);
    }
    // Past exp + 30 s leeway: both refused though both were cached.
    gw.advance_clock(91);
    for t in [&own, &rsa] {
        let r = gw
            .get("/api/orders", &[("Authorization", &bearer(t))])
            .await;
        assert_eq!(
            r.assert_refusal(401, "invalid_token")["error_description"],
            "token expired"
        );
    }
}
