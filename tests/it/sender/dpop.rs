//! DPoP (RFC 9449): tokens bound to a client's key at login, proofs checked on every request
//! (method, URL, token hash, age, single use on every instance), no downgrade to Bearer,
//! nonces when asked for, bound refresh tokens, and the decision listener's URL.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::login::argon2id;
use crate::support::dpop::DpopClient;
use crate::support::*;

const PASSWORD: &str = "alice-dpop-password";
const BASE: &str = "http://gateway.test";

fn config(extra: &str) -> String {
    toml()
        .table(&format!(
            "[login]\nusers_file = \"users.toml\"\nrate_limit = \"1000/s\"\n\n[roles]\nviewer = {{ permissions = [\"orders:read\"] }}\n{extra}"
        ))
        .route("api", "/api/**", r#"roles_any = ["viewer"]"#)
        .route(
            "bound",
            "/bound/**",
            "roles_any = [\"viewer\"]\nsender_constrained = true",
        )
        .build()
}

/// RFC 6238's SHA-1 test secret: bob's second factor.
const BOB_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn users() -> String {
    format!(
        "[[users]]\nusername = \"alice\"\nsubject = \"u-alice\"\npassword_hash = \"{hash}\"\nroles = [\"viewer\"]\n\n[[users]]\nusername = \"bob\"\npassword_hash = \"{hash}\"\nroles = [\"viewer\"]\ntotp_secret = \"{BOB_TOTP}\"\n",
        hash = argon2id(PASSWORD)
    )
}

async fn start(extra: &str) -> Gateway {
    Gateway::start_with_files(
        &config(extra),
        start_echo().await,
        &[("users.toml", &users())],
    )
    .await
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `POST path` with a JSON body and `proof` in the `DPoP` header.
async fn post_proved(gw: &Gateway, path: &str, body: &Value, proof: &str) -> Response {
    let headers = [("Content-Type", "application/json"), ("DPoP", proof)];
    gw.request("POST", path, &headers, &body.to_string()).await
}

/// A login with a proof by `client`: the pair's body.
async fn dpop_login(gw: &Gateway, client: &DpopClient) -> Value {
    let p = client.proof("POST", &format!("{BASE}/auth/login"), None, None);
    let body = json!({"username": "alice", "password": PASSWORD});
    let r = post_proved(gw, "/auth/login", &body, &p.proof).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn call(gw: &Gateway, path: &str, auth: &str, proof: Option<&str>) -> Response {
    let mut headers = vec![("Authorization", auth)];
    if let Some(p) = proof {
        headers.push(("DPoP", p));
    }
    gw.get(path, &headers).await
}

#[tokio::test]
async fn a_dpop_login_binds_the_tokens_and_each_call_proves_the_key() {
    let gw = start("").await;
    let client = DpopClient::start("ES256");
    let pair = dpop_login(&gw, &client).await;
    assert_eq!(pair["token_type"], "DPoP");
    let access = pair["access_token"].as_str().unwrap();
    let jkt = client.proof("GET", BASE, None, None).jkt;
    assert_eq!(claims_of(access)["cnf"]["jkt"], jkt.as_str());
    let refresh = pair["refresh_token"].as_str().unwrap();
    assert_eq!(claims_of(refresh)["cnf"]["jkt"], jkt.as_str());

    // A call with the token and a proof of the key, for this method and URL.
    let url = format!("{BASE}/api/orders");
    let p = client.proof("GET", &url, Some(access), None);
    let auth = format!("DPoP {access}");
    let r = call(&gw, "/api/orders?page=2", &auth, Some(&p.proof)).await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-auth-method"], ["dpop"]);
    assert_eq!(echo.headers["x-user-id"], ["u-alice"]);
    // Neither the proof nor the token goes upstream.
    assert!(!echo.headers.contains_key("dpop") && !echo.headers.contains_key("authorization"));
    // The same proof again: spent.
    let again = call(&gw, "/api/orders", &auth, Some(&p.proof)).await;
    let body = again.assert_refusal(401, "invalid_dpop_proof");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("used before"));
    let challenge = again.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 EdDSA RS256 PS256\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );

    // A stolen token: as Bearer, with no proof, with another key's proof.
    let r = call(&gw, "/api/orders", &bearer(access), None).await;
    let body = r.assert_refusal(401, "invalid_token");
    assert!(body["error_description"].as_str().unwrap().contains("DPoP"));
    let r = call(&gw, "/api/orders", &auth, None).await;
    r.assert_refusal(401, "invalid_dpop_proof");
    let other = client.proof_by_other_key("GET", &url, Some(access));
    let r = call(&gw, "/api/orders", &auth, Some(&other.proof)).await;
    let body = r.assert_refusal(401, "invalid_token");
    assert_eq!(
        body["error_description"],
        "the token is not bound to the proof's key"
    );
    // A proof for another URL, another method, or another token.
    for (method, path, token) in [
        ("GET", "/api/other", access),
        ("POST", "/api/orders", access),
        ("GET", "/api/orders", "another-token"),
    ] {
        let p = client.proof(method, &format!("{BASE}{path}"), Some(token), None);
        let r = call(&gw, "/api/orders", &auth, Some(&p.proof)).await;
        r.assert_refusal(401, "invalid_dpop_proof");
    }
    // Two proofs in one header are one bad proof.
    let (a, b) = (
        client.proof("GET", &url, Some(access), None),
        client.proof("GET", &url, Some(access), None),
    );
    let two = format!("{}, {}", a.proof, b.proof);
    call(&gw, "/api/orders", &auth, Some(&two))
        .await
        .assert_refusal(401, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_bound_refresh_token_needs_its_key_and_is_not_spent_without_it() {
    let gw = start("").await;
    let client = DpopClient::start("RS256");
    let pair = dpop_login(&gw, &client).await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    let body = json!({"refresh_token": refresh}).to_string();
    let json_type = ("Content-Type", "application/json");
    // Without a proof, and with another key's: refused, the token not spent.
    let r = gw
        .request("POST", "/auth/refresh", &[json_type], &body)
        .await;
    r.assert_refusal(401, "invalid_grant");
    let url = format!("{BASE}/auth/refresh");
    let other = client.proof_by_other_key("POST", &url, None);
    let headers = [json_type, ("DPoP", other.proof.as_str())];
    let r = gw.request("POST", "/auth/refresh", &headers, &body).await;
    r.assert_refusal(401, "invalid_grant");
    // A bad proof at a token endpoint is 400 (RFC 9449 section 5), never ignored.
    let wrong = client.proof("POST", &format!("{BASE}/auth/login"), None, None);
    let headers = [json_type, ("DPoP", wrong.proof.as_str())];
    let r = gw.request("POST", "/auth/refresh", &headers, &body).await;
    r.assert_refusal(400, "invalid_dpop_proof");
    // With its key's proof: a new pair, bound to the same key.
    let p = client.proof("POST", &url, None, None);
    let headers = [json_type, ("DPoP", p.proof.as_str())];
    let r = gw.request("POST", "/auth/refresh", &headers, &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let next = r.json();
    assert_eq!(next["token_type"], "DPoP");
    let access = next["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["cnf"]["jkt"], p.jkt.as_str());
    // The RFC 6749 token endpoint binds as well.
    let p = client.proof("POST", &format!("{BASE}/auth/token"), None, None);
    let form = format!("grant_type=password&username=alice&password={PASSWORD}");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("DPoP", p.proof.as_str()),
    ];
    let r = gw.request("POST", "/auth/token", &headers, &form).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["token_type"], "DPoP");
}

#[tokio::test]
async fn nonces_are_asked_for_when_required() {
    let dead = "[[upstreams]]\nname = \"dead\"\ntargets = [\"127.0.0.1:9\"]\n";
    let toml = config(&format!("[dpop]\nrequire_nonce = true\nalgorithms = [\"ES256\"]\n\n{dead}"))
        + "\n[[routes]]\nname = \"dead\"\npath = \"/dead/**\"\nupstream = \"dead\"\nauth = \"none\"\n";
    let gw =
        Gateway::start_with_files(&toml, start_echo().await, &[("users.toml", &users())]).await;
    let client = DpopClient::start("ES256");
    let login_url = format!("{BASE}/auth/login");
    let p = client.proof("POST", &login_url, None, None);
    let body = json!({"username": "alice", "password": PASSWORD});
    let r = post_proved(&gw, "/auth/login", &body, &p.proof).await;
    r.assert_refusal(400, "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("a nonce").to_string();
    let p = client.proof("POST", &login_url, None, Some(&nonce));
    let r = post_proved(&gw, "/auth/login", &body, &p.proof).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("dpop-nonce").is_some());
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("DPoP {access}");
    let url = format!("{BASE}/api/x");
    let p = client.proof("GET", &url, Some(&access), None);
    let r = call(&gw, "/api/x", &auth, Some(&p.proof)).await;
    r.assert_refusal(401, "use_dpop_nonce");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP algs=\"ES256\", error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let p = client.proof("GET", &url, Some(&access), Some(&nonce));
    let r = call(&gw, "/api/x", &auth, Some(&p.proof)).await;
    assert_eq!(r.echo().headers["x-auth-method"], ["dpop"]);
    // Upstream answers carry the nonce too, and the gateway's 502 for an upstream that is down.
    assert!(r.header("dpop-nonce").is_some());
    let r = gw.get("/dead/x", &[]).await;
    assert_eq!(r.status, 502);
    assert!(r.header("dpop-nonce").is_some());
}

#[tokio::test]
async fn sender_constrained_routes_take_bound_tokens_only() {
    let gw = start("").await;
    let client = DpopClient::start("ES256");
    let bound = dpop_login(&gw, &client).await;
    let access = bound["access_token"].as_str().unwrap();
    let plain = hs_token(&access_claims("u-alice", &["viewer"]));
    let r = call(&gw, "/bound/x", &bearer(&plain), None).await;
    let body = r.assert_refusal(401, "invalid_token");
    assert_eq!(
        body["error_description"],
        "sender-constrained token required"
    );
    // The same bearer token on an ordinary route.
    assert_eq!(call(&gw, "/api/x", &bearer(&plain), None).await.status, 200);
    let p = client.proof("GET", &format!("{BASE}/bound/x"), Some(access), None);
    let r = call(&gw, "/bound/x", &format!("DPoP {access}"), Some(&p.proof)).await;
    assert_eq!(r.echo().headers["x-auth-method"], ["dpop"]);
    // An access token naming its own key in the header (as a proof does) is no access token.
    let header = json!({"alg": "HS256", "typ": "JWT", "jwk": {"kty": "oct", "k": "AA"}});
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c =
        URL_SAFE_NO_PAD.encode(Value::Object(access_claims("u-alice", &["viewer"])).to_string());
    let forged = format!("{h}.{c}.{}", plain.split('.').nth(2).unwrap());
    call(&gw, "/api/x", &bearer(&forged), None)
        .await
        .assert_refusal(401, "invalid_token");
}

#[tokio::test]
async fn a_proof_is_spent_on_every_instance_sharing_a_redis() {
    let redis = RedisServer::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"",
        redis.url()
    );
    let a = start(&store).await;
    let b = start(&store).await;
    let client = DpopClient::start("ES256");
    let pair = dpop_login(&a, &client).await;
    let access = pair["access_token"].as_str().unwrap();
    let auth = format!("DPoP {access}");
    let p = client.proof("GET", &format!("{BASE}/api/x"), Some(access), None);
    assert_eq!(call(&a, "/api/x", &auth, Some(&p.proof)).await.status, 200);
    let r = call(&b, "/api/x", &auth, Some(&p.proof)).await;
    r.assert_refusal(401, "invalid_dpop_proof");
    // A fresh proof works on the other instance.
    let p = client.proof("GET", &format!("{BASE}/api/x"), Some(access), None);
    assert_eq!(call(&b, "/api/x", &auth, Some(&p.proof)).await.status, 200);
}

/// The decision listener checks a proof against the URL the client called, as the front
/// proxy's `X-Forwarded-Proto`, `-Host` and the described target tell it.
#[tokio::test]
async fn the_decision_listener_checks_the_url_the_client_called() {
    let (_gw, decision) = crate::decision::start(start_echo().await, "x-forwarded").await;
    let client = DpopClient::start("ES256");
    let jkt = client.proof("GET", BASE, None, None).jkt;
    let mut claims = access_claims("u-front", &["viewer"]);
    claims.insert("cnf".into(), json!({ "jkt": jkt }));
    let token = hs_token(&claims);
    let auth = format!("DPoP {token}");
    let ask = |proof: String| {
        let auth = auth.clone();
        async move {
            let headers = [
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/api/orders?page=1"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "api.example.test"),
                ("Authorization", auth.as_str()),
                ("DPoP", proof.as_str()),
            ];
            crate::decision::call(decision, "GET", "/", &headers).await
        }
    };
    let called = "https://api.example.test/api/orders";
    let r = ask(client.proof("GET", called, Some(&token), None).proof).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-auth-method"), Some("dpop"));
    // A proof for the decision listener's own URL is not one for the request judged.
    let own = format!("http://{decision}/");
    let r = ask(client.proof("GET", &own, Some(&token), None).proof).await;
    r.assert_refusal(401, "invalid_dpop_proof");
}

/// A login that needs the second factor binds at `/auth/mfa`, to the key of that step's proof.
#[tokio::test]
async fn the_second_factor_step_binds_the_pair_to_its_proofs_key() {
    let gw = start("").await;
    let client = DpopClient::start("ES256");
    let body = json!({"username": "bob", "password": PASSWORD});
    let p = client.proof("POST", &format!("{BASE}/auth/login"), None, None);
    let r = post_proved(&gw, "/auth/login", &body, &p.proof).await;
    let mfa_token = r.assert_refusal(401, "mfa_required")["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    let code = crate::accounts::self_service::totp(BOB_TOTP, now());
    let body = json!({"mfa_token": mfa_token, "code": code});
    let p = client.proof("POST", &format!("{BASE}/auth/mfa"), None, None);
    let r = post_proved(&gw, "/auth/mfa", &body, &p.proof).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let pair = r.json();
    assert_eq!(pair["token_type"], "DPoP");
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["cnf"]["jkt"], p.jkt.as_str());
    assert_eq!(claims_of(access)["amr"], json!(["pwd", "otp", "mfa"]));
}

/// A bound session stays bound through a password change: the new pair is bound to the key
/// of the token that asked.
#[tokio::test]
async fn a_password_change_keeps_the_pairs_key() {
    use crate::accounts::{register, start, Backend, PASSWORD as ACCOUNT_PASSWORD};
    let gw = start(Backend::Sqlite).await;
    assert_eq!(register(&gw, "dora", ACCOUNT_PASSWORD).await.status, 201);
    let client = DpopClient::start("ES256");
    let json_type = ("Content-Type", "application/json");
    let body = json!({"username": "dora", "password": ACCOUNT_PASSWORD});
    let p = client.proof("POST", &format!("{BASE}/auth/login"), None, None);
    let r = post_proved(&gw, "/auth/login", &body, &p.proof).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let url = format!("{BASE}/auth/password");
    let p = client.proof("POST", &url, Some(&access), None);
    let auth = format!("DPoP {access}");
    let body =
        json!({"current_password": ACCOUNT_PASSWORD, "new_password": "a new long passphrase 7"})
            .to_string();
    let headers = [
        json_type,
        ("Authorization", auth.as_str()),
        ("DPoP", p.proof.as_str()),
    ];
    let r = gw.request("POST", "/auth/password", &headers, &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let pair = r.json();
    assert_eq!(pair["token_type"], "DPoP");
    let next = pair["access_token"].as_str().unwrap();
    assert_eq!(claims_of(next)["cnf"]["jkt"], p.jkt.as_str());
}

/// A token whose `cnf` names a confirmation this gateway cannot check is refused, not taken
/// as a bearer token; the DPoP scheme's token never goes upstream, forwarded credentials or
/// not, nor does a proof.
#[tokio::test]
async fn unknown_confirmations_are_refused_and_dpop_never_goes_upstream() {
    let toml = config("[identity]\nforward_credentials = true").replace(
        "[[routes]]\nname = \"api\"",
        "[[routes]]\nname = \"open\"\npath = \"/open/**\"\nupstream = \"echo\"\nauth = \"none\"\n\n[[routes]]\nname = \"api\"",
    );
    let gw =
        Gateway::start_with_files(&toml, start_echo().await, &[("users.toml", &users())]).await;
    for cnf in [
        json!({"jwk": {"kty": "EC"}}),
        json!({"jkt": 7}),
        json!("jkt"),
    ] {
        let mut claims = access_claims("u-alice", &["viewer"]);
        claims.insert("cnf".into(), cnf);
        let r = call(&gw, "/api/x", &bearer(&hs_token(&claims)), None).await;
        let body = r.assert_refusal(401, "invalid_token");
        assert_eq!(body["error_description"], "unsupported confirmation (cnf)");
    }
    let r = gw
        .get(
            "/open/x",
            &[("Authorization", "DPoP some-token"), ("DPoP", "some-proof")],
        )
        .await;
    let echo = r.echo();
    assert!(
        !echo.headers.contains_key("authorization"),
        "{:?}",
        echo.headers
    );
    assert!(!echo.headers.contains_key("dpop"));
    let r = gw
        .get("/open/x", &[("Authorization", "DPoP some-token")])
        .await;
    assert!(!r.echo().headers.contains_key("authorization"));
    // A Bearer token is forwarded, as `forward_credentials` says.
    let r = gw.get("/open/x", &[("Authorization", "Bearer t")]).await;
    assert_eq!(r.echo().headers["authorization"], ["Bearer t"]);
}
