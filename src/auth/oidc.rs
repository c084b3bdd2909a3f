//! OpenID Connect as a relying party sees it (docs/CONFIG.md, `[[oidc]]`), apart from HTTP and
//! the config: the provider's discovery document, PKCE, and the checks of its ID tokens and
//! back-channel logout tokens. Signatures are checked by the gateway's own JWS verifier, with
//! the keys the provider publishes and the asymmetric algorithms it names.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::jwks::RemoteJwks;
use super::jwt::Jws;
use super::keys::{parse_algorithm, Family};

/// What a logout token's `events` must hold (Back-Channel Logout 1.0, section 2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the relying party needs of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// RFC 9207: the provider always sends `iss` with the authorization response.
    pub iss_parameter: bool,
    /// The asymmetric algorithms its ID tokens may be signed with (never `none`, never HMAC).
    pub algorithms: Vec<Algorithm>,
}

impl Discovery {
    /// Reads `{issuer}/.well-known/openid-configuration`; its `issuer` must be `issuer`
    /// exactly (OpenID Connect Discovery 1.0, section 4.3).
    pub(crate) fn parse(body: &[u8], issuer: &str) -> Result<Discovery, String> {
        #[derive(serde::Deserialize)]
        struct Raw {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            jwks_uri: String,
            end_session_endpoint: Option<String>,
            userinfo_endpoint: Option<String>,
            #[serde(default)]
            authorization_response_iss_parameter_supported: bool,
            id_token_signing_alg_values_supported: Option<Vec<String>>,
        }
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| format!("not a discovery document: {e}"))?;
        if raw.issuer.trim_end_matches('/') != issuer {
            return Err(format!(
                "its issuer `{}` is not the configured one",
                raw.issuer
            ));
        }
        // Under an https issuer, every endpoint is https: the client's secret and the codes
        // never travel in the clear. Each is kept as parsed (`https:/idp/x` is read, by
        // browsers and here alike, as `https://idp/x`): what was checked is what is used.
        let https_only = issuer.starts_with("https://");
        let endpoint = |name: &str, url: &str| -> Result<String, String> {
            match url::Url::parse(url) {
                Ok(u)
                    if (u.scheme() == "https" || (!https_only && u.scheme() == "http"))
                        && u.host().is_some() =>
                {
                    Ok(u.into())
                }
                _ => Err(format!(
                    "its {name} is not an https URL (or http under an http issuer)"
                )),
            }
        };
        let optional =
            |name: &str, url: Option<String>| url.map(|u| endpoint(name, &u)).transpose();
        // OpenID Connect Discovery: RS256 when the document names none.
        let named = raw
            .id_token_signing_alg_values_supported
            .unwrap_or_else(|| vec!["RS256".into()]);
        let algorithms: Vec<Algorithm> = named
            .iter()
            .filter_map(|a| parse_algorithm(a).ok())
            .filter(|a| Family::of(*a) != Family::Hmac)
            .collect();
        if algorithms.is_empty() {
            return Err("it names no asymmetric ID token algorithm this gateway verifies".into());
        }
        Ok(Discovery {
            issuer: issuer.to_string(),
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &raw.authorization_endpoint,
            )?,
            token_endpoint: endpoint("token_endpoint", &raw.token_endpoint)?,
            jwks_uri: endpoint("jwks_uri", &raw.jwks_uri)?,
            end_session_endpoint: optional("end_session_endpoint", raw.end_session_endpoint)?,
            userinfo_endpoint: optional("userinfo_endpoint", raw.userinfo_endpoint)?,
            iss_parameter: raw.authorization_response_iss_parameter_supported,
            algorithms,
        })
    }
}

pub(crate) use super::random_token;

/// The PKCE S256 challenge of `verifier` (RFC 7636, section 4.2); also the digest a binding
/// cookie is kept as.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether two strings are equal, in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a provider's token must show, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub now: u64,
    pub leeway: u64,
    /// How old its `iat` may be: a token is made for the exchange or the logout at hand.
    pub max_age: u64,
}

/// A provider's token verified: its signature by the provider's keys (fetched for the
/// algorithms its discovery names), `iss`, `aud` (holding `client_id`), `azp`, `exp` and
/// `iat`, and a non-empty `sub` when it has one. The claims, or why not.
pub(crate) fn verify(
    token: &str,
    keys: &RemoteJwks,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, &'static str> {
    let jws = Jws::parse(token).map_err(|e| e.description())?;
    jws.verify(&keys.keys(), Some(keys))
        .map_err(|e| e.description())?;
    let claims = jws.claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss").map(|i| i.trim_end_matches('/')) != Some(expected.issuer) {
        return Err("wrong issuer");
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expected.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err("wrong audience");
    }
    if claims.contains_key("azp") && text("azp") != Some(expected.client_id) {
        return Err("wrong authorized party");
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_f64);
    let (now, leeway) = (expected.now as f64, expected.leeway as f64);
    match number("exp") {
        Some(exp) if now < exp + leeway => {}
        Some(_) => return Err("token expired"),
        None => return Err("missing exp"),
    }
    match number("iat") {
        Some(iat) if iat > now + leeway => return Err("token issued in the future"),
        Some(iat) if iat + (expected.max_age as f64) + leeway < now => {
            return Err("token issued too long ago")
        }
        Some(_) => {}
        None => return Err("missing iat"),
    }
    if claims.contains_key("sub") && text("sub").is_none_or(|s| s.is_empty()) {
        return Err("missing subject");
    }
    Ok(claims)
}

/// An ID token's own checks, after [`verify`]: a subject, and the `nonce` of this login.
pub(crate) fn check_id_token(claims: &Map<String, Value>, nonce: &str) -> Result<(), &'static str> {
    if !claims.get("sub").is_some_and(Value::is_string) {
        return Err("missing subject");
    }
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if same(n, nonce) => Ok(()),
        Some(_) => Err("wrong nonce"),
        None => Err("missing nonce"),
    }
}

/// What a verified logout token ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogoutToken {
    pub jti: String,
    /// The provider's session, when it names one.
    pub sid: Option<String>,
    pub sub: Option<String>,
    pub exp: u64,
}

/// A logout token's own checks, after [`verify`] (Back-Channel Logout 1.0, section 2.6).
pub(crate) fn check_logout_token(claims: &Map<String, Value>) -> Result<LogoutToken, &'static str> {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err("not a back-channel logout event");
    }
    if claims.contains_key("nonce") {
        return Err("a logout token carries no nonce");
    }
    let jti = text("jti").ok_or("missing jti")?;
    let (sid, sub) = (text("sid"), text("sub"));
    if sid.is_none() && sub.is_none() {
        return Err("neither sid nor sub");
    }
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    Ok(LogoutToken { jti, sid, sub, exp })
}

/// Whether the provider's `amr` shows a second factor: `mfa`, or two methods or more.
pub(crate) fn shows_second_factor(claims: &Map<String, Value>) -> bool {
    match claims.get("amr").and_then(Value::as_array) {
        Some(list) => list.len() >= 2 || list.iter().any(|m| m.as_str() == Some("mfa")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn discovery(extra: Value) -> Result<Discovery, String> {
        let mut doc = json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        Discovery::parse(&serde_json::to_vec(&doc).unwrap(), "https://idp.example")
    }

    #[test]
    fn discovery_keeps_asymmetric_algorithms_and_its_own_issuer() {
        let d =
            discovery(json!({"id_token_signing_alg_values_supported": ["none", "HS256", "ES256"]}))
                .unwrap();
        assert_eq!(d.algorithms, vec![Algorithm::ES256]);
        assert!(!d.iss_parameter);
        assert_eq!(
            discovery(json!({})).unwrap().algorithms,
            vec![Algorithm::RS256]
        );
        assert!(discovery(json!({"id_token_signing_alg_values_supported": ["HS256"]})).is_err());
        assert!(discovery(json!({"issuer": "https://evil.example"})).is_err());
        assert!(discovery(json!({"token_endpoint": "javascript:alert(1)"})).is_err());
        assert!(discovery(json!({"token_endpoint": "http://idp.example/token"})).is_err());
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }

    #[test]
    fn nonces_and_logout_events_are_checked() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(check_id_token(&claims(json!({"sub": "a", "nonce": "n1"})), "n1").is_ok());
        assert_eq!(
            check_id_token(&claims(json!({"sub": "a", "nonce": "n2"})), "n1"),
            Err("wrong nonce")
        );
        assert_eq!(
            check_id_token(&claims(json!({"sub": "a"})), "n1"),
            Err("missing nonce")
        );
        let events = json!({ LOGOUT_EVENT: {} });
        let ok = check_logout_token(&claims(json!({"jti": "j", "sid": "s", "events": events})));
        assert_eq!(ok.unwrap().sid.as_deref(), Some("s"));
        for bad in [
            json!({"jti": "j", "sid": "s"}),
            json!({"jti": "j", "events": events}),
            json!({"sid": "s", "events": events}),
            json!({"jti": "j", "sid": "s", "nonce": "n", "events": events}),
        ] {
            assert!(check_logout_token(&claims(bad)).is_err());
        }
    }

    #[test]
    fn a_second_factor_is_mfa_or_two_methods() {
        let c = |v: Value| v.as_object().unwrap().clone();
        assert!(shows_second_factor(&c(json!({"amr": ["pwd", "otp"]}))));
        assert!(shows_second_factor(&c(json!({"amr": ["mfa"]}))));
        assert!(!shows_second_factor(&c(json!({"amr": ["pwd"]}))));
        assert!(!shows_second_factor(&c(json!({}))));
    }
}
