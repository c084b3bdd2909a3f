//! `[tokens]`: Portcullis's own issuer (its signing key, its previous keys, the JWKS it
//! publishes), the lifetimes, and the trusted issuers (in `issuers.rs`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use toml::de::DeValue;

use super::{root, Validator};
use crate::auth::jwt::{ClaimPaths, Issuer, Lifetimes, Signer};
use crate::auth::keys::{self, Family, VerifyKey};
use crate::config::raw::{Choice, RawTokens, RawTrustedIssuer};
use crate::config::source::{deserialize, KeyPath};

const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// `[tokens] max_ttl`: the longest lifetime of a token accepted, and how long revocations last.
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 86400);
const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(7 * 86400);

/// What `[tokens]` compiles into.
pub(super) struct Tokens {
    pub(super) issuers: Vec<Arc<Issuer>>,
    pub(super) signer: Option<Signer>,
    /// `/.well-known/jwks.json`.
    pub(super) jwks: Vec<u8>,
    pub(super) lifetimes: Lifetimes,
    /// DPoP nonces' key, derived from the signing key.
    pub(super) nonce_key: Option<[u8; 32]>,
    pub(super) bind_to_certificate: bool,
}

/// The own issuer's keys: what verifies, what signs (and its kid), what is published.
struct OwnKeys {
    verify: Vec<VerifyKey>,
    encoding: EncodingKey,
    kid: Option<String>,
    public: Vec<Jwk>,
}

impl Validator<'_> {
    pub(super) fn tokens(&self) -> Tokens {
        let mut tokens = Tokens {
            issuers: Vec::new(),
            signer: None,
            jwks: Vec::new(),
            lifetimes: Lifetimes {
                leeway: DEFAULT_LEEWAY.as_secs(),
                max_ttl: DEFAULT_MAX_TTL.as_secs(),
            },
            nonce_key: None,
            bind_to_certificate: false,
        };
        let mut public: Vec<Jwk> = Vec::new();
        let p = root("tokens");
        if let Some(value) = self.table.get("tokens") {
            let mut without_issuers = value.clone();
            let trusted = match without_issuers.get_mut() {
                DeValue::Table(t) => t.remove("trusted_issuers"),
                _ => None,
            };
            if let Some(raw) = deserialize::<RawTokens>(self.src, &without_issuers, &p) {
                tokens.lifetimes = self.lifetimes(&raw, &p);
                tokens.bind_to_certificate = raw.bind_to_certificate;
                tokens.nonce_key = self.nonce_key(&raw);
                if let Some((issuer, signer, keys)) = self.own_issuer(&raw, &p, tokens.lifetimes) {
                    tokens.issuers.push(Arc::new(issuer));
                    tokens.signer = Some(signer);
                    public.extend(keys);
                }
            }
            let tp = p.key("trusted_issuers");
            for (i, raw) in self.array::<RawTrustedIssuer>(trusted.as_ref(), &tp) {
                if let Some(issuer) = self.trusted_issuer(&raw, &tp.index(i)) {
                    if tokens.issuers.iter().any(|o| o.iss == issuer.iss) {
                        self.err(
                            &tp.index(i).key("issuer"),
                            format!("issuer `{}` is configured twice", issuer.iss),
                        );
                    }
                    tokens.issuers.push(Arc::new(issuer));
                }
            }
        }
        let doc = serde_json::json!({ "keys": public });
        tokens.jwks = serde_json::to_vec(&doc).expect("JWKs serialise");
        tokens
    }

    /// A key for DPoP nonces, derived from the signing key (secret or key file), so that
    /// instances of one config agree on them.
    fn nonce_key(&self, raw: &RawTokens) -> Option<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let material = match (&raw.secret, &raw.private_key_file) {
            (Some(secret), _) => secret.as_bytes().to_vec(),
            (None, Some(file)) => crate::config::source::read_file(&self.resolve(file)).ok()?,
            (None, None) => return None,
        };
        let mut h = Sha256::new();
        h.update(b"portcullis dpop nonce key\0");
        h.update(&material);
        Some(h.finalize().into())
    }

    fn lifetimes(&self, raw: &RawTokens, p: &KeyPath) -> Lifetimes {
        let leeway = self.duration(&p.key("leeway"), raw.leeway.as_deref(), DEFAULT_LEEWAY);
        let max_ttl = self.duration(&p.key("max_ttl"), raw.max_ttl.as_deref(), DEFAULT_MAX_TTL);
        if max_ttl.is_zero() {
            self.err(&p.key("max_ttl"), "must be at least one second");
        }
        Lifetimes {
            leeway: leeway.as_secs(),
            max_ttl: max_ttl.as_secs(),
        }
    }

    fn own_issuer(
        &self,
        raw: &RawTokens,
        p: &KeyPath,
        lifetimes: Lifetimes,
    ) -> Option<(Issuer, Signer, Vec<Jwk>)> {
        if raw.issuer.is_empty() {
            self.err(&p.key("issuer"), "must not be empty");
        }
        let access_ttl = self.duration(
            &p.key("access_ttl"),
            raw.access_ttl.as_deref(),
            DEFAULT_ACCESS_TTL,
        );
        let refresh_ttl = self.duration(
            &p.key("refresh_ttl"),
            raw.refresh_ttl.as_deref(),
            DEFAULT_REFRESH_TTL,
        );
        for (key, ttl) in [("access_ttl", access_ttl), ("refresh_ttl", refresh_ttl)] {
            if ttl.as_secs() > lifetimes.max_ttl {
                self.err(
                    &p.key(key),
                    format!(
                        "must not be longer than max_ttl ({}s > {}s): the gateway would refuse its own tokens",
                        ttl.as_secs(),
                        lifetimes.max_ttl
                    ),
                );
            }
        }
        let alg = match &raw.algorithm {
            Choice::Is(a) => *a,
            Choice::Not(why) => {
                self.err(&p.key("algorithm"), why.clone());
                return None;
            }
        };
        let keys = if Family::of(alg) == Family::Hmac {
            self.hmac_keys(raw, p, alg)?
        } else {
            self.asymmetric_keys(raw, p, alg)?
        };
        let issuer = Issuer {
            iss: raw.issuer.clone(),
            audience: raw.audience.clone(),
            keys: keys.verify,
            jwks: None,
            claim_paths: ClaimPaths::default(),
            own: true,
        };
        let signer = Signer {
            issuer: raw.issuer.clone(),
            audience: raw.audience.clone(),
            algorithm: alg,
            kid: keys.kid,
            key: keys.encoding,
            access_ttl: access_ttl.as_secs(),
            refresh_ttl: refresh_ttl.as_secs(),
        };
        Some((issuer, signer, keys.public))
    }

    /// HS*: the secret signs and verifies; `previous_secrets` verify.
    fn hmac_keys(&self, raw: &RawTokens, p: &KeyPath, alg: Algorithm) -> Option<OwnKeys> {
        if raw.private_key_file.is_some() {
            self.err(
                &p.key("private_key_file"),
                format!("{alg:?} takes a `secret`, not a key file"),
            );
        }
        if !raw.previous_keys.is_empty() {
            self.err(
                &p.key("previous_keys"),
                "HS algorithms rotate with `previous_secrets`",
            );
        }
        let Some(secret) = &raw.secret else {
            self.err(p, format!("{alg:?} needs `secret` (at least 32 bytes)"));
            return None;
        };
        let mut ok = self.check_secret(&p.key("secret"), secret);
        let mut verify = vec![hmac_key(secret, alg, raw.key_id.clone())];
        for (i, s) in raw.previous_secrets.iter().enumerate() {
            ok &= self.check_secret(&p.key("previous_secrets").index(i), s);
            verify.push(hmac_key(s, alg, None));
        }
        ok.then(|| OwnKeys {
            verify,
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            kid: raw.key_id.clone(),
            public: Vec::new(),
        })
    }

    /// RS/PS/ES/EdDSA: the private key signs, its public part and `previous_keys` verify and
    /// are published.
    fn asymmetric_keys(&self, raw: &RawTokens, p: &KeyPath, alg: Algorithm) -> Option<OwnKeys> {
        if raw.secret.is_some() {
            self.err(
                &p.key("secret"),
                format!("{alg:?} takes `private_key_file`, not a secret"),
            );
        }
        if !raw.previous_secrets.is_empty() {
            self.err(
                &p.key("previous_secrets"),
                "asymmetric algorithms rotate with `previous_keys`",
            );
        }
        let Some(file) = &raw.private_key_file else {
            self.err(p, format!("{alg:?} needs `private_key_file`"));
            return None;
        };
        let kp = p.key("private_key_file");
        let pem = self.read_file(&kp, file)?;
        let key = keys::load_pem(&pem, alg)
            .map_err(|e| self.err(&kp, e))
            .ok()?;
        let Some(encoding) = key.encoding else {
            self.err(
                &kp,
                "the file holds a public key; signing needs the private key",
            );
            return None;
        };
        let kid = raw
            .key_id
            .clone()
            .unwrap_or_else(|| keys::thumbprint(&key.jwk));
        let mut own = OwnKeys {
            public: vec![published(key.jwk, alg, &kid)],
            verify: vec![VerifyKey {
                kid: Some(kid.clone()),
                algorithms: vec![alg],
                key: key.decoding,
            }],
            encoding,
            kid: Some(kid),
        };
        self.previous_keys(raw, p, alg, &mut own);
        Some(own)
    }

    fn previous_keys(&self, raw: &RawTokens, p: &KeyPath, alg: Algorithm, own: &mut OwnKeys) {
        for (i, prev) in raw.previous_keys.iter().enumerate() {
            let pp = p.key("previous_keys").index(i);
            let palg = match &prev.algorithm {
                None => alg,
                Some(Choice::Is(a)) => *a,
                Some(Choice::Not(why)) => {
                    self.err(&pp.key("algorithm"), why.clone());
                    continue;
                }
            };
            if Family::of(palg) == Family::Hmac {
                self.err(
                    &pp.key("algorithm"),
                    "previous keys are asymmetric; use previous_secrets for HS",
                );
                continue;
            }
            let Some(pem) = self.read_file(&pp.key("file"), &prev.file) else {
                continue;
            };
            match keys::load_pem(&pem, palg) {
                Ok(k) => {
                    let pkid = prev
                        .key_id
                        .clone()
                        .unwrap_or_else(|| keys::thumbprint(&k.jwk));
                    own.public.push(published(k.jwk, palg, &pkid));
                    own.verify.push(VerifyKey {
                        kid: Some(pkid),
                        algorithms: vec![palg],
                        key: k.decoding,
                    });
                }
                Err(e) => self.err(&pp.key("file"), e),
            }
        }
    }

    pub(super) fn check_secret(&self, path: &KeyPath, secret: &str) -> bool {
        if secret.len() < 32 {
            self.err(
                path,
                format!(
                    "an HS secret needs at least 32 bytes (this one has {})",
                    secret.len()
                ),
            );
            return false;
        }
        true
    }
}

fn hmac_key(secret: &str, alg: Algorithm, kid: Option<String>) -> VerifyKey {
    VerifyKey {
        kid,
        algorithms: vec![alg],
        key: DecodingKey::from_secret(secret.as_bytes()),
    }
}

/// A public JWK as the JWKS endpoint serves it: kid, alg and `use = sig`.
fn published(mut jwk: Jwk, alg: Algorithm, kid: &str) -> Jwk {
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = KeyAlgorithm::from_str(&format!("{alg:?}")).ok();
    jwk
}
