//! JWT verification (pipeline step 8) and issuing.
//!
//! The token names its issuer; that issuer's own key list and pinned algorithms decide. The
//! header's `alg` only selects among algorithms the key was configured for; `jku` and `x5u`
//! are never read, so never followed, and a token with a `jwk` header (as a DPoP proof has)
//! is refused.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{JwksSource, RemoteJwks};
use super::keys::{parse_algorithm, VerifyKey};
use crate::claims::claim_at;
use crate::error::TokenError;

/// Tokens longer than this are refused before any decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Where the roles and permissions of an issuer's tokens live.
#[derive(Debug, Clone)]
pub struct ClaimPaths {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}

impl Default for ClaimPaths {
    fn default() -> Self {
        ClaimPaths {
            roles: vec!["roles".into()],
            permissions: vec!["permissions".into()],
        }
    }
}

/// One issuer whose tokens are accepted, as the config describes it.
#[derive(Debug)]
pub struct Issuer {
    pub iss: String,
    pub audience: Option<String>,
    /// Keys from the config (a secret, a PEM file, a `jwks_file`).
    pub keys: Vec<VerifyKey>,
    /// Or keys fetched from a `jwks_url` (then `keys` is empty).
    pub jwks: Option<JwksSource>,
    pub claim_paths: ClaimPaths,
    /// Portcullis's own issuer: tokens must have `typ = "access"`.
    pub own: bool,
}

/// What a verified token tells the pipeline.
#[derive(Debug)]
pub struct VerifiedToken {
    pub subject: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub claims: Map<String, Value>,
}

/// Which kind of token the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// An access token, from any configured issuer (Portcullis's own: `typ = "access"`).
    Access,
    /// One of Portcullis's own refresh tokens (`typ = "refresh"`), for the refresh endpoints.
    Refresh,
}

/// How long tokens may live, and the clock skew allowed (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub leeway: u64,
    /// `[tokens] max_ttl`: a token that lives longer is refused, so that every revocation,
    /// kept this long, outlives the tokens it covers.
    pub max_ttl: u64,
}

/// Every issuer by `iss`, with the keys fetched for those that have a `jwks_url`.
#[derive(Debug)]
pub struct Verifier {
    issuers: HashMap<String, (Arc<Issuer>, Option<Arc<RemoteJwks>>)>,
    pub leeway: u64,
    pub max_ttl: u64,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
    typ: Option<String>,
    /// Never read as a key: its presence alone refuses a token (a DPoP proof has one).
    jwk: Option<Value>,
}

/// A compact JWS, parsed but not verified yet: its claims must not be trusted before
/// [`Jws::verify`] succeeds.
pub(crate) struct Jws<'t> {
    header: JoseHeader,
    alg: Algorithm,
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    message: &'t str,
    signature: &'t str,
}

impl<'t> Jws<'t> {
    pub(crate) fn parse(token: &'t str) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: JoseHeader = decode_json(h64)?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let alg = parse_algorithm(&header.alg).map_err(|_| TokenError::UnsupportedAlgorithm)?;
        let claims: Map<String, Value> = decode_json(p64)?;
        Ok(Jws {
            header,
            alg,
            claims,
            message: &token[..h64.len() + 1 + p64.len()],
            signature,
        })
    }

    /// Checks the signature with one of `keys` made for the header's algorithm (and kid).
    /// `remote`: where the keys were fetched, asked again when the kid is unknown.
    pub(crate) fn verify(
        &self,
        keys: &[VerifyKey],
        remote: Option<&RemoteJwks>,
    ) -> Result<(), TokenError> {
        let kid = &self.header.kid;
        if let (Some(remote), Some(kid)) = (remote, kid) {
            let known = keys
                .iter()
                .any(|k| k.kid.as_deref().is_none_or(|have| have == kid));
            if !known {
                // Perhaps the issuer rotated its keys: fetch again (at most every 10 s).
                remote.want_refresh();
                return Err(TokenError::UnknownKeyId);
            }
        }
        let alg = self.alg;
        let mut candidates = keys.iter().filter(|k| {
            k.algorithms.contains(&alg)
                && match (kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        });
        let message = self.message.as_bytes();
        let verified = candidates.any(|k| {
            jsonwebtoken::crypto::verify(self.signature, message, &k.key, alg).unwrap_or(false)
        });
        if !verified {
            return Err(TokenError::InvalidSignature);
        }
        Ok(())
    }
}

impl Verifier {
    /// `remote`: the fetched key sets, one for each issuer with a `jwks_url`.
    pub fn new(issuers: &[Arc<Issuer>], remote: &[Arc<RemoteJwks>], lifetimes: Lifetimes) -> Self {
        let fetched = |iss: &str| remote.iter().find(|r| r.issuer == iss).cloned();
        Verifier {
            issuers: issuers
                .iter()
                .map(|i| (i.iss.clone(), (i.clone(), fetched(&i.iss))))
                .collect(),
            leeway: lifetimes.leeway,
            max_ttl: lifetimes.max_ttl,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The fetched key set of issuer `iss`, if it has one.
    pub fn remote_keys(&self, iss: &str) -> Option<Arc<RemoteJwks>> {
        self.issuers.get(iss)?.1.clone()
    }

    /// Verifies an access token at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        self.verify_as(token, now, TokenUse::Access)
    }

    /// Verifies `token` as the kind `want`.
    pub fn verify_as(
        &self,
        token: &str,
        now: u64,
        want: TokenUse,
    ) -> Result<VerifiedToken, TokenError> {
        let jws = Jws::parse(token)?;
        let proof_like = jws.header.jwk.is_some()
            || jws
                .header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"));
        if proof_like {
            return Err(TokenError::EmbeddedKey);
        }
        let iss = jws
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::MissingIssuer)?;
        let (issuer, remote) = self.issuers.get(iss).ok_or(TokenError::UnknownIssuer)?;
        if want == TokenUse::Refresh && !issuer.own {
            return Err(TokenError::NotOurRefreshToken);
        }
        let fetched = remote.as_ref().map(|r| r.keys());
        let keys: &[VerifyKey] = fetched.as_deref().map_or(&issuer.keys, |k| k.as_slice());
        jws.verify(keys, remote.as_deref())?;
        let claims = jws.claims;
        self.check_claims(issuer, claims, now, want)
    }

    fn check_claims(
        &self,
        issuer: &Issuer,
        claims: Map<String, Value>,
        now: u64,
        want: TokenUse,
    ) -> Result<VerifiedToken, TokenError> {
        let now = now as f64;
        let leeway = self.leeway as f64;
        let exp = claims.get("exp").ok_or(TokenError::MissingExp)?;
        let exp = exp.as_f64().ok_or(TokenError::MalformedExp)?;
        if now >= exp + leeway {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            if nbf.as_f64().ok_or(TokenError::MalformedNbf)? > now + leeway {
                return Err(TokenError::NotYetValid);
            }
        }
        let iat = match claims.get("iat") {
            Some(iat) => Some(iat.as_f64().ok_or(TokenError::MalformedIat)?),
            None => None,
        };
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        // exp - iat, or exp - now without iat: a longer life would outlast its revocation.
        if exp - iat.unwrap_or(now) > self.max_ttl as f64 {
            return Err(TokenError::LifetimeTooLong);
        }
        if let Some(want) = &issuer.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == want,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(want)),
                _ => false,
            };
            if !ok {
                return Err(TokenError::WrongAudience);
            }
        }
        if issuer.own {
            let typ = match want {
                TokenUse::Access => "access",
                TokenUse::Refresh => "refresh",
            };
            if claims.get("typ").and_then(Value::as_str) != Some(typ) {
                return Err(TokenError::WrongType);
            }
        } else {
            for field in ["typ", "token_use"] {
                if let Some(t) = claims.get(field).and_then(Value::as_str) {
                    let t = t.to_ascii_lowercase();
                    if matches!(t.as_str(), "refresh" | "refresh_token" | "id" | "id_token") {
                        return Err(TokenError::WrongType);
                    }
                }
            }
        }
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(TokenError::MissingSubject),
        };
        if !can_be_header_value(&subject) {
            // It could not reach the upstream as X-User-Id: never forward it as someone.
            return Err(TokenError::UnforwardableSubject);
        }
        let roles = string_list(claim_at(&claims, &issuer.claim_paths.roles), false);
        let permissions = string_list(claim_at(&claims, &issuer.claim_paths.permissions), true);
        Ok(VerifiedToken {
            subject,
            roles,
            permissions,
            claims,
        })
    }
}

/// Whether a subject can be sent as a header value as it is: no control character (CR, LF,
/// NUL, tab, DEL...), which a header would drop or split.
pub(crate) fn can_be_header_value(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// A token id: a UUID v4.
pub(crate) fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn decode_json<T: serde::de::DeserializeOwned>(b64: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Roles or permissions: an array of strings, or a string (one role; space-separated
/// permissions, as OAuth `scope` is written).
fn string_list(v: Option<&Value>, split_spaces: bool) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) if split_spaces => {
            s.split_whitespace().map(str::to_string).collect()
        }
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Signs Portcullis's own tokens.
pub struct Signer {
    pub issuer: String,
    pub audience: Option<String>,
    pub algorithm: Algorithm,
    pub kid: Option<String>,
    pub key: EncodingKey,
    pub access_ttl: u64,
    pub refresh_ttl: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// An access token for `sub` with the claims of a login (docs/CONFIG.md, `[login]`; `sid` when a session
    /// is given).
    pub fn access_token(
        &self,
        sub: &str,
        roles: &[String],
        permissions: &[String],
        ttl: u64,
        now: u64,
        sid: Option<&str>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.access_token_with(sub, roles, permissions, &Map::new(), ttl, now, sid)
    }

    /// As `access_token`, with a user's extra claims (which never replace the registered ones).
    #[allow(clippy::too_many_arguments)]
    pub fn access_token_with(
        &self,
        sub: &str,
        roles: &[String],
        permissions: &[String],
        extra: &Map<String, Value>,
        ttl: u64,
        now: u64,
        sid: Option<&str>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = extra.clone();
        claims.extend(self.registered(sub, "access", ttl, now, &new_jti(), sid));
        claims.insert("roles".into(), roles.into());
        claims.insert("permissions".into(), permissions.into());
        self.sign(&claims)
    }

    /// A refresh token of session `sid`, identified by `jti`, for `ttl` seconds, with the
    /// session's `extra` claims (`auth_time`, `amr`).
    pub fn refresh_token(
        &self,
        sub: &str,
        sid: &str,
        jti: &str,
        ttl: u64,
        now: u64,
        extra: &Map<String, Value>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = extra.clone();
        claims.extend(self.registered(sub, "refresh", ttl, now, jti, Some(sid)));
        self.sign(&claims)
    }

    /// The claims every token of ours carries.
    fn registered(
        &self,
        sub: &str,
        typ: &str,
        ttl: u64,
        now: u64,
        jti: &str,
        sid: Option<&str>,
    ) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), sub.into());
        if let Some(aud) = &self.audience {
            claims.insert("aud".into(), aud.clone().into());
        }
        claims.insert("exp".into(), (now + ttl).into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("jti".into(), jti.into());
        if let Some(sid) = sid {
            claims.insert("sid".into(), sid.into());
        }
        claims.insert("typ".into(), typ.into());
        claims
    }

    pub fn sign(&self, claims: &Map<String, Value>) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}
