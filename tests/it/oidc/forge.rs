//! A provider of the tests' own, for what a certified one never sends: ID tokens that are
//! expired, for another audience, with another nonce, unsigned, HMAC-signed or signed by a
//! stranger; a wrong `iss` on the callback; an `error`; any claims at all; logout tokens of
//! any shape. It speaks just enough OpenID Connect (discovery, JWKS, authorization, token),
//! checks PKCE and the client's secret like a real one, over HTTP or TLS (the test CA).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::SECRET;
use crate::support::*;

/// How the ID token is signed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signing {
    /// RS256 by the key its JWKS publishes.
    Good,
    /// `alg: none`, no signature.
    Unsigned,
    /// HS256 with the client secret.
    Hmac,
    /// RS256 by a key that is not the published one, under the published kid.
    Stranger,
}

/// A change of the ID token's claims before it is signed.
pub type ClaimsChange = Box<dyn Fn(&mut Map<String, Value>) + Send>;

/// What the next answers look like; the test changes it between sign-ins.
pub struct Script {
    /// Changes the ID token's claims before signing.
    pub claims: ClaimsChange,
    pub signing: Signing,
    /// The callback's `iss`: `None` leaves it out.
    pub callback_iss: Option<String>,
    /// An `error` instead of a code.
    pub error: Option<(String, String)>,
    pub iss_parameter_supported: bool,
    /// Discovery answers 503.
    pub discovery_down: bool,
    /// Claims left out of the ID token, served by the userinfo endpoint only.
    pub userinfo_only: Vec<&'static str>,
    /// The userinfo endpoint's `sub`, when not the ID token's.
    pub userinfo_sub: Option<String>,
    /// Discovery documents served.
    pub discoveries: usize,
}

#[derive(Default)]
struct Issued {
    /// code -> (nonce, code_challenge)
    codes: HashMap<String, (String, String)>,
    /// access token -> the userinfo claims
    userinfo: HashMap<String, Map<String, Value>>,
}

pub struct Forge {
    pub issuer: String,
    pub script: Arc<Mutex<Script>>,
}

fn good_claims() -> Map<String, Value> {
    json!({
        "sub": "forged-sub-1",
        "email": "dora@example.test",
        "email_verified": true,
        "name": "Dora",
        "preferred_username": "dora",
        "groups": ["staff"],
        "sid": "forge-session-1",
    })
    .as_object()
    .unwrap()
    .clone()
}

impl Forge {
    /// A forging provider on a free port; `tls`: over HTTPS with the test certificate.
    pub async fn start(tls: bool) -> Forge {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls { "https" } else { "http" };
        let issuer = format!("{scheme}://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            claims: Box::new(|_| {}),
            signing: Signing::Good,
            callback_iss: Some(issuer.clone()),
            error: None,
            iss_parameter_supported: true,
            discovery_down: false,
            discoveries: 0,
            userinfo_only: Vec::new(),
            userinfo_sub: None,
        }));
        let issued = Arc::new(Mutex::new(Issued::default()));
        let acceptor = tls.then(tls_acceptor);
        let (s, i, iss) = (script.clone(), issued.clone(), issuer.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, i, iss, acceptor) = (s.clone(), i.clone(), iss.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = serve(tls, &iss, &s, &i).await;
                            }
                        }
                        None => {
                            let _ = serve(stream, &iss, &s, &i).await;
                        }
                    }
                });
            }
        });
        Forge { issuer, script }
    }

    pub fn set(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().unwrap());
    }

    /// A logout token of these claims (over the defaults), signed as `signing`.
    pub fn logout_token(&self, claims: Value, signing: Signing) -> String {
        let now = now();
        let mut c = json!({
            "iss": self.issuer, "aud": "gateway", "iat": now, "exp": now + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        for (k, v) in claims.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        sign_as(c.as_object().unwrap(), signing)
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    let certs: Vec<_> = rustls_pemfile::certs(&mut key("tls_cert.pem").as_slice())
        .map(Result::unwrap)
        .collect();
    let k = rustls_pemfile::private_key(&mut key("tls_key.pem").as_slice())
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, k)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn sign_as(claims: &Map<String, Value>, signing: Signing) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    match signing {
        Signing::Good | Signing::Stranger => {
            let file = if signing == Signing::Good {
                "rsa2_private.pem"
            } else {
                "rsa_private.pem"
            };
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("idp-key-1".into());
            let key = EncodingKey::from_rsa_pem(&crate::support::key(file)).unwrap();
            jsonwebtoken::encode(&header, claims, &key).unwrap()
        }
        Signing::Unsigned => {
            let claims = Value::Object(claims.clone());
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims))
        }
        Signing::Hmac => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("idp-key-1".into());
            let key = EncodingKey::from_secret(SECRET.as_bytes());
            jsonwebtoken::encode(&header, claims, &key).unwrap()
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    form: HashMap<String, String>,
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let parse = |s: &[u8]| form_urlencoded::parse(s).into_owned().collect();
    Some(Request {
        method,
        path: path.to_string(),
        query: parse(query.as_bytes()),
        headers,
        form: parse(&body),
    })
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(
    stream: S,
    issuer: &str,
    script: &Mutex<Script>,
    issued: &Mutex<Issued>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    while let Some(req) = read_request(&mut reader).await {
        let (status, headers, body) = answer(&req, issuer, script, issued);
        let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        write.write_all(head.as_bytes()).await?;
        write.write_all(body.as_bytes()).await?;
        write.flush().await?;
    }
    Ok(())
}

fn answer(
    req: &Request,
    issuer: &str,
    script: &Mutex<Script>,
    issued: &Mutex<Issued>,
) -> (u16, Vec<(String, String)>, String) {
    let json_type = vec![("Content-Type".to_string(), "application/json".to_string())];
    let mut script = script.lock().unwrap();
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/openid-configuration") if script.discovery_down => {
            (503, Vec::new(), String::new())
        }
        ("GET", "/.well-known/openid-configuration") => {
            script.discoveries += 1;
            let doc = json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "end_session_endpoint": format!("{issuer}/logout"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "authorization_response_iss_parameter_supported": script.iss_parameter_supported,
                "id_token_signing_alg_values_supported": ["RS256"],
            });
            (200, json_type, doc.to_string())
        }
        ("GET", "/jwks") => (200, json_type, String::from_utf8(key("jwks.json")).unwrap()),
        ("GET", "/authorize") => {
            let q = &req.query;
            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
            let mut back = url::Url::parse(&redirect).unwrap();
            {
                let mut pairs = back.query_pairs_mut();
                match &script.error {
                    Some((error, description)) => {
                        pairs
                            .append_pair("error", error)
                            .append_pair("error_description", description);
                    }
                    None => {
                        let code = uuid::Uuid::new_v4().to_string();
                        let nonce = q.get("nonce").cloned().unwrap_or_default();
                        let challenge = q.get("code_challenge").cloned().unwrap_or_default();
                        issued
                            .lock()
                            .unwrap()
                            .codes
                            .insert(code.clone(), (nonce, challenge));
                        pairs.append_pair("code", &code);
                    }
                }
                pairs.append_pair("state", q.get("state").map_or("", |s| s.as_str()));
                if let Some(iss) = &script.callback_iss {
                    pairs.append_pair("iss", iss);
                }
            }
            (
                302,
                vec![("Location".into(), back.to_string())],
                String::new(),
            )
        }
        ("POST", "/token") => {
            let pair = format!("gateway:{SECRET}");
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            if req.headers.get("authorization") != Some(&basic) {
                return (
                    401,
                    json_type,
                    json!({"error": "invalid_client"}).to_string(),
                );
            }
            let code = req.form.get("code").cloned().unwrap_or_default();
            let Some((nonce, challenge)) = issued.lock().unwrap().codes.remove(&code) else {
                return (
                    400,
                    json_type,
                    json!({"error": "invalid_grant"}).to_string(),
                );
            };
            let verifier = req.form.get("code_verifier").cloned().unwrap_or_default();
            let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if s256 != challenge {
                return (
                    400,
                    json_type,
                    json!({"error": "invalid_grant"}).to_string(),
                );
            }
            let now = now();
            let mut claims = good_claims();
            for (k, v) in [
                ("iss", json!(issuer)),
                ("aud", json!("gateway")),
                ("iat", json!(now)),
                ("exp", json!(now + 300)),
                ("nonce", json!(nonce)),
            ] {
                claims.insert(k.into(), v);
            }
            (script.claims)(&mut claims);
            let mut info = claims.clone();
            if let Some(sub) = &script.userinfo_sub {
                info.insert("sub".into(), json!(sub));
            }
            for name in &script.userinfo_only {
                claims.remove(*name);
            }
            let id_token = sign_as(&claims, script.signing);
            let access = format!("op-access-{code}");
            issued.lock().unwrap().userinfo.insert(access.clone(), info);
            let body =
                json!({"access_token": access, "token_type": "Bearer", "id_token": id_token});
            (200, json_type, body.to_string())
        }
        ("GET", "/userinfo") => {
            let bearer = req
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            let token = bearer.strip_prefix("Bearer ").unwrap_or_default();
            match issued.lock().unwrap().userinfo.get(token) {
                Some(info) => (200, json_type, Value::Object(info.clone()).to_string()),
                None => (401, Vec::new(), String::new()),
            }
        }
        _ => (404, Vec::new(), String::new()),
    }
}
