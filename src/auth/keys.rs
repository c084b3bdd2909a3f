//! Verification and signing keys, pinned to the algorithms they may be used with.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The key families of JWS, each with the algorithms that may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec256,
    Ec384,
    Ed,
    /// An algorithm this build does not know: verifies nothing.
    Other,
}

impl Family {
    pub(crate) fn of(alg: Algorithm) -> Family {
        match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 => Family::Ec256,
            Algorithm::ES384 => Family::Ec384,
            Algorithm::EdDSA => Family::Ed,
            _ => Family::Other,
        }
    }

    pub(crate) fn algorithms(self) -> &'static [Algorithm] {
        use Algorithm::*;
        match self {
            Family::Hmac => &[HS256, HS384, HS512],
            Family::Rsa => &[RS256, RS384, RS512, PS256, PS384, PS512],
            Family::Ec256 => &[ES256],
            Family::Ec384 => &[ES384],
            Family::Ed => &[EdDSA],
            Family::Other => &[],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Hmac => "an HMAC secret",
            Family::Rsa => "an RSA key",
            Family::Ec256 => "a P-256 EC key",
            Family::Ec384 => "a P-384 EC key",
            Family::Ed => "an Ed25519 key",
            Family::Other => "a supported key",
        }
    }
}

/// Parses an algorithm name as gateway.toml writes it. `none` is never an algorithm.
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    use Algorithm::*;
    Ok(match name {
        "HS256" => HS256,
        "HS384" => HS384,
        "HS512" => HS512,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => {
            return Err(format!(
                "unknown algorithm `{name}` (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
            ))
        }
    })
}

/// A key that verifies signatures, and only under its pinned algorithms.
#[derive(Clone)]
pub struct VerifyKey {
    /// `None`: a key configured without a kid serves any kid.
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A key read from a PEM file: public always, private when the file held one.
pub(crate) struct PemKey {
    pub decoding: DecodingKey,
    pub encoding: Option<EncodingKey>,
    /// The public key as a JWK (no kid yet): for the JWKS and the RFC 7638 thumbprint.
    pub jwk: Jwk,
}

/// Reads a public or private PEM key for `alg`; a key of another family is an error.
pub(crate) fn load_pem(pem: &[u8], alg: Algorithm) -> Result<PemKey, String> {
    let family = Family::of(alg);
    let wrong = || {
        format!(
            "the file holds no {} PEM key (needed for {alg:?})",
            family.name()
        )
    };
    // jsonwebtoken's RSA "private" loader also takes public PEMs, so ask the label first.
    let is_private = String::from_utf8_lossy(pem).contains("PRIVATE KEY-----");
    let private = match family {
        _ if !is_private => Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into()),
        Family::Hmac => return Err("HMAC algorithms take a secret, not a key file".into()),
        Family::Other => return Err(wrong()),
        Family::Rsa => EncodingKey::from_rsa_pem(pem),
        Family::Ec256 | Family::Ec384 => EncodingKey::from_ec_pem(pem),
        Family::Ed => EncodingKey::from_ed_pem(pem),
    };
    let (jwk, encoding) = match private {
        Ok(enc) => (
            Jwk::from_encoding_key(&enc, alg).map_err(|_| wrong())?,
            Some(enc),
        ),
        Err(_) if family == Family::Rsa => (rsa_public_jwk(pem, alg).ok_or_else(wrong)?, None),
        Err(_) => {
            let dec = match family {
                Family::Ec256 | Family::Ec384 => DecodingKey::from_ec_pem(pem),
                _ => DecodingKey::from_ed_pem(pem),
            }
            .map_err(|_| wrong())?;
            (
                Jwk::from_decoding_key(&dec, Some(alg)).map_err(|_| wrong())?,
                None,
            )
        }
    };
    if jwk_family(&jwk) != Some(family) {
        return Err(wrong());
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| wrong())?;
    Ok(PemKey {
        decoding,
        encoding,
        jwk,
    })
}

/// The JWK of an RSA public key in SPKI PEM (`BEGIN PUBLIC KEY`). jsonwebtoken's own path for
/// this hands PKCS#1 DER to aws-lc's SPKI parser and fails, so the modulus and exponent are read
/// here with x509-parser.
fn rsa_public_jwk(pem: &[u8], alg: Algorithm) -> Option<Jwk> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::jwk::{CommonParameters, RSAKeyParameters, RSAKeyType};
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;

    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    if pem.label != "PUBLIC KEY" {
        return None;
    }
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&pem.contents).ok()?;
    let PublicKey::RSA(rsa) = spki.parsed().ok()? else {
        return None;
    };
    let strip = |b: &[u8]| -> Vec<u8> {
        let first = b
            .iter()
            .position(|&x| x != 0)
            .unwrap_or(b.len().saturating_sub(1));
        b[first..].to_vec()
    };
    Some(Jwk {
        common: CommonParameters {
            key_algorithm: jsonwebtoken::jwk::KeyAlgorithm::from_str(&format!("{alg:?}")).ok(),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: URL_SAFE_NO_PAD.encode(strip(rsa.modulus)),
            e: URL_SAFE_NO_PAD.encode(strip(rsa.exponent)),
        }),
    })
}

/// The family a JWK's parameters belong to (`None` for curves we do not verify).
pub(crate) fn jwk_family(jwk: &Jwk) -> Option<Family> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Family::Rsa),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Family::Ec256),
            EllipticCurve::P384 => Some(Family::Ec384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) => {
            (p.curve == EllipticCurve::Ed25519).then_some(Family::Ed)
        }
        AlgorithmParameters::OctetKey(_) => Some(Family::Hmac),
        _ => None,
    }
}

/// The RFC 7638 SHA-256 thumbprint: the default kid of an asymmetric key.
pub(crate) fn thumbprint(jwk: &Jwk) -> String {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .expect("thumbprint of a key we parsed")
}

/// The keys of a JWKS document that can verify signatures, each pinned to its `alg` when the
/// JWK names one, else to `allowed` within its family.
#[derive(Debug)]
pub(crate) struct JwksKeys {
    pub keys: Vec<VerifyKey>,
    /// Keys left out, each with why (for a warning): identity providers publish encryption
    /// keys beside their signing keys (Keycloak's RSA-OAEP key).
    pub skipped: Vec<String>,
}

/// Reads a JWKS document. A key that cannot verify a signature here (`use` other than `sig`,
/// `key_ops` without `verify`, an encryption or unknown `alg`, an unknown `kty` or curve, a
/// symmetric key) is skipped, never an error; a document with no usable key is one.
pub(crate) fn keys_from_jwks(
    json: &[u8],
    allowed: Option<&[Algorithm]>,
) -> Result<JwksKeys, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let doc: Document =
        serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut out = JwksKeys {
        keys: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, raw) in doc.keys.iter().enumerate() {
        match usable_key(raw, allowed) {
            Ok(Some(key)) => out.keys.push(key),
            Ok(None) => {}
            Err(why) => {
                let kid = raw.get("kid").and_then(|k| k.as_str()).unwrap_or("");
                out.skipped
                    .push(format!("keys[{i}] (kid `{kid}`) skipped: {why}"));
            }
        }
    }
    if out.keys.is_empty() {
        return Err("the JWKS holds no usable signature key".into());
    }
    Ok(out)
}

/// One JWK as a verification key. `Ok(None)`: usable, but not for any allowed algorithm.
fn usable_key(
    raw: &serde_json::Value,
    allowed: Option<&[Algorithm]>,
) -> Result<Option<VerifyKey>, String> {
    let field = |k: &str| raw.get(k).and_then(|v| v.as_str());
    if let Some(u) = field("use") {
        if u != "sig" {
            return Err(format!("use `{u}` is not `sig`"));
        }
    }
    if let Some(ops) = raw.get("key_ops").and_then(|v| v.as_array()) {
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err("key_ops does not include `verify`".into());
        }
    }
    let alg = match field("alg") {
        Some(a) => Some(parse_algorithm(a).map_err(|_| {
            format!("alg `{a}` is not a signature algorithm this gateway verifies")
        })?),
        None => None,
    };
    match field("kty") {
        Some("RSA" | "EC" | "OKP") => {}
        Some("oct") => return Err("a symmetric key is never taken from a JWKS".into()),
        Some(other) => return Err(format!("unknown kty `{other}`")),
        None => return Err("no kty".into()),
    }
    let jwk: Jwk =
        serde_json::from_value(raw.clone()).map_err(|e| format!("unreadable key: {e}"))?;
    let family = jwk_family(&jwk).ok_or("a curve this gateway does not verify")?;
    let mut algorithms: Vec<Algorithm> = match alg {
        Some(alg) if Family::of(alg) != family => {
            return Err(format!("alg {alg:?} does not fit the key type"))
        }
        Some(alg) => vec![alg],
        None => family.algorithms().to_vec(),
    };
    if let Some(allowed) = allowed {
        algorithms.retain(|a| allowed.contains(a));
    }
    if algorithms.is_empty() {
        return Ok(None);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unreadable key: {e}"))?;
    Ok(Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn public_and_private_pems_load_for_their_family_only() {
        for (file, alg) in [
            ("rsa_public.pem", Algorithm::RS256),
            ("rsa_private.pem", Algorithm::PS256),
            ("ec256_public.pem", Algorithm::ES256),
            ("ec256_private.pem", Algorithm::ES256),
            ("ec384_public.pem", Algorithm::ES384),
            ("ed25519_public.pem", Algorithm::EdDSA),
            ("ed25519_private.pem", Algorithm::EdDSA),
        ] {
            let k = load_pem(&fixture(file), alg).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(k.encoding.is_some(), file.contains("private"), "{file}");
        }
        for (file, alg) in [
            ("ec256_public.pem", Algorithm::RS256),
            ("rsa_public.pem", Algorithm::ES256),
            ("ec384_public.pem", Algorithm::ES256),
            ("ec256_private.pem", Algorithm::ES384),
            ("ed25519_public.pem", Algorithm::ES256),
        ] {
            assert!(load_pem(&fixture(file), alg).is_err(), "{file} as {alg:?}");
        }
    }

    #[test]
    fn keys_that_cannot_verify_are_skipped() {
        let rsa = load_pem(&fixture("rsa_public.pem"), Algorithm::RS256)
            .unwrap()
            .jwk;
        let mut sig = serde_json::to_value(&rsa).unwrap();
        sig["kid"] = "sig-1".into();
        sig["use"] = "sig".into();
        sig["alg"] = "RS256".into();
        let mut enc = sig.clone();
        enc["kid"] = "enc-1".into();
        enc["use"] = "enc".into();
        enc["alg"] = "RSA-OAEP".into();
        let mut oaep = sig.clone();
        oaep["kid"] = "enc-2".into();
        oaep.as_object_mut().unwrap().remove("use");
        oaep["alg"] = "RSA-OAEP-256".into();
        let oct = serde_json::json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"});
        let odd = serde_json::json!({"kty": "PQC", "kid": "future"});
        let doc = serde_json::json!({"keys": [enc, sig, oaep, oct, odd]});
        let got = keys_from_jwks(doc.to_string().as_bytes(), None).unwrap();
        assert_eq!(got.keys.len(), 1);
        assert_eq!(got.keys[0].kid.as_deref(), Some("sig-1"));
        assert_eq!(got.skipped.len(), 4, "{:?}", got.skipped);
        let only_bad = serde_json::json!({"keys": [doc["keys"][0], doc["keys"][3]]});
        assert!(keys_from_jwks(only_bad.to_string().as_bytes(), None).is_err());
    }
}
