//! Client certificates (RFC 8705): verified in the handshake against the configured CAs and
//! CRLs (read again at a reload), a certificate as the credential where a route accepts
//! `mtls`, and tokens bound to a certificate, accepted over it only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::login::argon2id;
use crate::support::certs::{send_tls, ClientId, Names, Pki, TlsConn};
use crate::support::*;

const BILLING: &str = "spiffe://example.org/ns/prod/sa/billing";
const PASSWORD: &str = "alice-mtls-password";

fn config(client_auth: &str, extra: &str) -> String {
    let tls = format!(
        r#"tls = {{ cert_file = "{{KEYS}}/tls_cert.pem", key_file = "{{KEYS}}/tls_key.pem", client_ca_file = "clients-ca.pem", client_auth = "{client_auth}", client_crl_files = ["clients.crl"] }}"#
    );
    toml()
        .server(&tls)
        .table(&format!(
            r#"[roles]
viewer = {{ permissions = ["orders:read"] }}
service = {{ permissions = ["billing:write"] }}

[mtls]
roles = {{ "{BILLING}" = ["service"] }}
default_roles = ["viewer"]

[login]
users_file = "users.toml"
rate_limit = "1000/s"
{extra}"#
        ))
        .route(
            "svc",
            "/svc/**",
            "accept = [\"mtls\", \"jwt\"]\nroles_any = [\"service\"]",
        )
        .route("api", "/api/**", "roles_any = [\"viewer\"]")
        .route("public", "/public", "auth = \"none\"")
        .build()
}

fn files(pki: &Pki, revoked: &[u64]) -> Vec<(String, String)> {
    let users = format!(
        "[[users]]\nusername = \"alice\"\nsubject = \"u-alice\"\npassword_hash = \"{}\"\nroles = [\"viewer\"]\n",
        argon2id(PASSWORD)
    );
    vec![
        ("clients-ca.pem".into(), pki.ca_pem.clone()),
        ("clients.crl".into(), pki.crl(revoked)),
        ("users.toml".into(), users),
    ]
}

async fn start(pki: &Pki, client_auth: &str, extra: &str) -> Gateway {
    let files = files(pki, &[]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Gateway::start_with_files(&config(client_auth, extra), start_echo().await, &files).await
}

async fn get(
    gw: &Gateway,
    id: Option<&ClientId>,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let raw = raw_request("localhost", "GET", path, headers, "");
    send_tls(gw.addr, id, &raw).await.expect("an answer")
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn certificates_are_verified_in_the_handshake_and_crls_reload() {
    let pki = Pki::new("clients");
    let stranger = Pki::new("another CA").client(
        1,
        Names {
            cn: Some("eve"),
            ..Names::default()
        },
    );
    let billing = |serial| {
        pki.client(
            serial,
            Names {
                uri: Some(BILLING),
                ..Names::default()
            },
        )
    };
    let (revoked, kept) = (billing(7), billing(9));
    let files = files(&pki, &[]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let gw = Gateway::start_process(&config("required", ""), start_echo().await, &files).await;
    let raw = raw_request("localhost", "GET", "/public", &[], "");
    let refused = send_tls(gw.addr, None, &raw).await;
    assert!(
        refused.is_err(),
        "no certificate: {:?}",
        refused.map(|r| r.status)
    );
    let refused = send_tls(gw.addr, Some(&stranger), &raw).await;
    assert!(
        refused.is_err(),
        "another CA's: {:?}",
        refused.map(|r| r.status)
    );
    for id in [&revoked, &kept] {
        assert_eq!(send_tls(gw.addr, Some(id), &raw).await.unwrap().status, 200);
    }
    // A connection kept open across the reload.
    let mut open = TlsConn::open(gw.addr, Some(&revoked)).await;
    assert_eq!(
        open.get("/svc/x").await.echo().headers["x-auth-method"],
        ["mtls"]
    );
    // A new CRL, read at the reload: the revoked certificate's handshake fails from then on,
    // and on the open connection it is no credential any more.
    let before = gw.stdout().matches("config reloaded").count();
    std::fs::write(gw.dir.path().join("clients.crl"), pki.crl(&[7])).unwrap();
    gw.sighup();
    gw.wait_for_log("config reloaded", before + 1).await;
    assert!(
        send_tls(gw.addr, Some(&revoked), &raw).await.is_err(),
        "revoked"
    );
    open.get("/svc/x")
        .await
        .assert_refusal(401, "missing_credentials");
    assert_eq!(
        send_tls(gw.addr, Some(&kept), &raw).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn a_certificate_is_a_credential_where_the_route_accepts_mtls() {
    let pki = Pki::new("clients");
    let gw = start(&pki, "optional", "").await;
    let billing = pki.client(
        1,
        Names {
            uri: Some(BILLING),
            dns: Some("billing.internal"),
            cn: Some("billing"),
        },
    );
    let r = get(&gw, Some(&billing), "/svc/invoices", &[]).await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-user-id"], [BILLING]);
    assert_eq!(echo.headers["x-auth-method"], ["mtls"]);
    assert_eq!(echo.headers["x-user-roles"], ["service,viewer"]);
    // A route that does not accept certificates takes none (the default leaves them out).
    get(&gw, Some(&billing), "/api/orders", &[])
        .await
        .assert_refusal(401, "missing_credentials");
    // The DNS name when there is no URI: default roles only.
    let batch = pki.client(
        2,
        Names {
            dns: Some("batch.internal"),
            cn: Some("batch"),
            ..Names::default()
        },
    );
    get(&gw, Some(&batch), "/svc/invoices", &[])
        .await
        .assert_refusal(403, "insufficient_scope");
    // A certificate with none of the names is no credential; nor is an absent one.
    let nameless = pki.client(3, Names::default());
    get(&gw, Some(&nameless), "/svc/invoices", &[])
        .await
        .assert_refusal(401, "missing_credentials");
    get(&gw, None, "/svc/invoices", &[])
        .await
        .assert_refusal(401, "missing_credentials");
    // Another credential on the request wins over the certificate.
    let token = hs_token(&access_claims("u-svc", &["service"]));
    let r = get(
        &gw,
        Some(&billing),
        "/svc/invoices",
        &[("Authorization", &bearer(&token))],
    )
    .await;
    let echo = r.echo();
    assert_eq!(echo.headers["x-auth-method"], ["jwt"]);
    assert_eq!(echo.headers["x-user-id"], ["u-svc"]);
}

#[tokio::test]
async fn certificate_bound_tokens_work_over_their_certificate_only() {
    let pki = Pki::new("clients");
    let gw = start(&pki, "optional", "").await;
    let a = pki.client(
        1,
        Names {
            cn: Some("a"),
            ..Names::default()
        },
    );
    let b = pki.client(
        2,
        Names {
            cn: Some("b"),
            ..Names::default()
        },
    );
    // Any issuer's token with `cnf.x5t#S256`.
    let mut claims = access_claims("u-bound", &["viewer"]);
    claims.insert("cnf".into(), json!({"x5t#S256": a.thumbprint()}));
    let token = bearer(&hs_token(&claims));
    let auth = [("Authorization", token.as_str())];
    let r = get(&gw, Some(&a), "/api/orders", &auth).await;
    assert_eq!(r.echo().headers["x-auth-method"], ["jwt"]);
    for other in [Some(&b), None] {
        let body = get(&gw, other, "/api/orders", &auth)
            .await
            .assert_refusal(401, "invalid_token");
        assert_eq!(body["error_description"], "certificate binding");
    }
}

#[tokio::test]
async fn tokens_issued_over_a_certificate_are_bound_to_it() {
    let pki = Pki::new("clients");
    let gw = {
        let files = files(&pki, &[]);
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let toml =
            config("optional", "").replace("[tokens]\n", "[tokens]\nbind_to_certificate = true\n");
        Gateway::start_with_files(&toml, start_echo().await, &files).await
    };
    let a = pki.client(
        1,
        Names {
            cn: Some("a"),
            ..Names::default()
        },
    );
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    let raw = raw_request(
        "localhost",
        "POST",
        "/auth/login",
        &[("Content-Type", "application/json")],
        &body,
    );
    let r = send_tls(gw.addr, Some(&a), &raw).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let pair = r.json();
    assert_eq!(pair["token_type"], "Bearer");
    let (access, refresh) = (
        pair["access_token"].as_str().unwrap(),
        pair["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        claims_of(access)["cnf"]["x5t#S256"],
        a.thumbprint().as_str()
    );
    assert_eq!(
        claims_of(refresh)["cnf"]["x5t#S256"],
        a.thumbprint().as_str()
    );
    let auth = bearer(access);
    assert_eq!(
        get(&gw, Some(&a), "/api/x", &[("Authorization", &auth)])
            .await
            .status,
        200
    );
    get(&gw, None, "/api/x", &[("Authorization", &auth)])
        .await
        .assert_refusal(401, "invalid_token");
    // The refresh token: refused without the certificate, and not spent by that.
    let body = json!({"refresh_token": refresh}).to_string();
    let raw = raw_request(
        "localhost",
        "POST",
        "/auth/refresh",
        &[("Content-Type", "application/json")],
        &body,
    );
    let r = send_tls(gw.addr, None, &raw).await.unwrap();
    r.assert_refusal(401, "invalid_grant");
    let r = send_tls(gw.addr, Some(&a), &raw).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
