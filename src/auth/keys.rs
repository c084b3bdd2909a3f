//! Verification and signing keys, pinned to the algorithms they may be used with.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, ThumbprintHash};
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The key families of JWS, each with the algorithms that may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    Ec256,
    Ec384,
    Ed,
    /// An algorithm this build does not know: verifies nothing.
    Other,
}

impl Family {
    pub fn of(alg: Algorithm) -> Family {
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

    pub fn algorithms(self) -> &'static [Algorithm] {
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
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
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
pub struct PemKey {
    pub decoding: DecodingKey,
    pub encoding: Option<EncodingKey>,
    /// The public key as a JWK (no kid yet): for the JWKS and the RFC 7638 thumbprint.
    pub jwk: Jwk,
}

/// Reads a public or private PEM key for `alg`; a key of another family is an error.
pub fn load_pem(pem: &[u8], alg: Algorithm) -> Result<PemKey, String> {
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
pub fn jwk_family(jwk: &Jwk) -> Option<Family> {
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
pub fn thumbprint(jwk: &Jwk) -> String {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .expect("thumbprint of a key we parsed")
}

/// Keys of a JWKS document, each pinned to its `alg` when the JWK names one, else to
/// `allowed` within its family.
pub fn keys_from_jwks(
    json: &[u8],
    allowed: Option<&[Algorithm]>,
) -> Result<Vec<VerifyKey>, String> {
    let set: JwkSet =
        serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let Some(family) = jwk_family(jwk) else {
            continue;
        };
        if family == Family::Hmac {
            return Err(format!("keys[{i}]: symmetric keys do not belong in a JWKS"));
        }
        let mut algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
            Some(ka) => {
                let alg = parse_algorithm(&ka.to_string())
                    .map_err(|_| format!("keys[{i}]: unsupported alg"))?;
                if Family::of(alg) != family {
                    return Err(format!("keys[{i}]: alg does not fit the key type"));
                }
                vec![alg]
            }
            None => family.algorithms().to_vec(),
        };
        if let Some(allowed) = allowed {
            algorithms.retain(|a| allowed.contains(a));
        }
        if algorithms.is_empty() {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("keys[{i}]: {e}"))?;
        keys.push(VerifyKey {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key,
        });
    }
    if keys.is_empty() {
        return Err("the JWKS holds no usable key".into());
    }
    Ok(keys)
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
}
