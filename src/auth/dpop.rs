//! DPoP proofs (RFC 9449), read by their own strict verifier: a proof must carry its public
//! key in the header (`jwk`), which the access-token verifier never reads. What a proof
//! proves is checked here; its single use (`jti`) is the store's, in `caller`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longer proofs are refused before decoding (an RSA-4096 key and signature fit in 3 KiB).
const MAX_PROOF_LEN: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;

/// `[dpop]` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DpopSettings {
    pub algorithms: Vec<Algorithm>,
    /// Seconds: a proof's `iat` within this of now (plus the leeway).
    pub max_age: u64,
    pub require_nonce: bool,
}

/// Why a proof was refused (401 `invalid_dpop_proof`, 400 at the token endpoints), or a nonce
/// is wanted (401 `use_dpop_nonce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofError {
    Invalid(&'static str),
    UseNonce,
}

/// A proof that verified: the thumbprint of its key (`cnf.jkt`) and what makes it single-use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    pub jkt: String,
    pub jti: String,
    /// Until when the proof could be accepted: its `jti` is remembered that long.
    pub usable_until: u64,
}

/// What the proof must match.
pub(crate) struct Expected<'a> {
    pub method: &'a str,
    /// The request's URL, canonical (see [`canonical_htu`]).
    pub htu: &'a str,
    /// The access token presented with the proof (`ath`); `None` at the token endpoints.
    pub access_token: Option<&'a str>,
    pub now: u64,
    pub leeway: u64,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<Value>,
    htm: Option<Value>,
    htu: Option<Value>,
    iat: Option<Value>,
    ath: Option<Value>,
    nonce: Option<Value>,
}

fn b64_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, ProofError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ProofError::Invalid("malformed proof"))?;
    serde_json::from_slice(&bytes).map_err(|_| ProofError::Invalid("malformed proof"))
}

/// Verifies `proof` against `settings` and `expected`; `nonces` when nonces are required.
pub(crate) fn verify(
    proof: &str,
    settings: &DpopSettings,
    nonces: &Nonces,
    expected: &Expected<'_>,
) -> Result<Proof, ProofError> {
    let bad = ProofError::Invalid;
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return Err(bad("malformed proof"));
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(c64), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed proof"));
    };
    let header: ProofHeader = b64_json(h64)?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(bad("typ must be dpop+jwt"));
    }
    if header.crit.is_some() {
        return Err(bad("unsupported critical header"));
    }
    let alg = crate::auth::keys::parse_algorithm(&header.alg)
        .ok()
        .filter(|a| settings.algorithms.contains(a))
        .ok_or(bad("algorithm not accepted"))?;
    let jwk = header.jwk.ok_or(bad("no jwk in the header"))?;
    let key = PublicKey::from_jwk(&jwk, alg)?;
    let message = &proof[..h64.len() + 1 + c64.len()];
    let signed = jsonwebtoken::crypto::verify(sig, message.as_bytes(), &key.decoding, alg);
    if !signed.unwrap_or(false) {
        return Err(bad("invalid signature"));
    }
    let claims: ProofClaims = b64_json(c64)?;
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
    let jti = text(&claims.jti)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or(bad("missing jti"))?;
    if text(&claims.htm).as_deref() != Some(expected.method) {
        return Err(bad("htm does not match the request"));
    }
    let htu = text(&claims.htu).and_then(|u| canonical_htu(&u));
    if htu.as_deref() != Some(expected.htu) {
        return Err(bad("htu does not match the request"));
    }
    let iat = claims.iat.as_ref().and_then(Value::as_f64);
    let iat = iat.ok_or(bad("missing iat"))?.max(0.0) as u64;
    let window = settings.max_age + expected.leeway;
    if iat > expected.now + expected.leeway || expected.now.saturating_sub(iat) > window {
        return Err(bad("iat outside the accepted window"));
    }
    if let Some(token) = expected.access_token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if text(&claims.ath).as_deref() != Some(ath.as_str()) {
            return Err(bad("ath does not match the access token"));
        }
    }
    if settings.require_nonce {
        let nonce = text(&claims.nonce).ok_or(ProofError::UseNonce)?;
        if !nonces.is_current(&nonce, expected.now) {
            return Err(ProofError::UseNonce);
        }
    }
    Ok(Proof {
        jkt: key.thumbprint,
        jti,
        // One past the last second it is accepted in: a store forgets a marker at `until`.
        usable_until: iat + window + 1,
    })
}

/// A proof's public key, checked against the algorithm, and its RFC 7638 thumbprint.
struct PublicKey {
    decoding: DecodingKey,
    thumbprint: String,
}

impl PublicKey {
    fn from_jwk(jwk: &Map<String, Value>, alg: Algorithm) -> Result<Self, ProofError> {
        let bad = ProofError::Invalid;
        const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        if PRIVATE.iter().any(|m| jwk.contains_key(*m)) {
            return Err(bad("the jwk holds private key members"));
        }
        let member = |name: &str| -> Result<&str, ProofError> {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or(bad("incomplete jwk"))
        };
        let bytes = |name: &str| -> Result<Vec<u8>, ProofError> {
            URL_SAFE_NO_PAD
                .decode(member(name)?)
                .map_err(|_| bad("incomplete jwk"))
        };
        let mismatch = bad("the jwk does not fit the algorithm");
        use Algorithm::*;
        // RFC 7638: the required members, in lexicographic order, no whitespace.
        let (decoding, canonical) = match (member("kty")?, alg) {
            ("EC", ES256 | ES384) => {
                let (crv, len) = match alg {
                    ES256 => ("P-256", 32),
                    _ => ("P-384", 48),
                };
                if member("crv")? != crv || bytes("x")?.len() != len || bytes("y")?.len() != len {
                    return Err(mismatch);
                }
                let (x, y) = (member("x")?, member("y")?);
                let key = DecodingKey::from_ec_components(x, y).map_err(|_| mismatch)?;
                let c = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
                (key, c)
            }
            ("OKP", EdDSA) => {
                if member("crv")? != "Ed25519" || bytes("x")?.len() != 32 {
                    return Err(mismatch);
                }
                let x = member("x")?;
                let key = DecodingKey::from_ed_components(x).map_err(|_| mismatch)?;
                (key, format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#))
            }
            ("RSA", RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => {
                let n = bytes("n")?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < 256 {
                    return Err(bad("RSA keys under 2048 bits are refused"));
                }
                let (n, e) = (member("n")?, member("e")?);
                let key = DecodingKey::from_rsa_components(n, e).map_err(|_| mismatch)?;
                (key, format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
            }
            _ => return Err(mismatch),
        };
        Ok(PublicKey {
            decoding,
            thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())),
        })
    }
}

/// A URL as `htu` compares it: scheme and host lowercase, the default port dropped, the path
/// normalised as the request pipeline's step 4 does, query and fragment dropped. `None`: not
/// an absolute http(s) URL.
pub(crate) fn canonical_htu(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?;
    let path = crate::policy::path::normalize(u.path(), true).ok()?;
    Some(match u.port() {
        Some(port) => format!("{}://{host}:{port}{path}", u.scheme()),
        None => format!("{}://{host}{path}", u.scheme()),
    })
}

/// The request's own `htu`: the origin it was sent to and its normalised path.
pub(crate) fn request_htu(origin: &str, normalised_path: &str) -> Option<String> {
    canonical_htu(&format!("{origin}{normalised_path}"))
}

/// The nonces Portcullis issues when `require_nonce`: an HMAC of the current time window, so
/// that every instance sharing the key (derived from the config's signing key) issues and
/// accepts the same ones without shared state. One window is `max_age`; the previous window's
/// nonce stays good, so that a nonce is usable for at least one window.
pub(crate) struct Nonces {
    key: [u8; 32],
    window: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces").finish_non_exhaustive()
    }
}

impl Nonces {
    pub(crate) fn new(key: [u8; 32], window: u64) -> Self {
        Nonces {
            key,
            window: window.max(1),
        }
    }

    fn of_window(&self, window: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"portcullis dpop nonce");
        mac.update(&window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..18])
    }

    /// The nonce to hand out at `now`.
    pub(crate) fn current(&self, now: u64) -> String {
        self.of_window(now / self.window)
    }

    pub(crate) fn is_current(&self, nonce: &str, now: u64) -> bool {
        let w = now / self.window;
        [w, w.saturating_sub(1)]
            .iter()
            .any(|w| crate::auth::oidc::same(&self.of_window(*w), nonce))
    }
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
