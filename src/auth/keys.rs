//! Verification and signing keys, pinned to the algorithms they may be used with.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, ThumbprintHash};
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
    let wrong = || format!("the file holds no {} PEM key (needed for {alg:?})", family.name());
    let private = match family {
        Family::Hmac => return Err("HMAC algorithms take a secret, not a key file".into()),
        Family::Other => return Err(wrong()),
        Family::Rsa => EncodingKey::from_rsa_pem(pem),
        Family::Ec256 | Family::Ec384 => EncodingKey::from_ec_pem(pem),
        Family::Ed => EncodingKey::from_ed_pem(pem),
    };
    let (jwk, encoding) = match private {
        Ok(enc) => (Jwk::from_encoding_key(&enc, alg).map_err(|_| wrong())?, Some(enc)),
        Err(_) => {
            let dec = match family {
                Family::Rsa => DecodingKey::from_rsa_pem(pem),
                Family::Ec256 | Family::Ec384 => DecodingKey::from_ec_pem(pem),
                _ => DecodingKey::from_ed_pem(pem),
            }
            .map_err(|_| wrong())?;
            (Jwk::from_decoding_key(&dec, Some(alg)).map_err(|_| wrong())?, None)
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
pub fn keys_from_jwks(json: &[u8], allowed: Option<&[Algorithm]>) -> Result<Vec<VerifyKey>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
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
