//! `jwks_url`: keys fetched from a local JWKS server at start, picked up again on an unknown
//! kid, kept when the server goes down; readiness waits for the first fetch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// A JWKS endpoint whose answer the test sets (status and body); counts its requests.
struct JwksServer {
    addr: SocketAddr,
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(status: u16, body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new((status, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (a, h) = (a.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = s.read(&mut buf).await;
                    h.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = a.lock().unwrap().clone();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body.as_bytes()).await;
                });
            }
        });
        JwksServer { addr, answer, hits }
    }

    fn set(&self, status: u16, body: String) {
        *self.answer.lock().unwrap() = (status, body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn private(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&key(name)).unwrap()
}

fn jwks(keys: &[(&str, &str)]) -> String {
    let keys: Vec<Jwk> = keys
        .iter()
        .map(|(file, kid)| {
            let mut jwk = Jwk::from_encoding_key(&private(file), Algorithm::RS256).unwrap();
            jwk.common.key_id = Some(kid.to_string());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

fn token(file: &str, kid: &str) -> String {
    let mut claims = access_claims("idp-user", &["viewer"]);
    claims.insert("iss".into(), json!("remote-idp"));
    claims.remove("typ");
    bearer(&sign(Algorithm::RS256, &private(file), Some(kid), &claims))
}

fn config(server: &JwksServer) -> String {
    toml()
        .admin(None)
        .tokens_only(&format!(
            "issuer = \"portcullis\"\nsecret = \"{HS_SECRET}\""
        ))
        .table(&format!(
            r#"[[tokens.trusted_issuers]]
issuer = "remote-idp"
audience = "api"
jwks_url = "http://{}/jwks"
jwks_refresh = "1m"
algorithms = ["RS256"]"#,
            server.addr
        ))
        .table("[roles]\nviewer = {}")
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .build()
}

async fn status(gw: &Gateway, auth: &str) -> u16 {
    gw.get("/api/x", &[("Authorization", auth)]).await.status
}

/// Polls until `cond` holds (the fetcher runs every 100 ms), at most 5 s.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

async fn ready(gw: &Gateway) -> bool {
    gw.admin_request("GET", "/readyz", &[], "").await.status == 200
}

#[tokio::test]
async fn keys_rotate_unknown_kids_are_fetched_and_an_outage_keeps_the_old_keys() {
    let server = JwksServer::start(200, jwks(&[("rsa_private.pem", "a")])).await;
    let gw = Gateway::start_frozen(&config(&server), start_echo().await, &[]).await;
    eventually("ready", || ready(&gw)).await;
    let token_a = token("rsa_private.pem", "a");
    assert_eq!(status(&gw, &token_a).await, 200);

    // The issuer rotates to key b. A token with kid b is unknown until the next fetch, which
    // an unknown kid may ask for at most every 10 s.
    server.set(200, jwks(&[("rsa2_private.pem", "b")]));
    let token_b = token("rsa2_private.pem", "b");
    let r = gw.get("/api/x", &[("Authorization", &token_b)]).await;
    assert_eq!(
        r.assert_refusal(401, "invalid_token")["error_description"],
        "unknown key id"
    );
    let hits = server.hits();
    gw.advance_clock(11);
    eventually("kid b picked up", || async {
        status(&gw, &token_b).await == 200
    })
    .await;
    assert_eq!(server.hits(), hits + 1, "one fetch");
    assert_eq!(status(&gw, &token_a).await, 401, "key a left the set");

    // The server goes down: the refresh fails, the last good keys stay.
    server.set(503, "{}".into());
    let hits = server.hits();
    gw.advance_clock(61);
    eventually("a refresh attempt", || async { server.hits() > hits }).await;
    assert_eq!(status(&gw, &token_b).await, 200);
    assert!(ready(&gw).await, "still ready on the last good keys");
    let logs = gw
        .wait_for_log("JWKS fetch failed: the last good keys stay", 1)
        .await;
    assert!(logs.contains("status 503"), "{logs}");
    // A forged token with a known kid is still refused.
    let forged = token("rsa_private.pem", "b");
    assert_eq!(status(&gw, &forged).await, 401);
}

#[tokio::test]
async fn readiness_waits_for_the_first_fetch() {
    let server = JwksServer::start(503, "{}".into()).await;
    let gw = Gateway::start_frozen(&config(&server), start_echo().await, &[]).await;
    eventually("a first attempt", || async { server.hits() > 0 }).await;
    let r = gw.admin_request("GET", "/readyz", &[], "").await;
    assert_eq!(r.status, 503);
    let reasons = r.json()["reasons"].to_string();
    assert!(
        reasons.contains("jwks") && reasons.contains("remote-idp"),
        "{reasons}"
    );
    let token_a = token("rsa_private.pem", "a");
    assert_eq!(status(&gw, &token_a).await, 401);
    // Up again: the retry (with backoff on the gateway's clock) fetches it.
    server.set(200, jwks(&[("rsa_private.pem", "a")]));
    gw.advance_clock(5);
    eventually("ready", || ready(&gw)).await;
    assert_eq!(status(&gw, &token_a).await, 200);
}

#[test]
fn check_validates_jwks_urls_without_fetching() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "p"
secret = "it-secret-0123456789-0123456789-0123456789"

[[tokens.trusted_issuers]]
issuer = "a"
jwks_url = "ftp://idp.example.com/keys"

[[tokens.trusted_issuers]]
issuer = "b"
jwks_url = "http://idp.example.com/keys"
jwks_refresh = "soon"
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in [
        "gateway.toml:10:12: tokens.trusted_issuers[0].jwks_url: must be an https:// (or http://) URL",
        "gateway.toml:15:16: tokens.trusted_issuers[1].jwks_refresh:",
    ] {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "p"
secret = "it-secret-0123456789-0123456789-0123456789"

[[tokens.trusted_issuers]]
issuer = "b"
jwks_url = "http://idp.example.com/keys"
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http"));
}

/// A gateway that signs with RS256 and forwards an internal identity token.
struct Internal {
    gw: Gateway,
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl Internal {
    async fn start() -> Internal {
        let toml = toml()
            .tokens_only(
                r#"issuer = "portcullis"
algorithm = "RS256"
private_key_file = "{KEYS}/rsa_private.pem"
key_id = "gw-1""#,
            )
            .table(
                r#"[roles]
viewer = { permissions = ["orders:read"] }
auditor = { permissions = ["audit:read"] }"#,
            )
            .table(
                r#"[identity]
internal_token = { header = "X-Identity-Token", ttl = "60s" }"#,
            )
            .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
            .build();
        let gw = Gateway::start(&toml, start_echo().await).await;
        // The upstream verifies it with the gateway's own JWKS.
        let set: JwkSet =
            serde_json::from_slice(&gw.get("/.well-known/jwks.json", &[]).await.body).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(set.find("gw-1").unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["internal"]);
        validation.set_issuer(&["portcullis"]);
        Internal {
            gw,
            key,
            validation,
        }
    }

    /// An access token minted by `portcullis token` on the gateway's config.
    fn mint(&self, sub: &str, roles: &str) -> String {
        let config = self.gw.config_path().to_string_lossy().to_string();
        let out = cli(
            &["token", "--sub", sub, "--roles", roles, "-c", &config],
            None,
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn verify(&self, internal: &str) -> serde_json::Value {
        jsonwebtoken::decode::<serde_json::Value>(internal, &self.key, &self.validation)
            .unwrap()
            .claims
    }
}

#[tokio::test]
async fn the_internal_token_carries_the_identity_and_verifies_with_the_jwks() {
    let it = Internal::start().await;
    let access = it.mint("alice", "viewer");
    let echo = it
        .gw
        .get(
            "/api/x",
            &[
                ("Authorization", &bearer(&access)),
                ("X-Identity-Token", "spoofed"),
            ],
        )
        .await
        .echo();
    let internal = &echo.headers["x-identity-token"];
    assert_eq!(internal.len(), 1, "the client's copy was removed");
    assert_ne!(internal[0], "spoofed");
    let claims = it.verify(&internal[0]);
    let mut checks = Checks::new();
    checks.eq("sub", claims["sub"].clone(), json!("alice"));
    checks.eq("typ", claims["typ"].clone(), json!("identity"));
    checks.eq("roles", claims["roles"].clone(), json!(["viewer"]));
    checks.eq(
        "permissions",
        claims["permissions"].clone(),
        json!(["orders:read"]),
    );
    checks.eq(
        "lifetime",
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60,
    );
}

#[tokio::test]
async fn the_internal_token_is_never_an_access_token() {
    let it = Internal::start().await;
    let access = it.mint("alice", "viewer");
    let echo = it
        .gw
        .get("/api/x", &[("Authorization", &bearer(&access))])
        .await
        .echo();
    let internal = &echo.headers["x-identity-token"][0];
    it.gw
        .get("/api/x", &[("Authorization", &bearer(internal))])
        .await
        .assert_refusal(401, "invalid_token");
}

/// Internal tokens are cached per identity: callers taking turns each get their own.
#[tokio::test]
async fn callers_taking_turns_each_get_their_own_internal_token() {
    let it = Internal::start().await;
    let callers = [
        ("alice", "viewer"),
        ("bob", "viewer"),
        ("alice", "viewer,auditor"),
    ];
    let minted: Vec<String> = callers.iter().map(|(s, r)| it.mint(s, r)).collect();
    let mut checks = Checks::new();
    for round in 0..3 {
        for ((sub, _), access) in callers.iter().zip(&minted) {
            let echo = it
                .gw
                .get("/api/x", &[("Authorization", &bearer(access))])
                .await
                .echo();
            let claims = it.verify(&echo.headers["x-identity-token"][0]);
            checks.eq((round, sub), claims["sub"].clone(), json!(sub));
            checks.eq(
                (round, sub, "roles"),
                claims["roles"].as_array().unwrap().len(),
                echo.headers["x-user-roles"][0].split(',').count(),
            );
        }
    }
}

/// A Keycloak-like certs document: the RS256 signing key, its RSA-OAEP encryption key beside
/// it, and (what no JWKS should hold) a symmetric key and a key type from the future.
fn keycloak_like_jwks(secret: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let sig = Jwk::from_encoding_key(&private("rsa_private.pem"), Algorithm::RS256).unwrap();
    let mut sig = serde_json::to_value(&sig).unwrap();
    sig["kid"] = "sig-key".into();
    sig["use"] = "sig".into();
    let mut enc = serde_json::to_value(
        Jwk::from_encoding_key(&private("rsa2_private.pem"), Algorithm::RS256).unwrap(),
    )
    .unwrap();
    enc["kid"] = "enc-key".into();
    enc["use"] = "enc".into();
    enc["alg"] = "RSA-OAEP".into();
    let oct = json!({"kty": "oct", "kid": "hs-key", "alg": "HS256",
        "k": URL_SAFE_NO_PAD.encode(secret)});
    let future = json!({"kty": "AKP", "kid": "pq-key", "alg": "ML-DSA-44", "pub": "AAAA"});
    json!({"keys": [enc, oct, sig, future]}).to_string()
}

fn token_with(key: &EncodingKey, alg: Algorithm, kid: &str) -> String {
    let mut claims = access_claims("idp-user", &["viewer"]);
    claims.insert("iss".into(), json!("remote-idp"));
    claims.remove("typ");
    bearer(&sign(alg, key, Some(kid), &claims))
}

#[tokio::test]
async fn a_jwks_url_with_keys_that_cannot_verify_becomes_ready_on_the_one_that_can() {
    let secret = "an-hmac-secret-in-a-jwks-0123456789";
    let server = JwksServer::start(200, keycloak_like_jwks(secret)).await;
    // No `algorithms`: every family is allowed, HMAC included, had the key been taken.
    let config = config(&server).replace("algorithms = [\"RS256\"]\n", "");
    let gw = Gateway::start_frozen(&config, start_echo().await, &[]).await;
    eventually("ready", || ready(&gw)).await;
    let good = token_with(&private("rsa_private.pem"), Algorithm::RS256, "sig-key");
    assert_eq!(status(&gw, &good).await, 200);
    // The symmetric key of the document is never used.
    let hs = EncodingKey::from_secret(secret.as_bytes());
    assert_eq!(
        status(&gw, &token_with(&hs, Algorithm::HS256, "hs-key")).await,
        401
    );
    // Nor the encryption key as a signing key.
    let enc = token_with(&private("rsa2_private.pem"), Algorithm::RS256, "enc-key");
    assert_eq!(status(&gw, &enc).await, 401);
    let logs = gw.wait_for_log("JWKS key keys[", 3).await;
    assert!(
        logs.contains("kid `enc-key`") && logs.contains("kid `hs-key`"),
        "{logs}"
    );
}

#[test]
fn a_jwks_file_with_an_encryption_key_loads_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("certs.json"),
        keycloak_like_jwks("x".repeat(32).as_str()),
    )
    .unwrap();
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:1"]

[tokens]
issuer = "portcullis"
secret = "{HS_SECRET}"

[[tokens.trusted_issuers]]
issuer = "keycloak"
jwks_file = "certs.json"

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:1"]

[[routes]]
path = "/**"
upstream = "echo"
"#
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("tokens.trusted_issuers[0].jwks_file: keys[0] (kid `enc-key`) skipped: use `enc` is not `sig`"),
        "{err}"
    );
    assert!(err.contains("(kid `hs-key`) skipped"), "{err}");
    // Only unusable keys: an error, with its place.
    let only_enc = json!({"keys": [serde_json::from_str::<serde_json::Value>(&keycloak_like_jwks("y"))
        .unwrap()["keys"][0]]});
    std::fs::write(dir.path().join("certs.json"), only_enc.to_string()).unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no usable signature key"));
}
