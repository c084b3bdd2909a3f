//! Sender-constrained credentials, the arms of `identify` that read the connection and the
//! `DPoP` header (docs/CONFIG.md, "Client certificates and DPoP"): a token's `cnf` checked
//! against the client certificate and the proof, a proof's single use, a certificate as the
//! credential itself; and what the token endpoints bind the tokens they issue to.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Asked;
use crate::auth::credentials::Credential;
pub(crate) use crate::auth::dpop::Proof;
use crate::auth::dpop::{self, Expected, ProofError};
use crate::auth::facts::Binding;
use crate::auth::{AuthMethod, Identity};
use crate::config::{Config, OnFailure};
use crate::error::{GatewayError, TokenError};
use crate::store::{Presented, Store};

/// The `DPoP` header of a request.
pub(crate) const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

/// Checks `binding` (the verified token's `cnf`) against the connection and, for the `DPoP`
/// scheme, the proof: the proof that verified, whose `jti` is yet to be spent.
pub(super) fn check_binding(
    config: &Config,
    asked: &Asked<'_>,
    credential: &Credential<'_>,
    binding: &Binding,
    now: u64,
) -> Result<Option<Proof>, GatewayError> {
    let proof = match credential {
        Credential::Dpop(token) => {
            let proof = proof(config, asked, Some(token), now)?;
            if binding.jkt.as_deref() != Some(proof.jkt.as_str()) {
                return Err(GatewayError::InvalidToken(TokenError::DpopBinding));
            }
            Some(proof)
        }
        // No downgrade: a DPoP-bound token is worthless without its proof.
        _ if binding.jkt.is_some() => {
            return Err(GatewayError::InvalidToken(TokenError::DpopBoundAsBearer))
        }
        _ => None,
    };
    if let Some(x5t) = &binding.x5t {
        let same = asked
            .client_cert
            .is_some_and(|c| crate::auth::oidc::same(&c.thumbprint, x5t));
        if !same {
            return Err(GatewayError::InvalidToken(TokenError::CertificateBinding));
        }
    }
    Ok(proof)
}

/// The request's one DPoP proof, verified for its method and URL; `access_token` for `ath`
/// (`None` at the token endpoints).
pub(crate) fn proof(
    config: &Config,
    asked: &Asked<'_>,
    access_token: Option<&str>,
    now: u64,
) -> Result<Proof, GatewayError> {
    let bad = GatewayError::InvalidDpopProof;
    let mut values = asked.headers.get_all(DPOP).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(bad("exactly one DPoP proof is needed"));
    };
    let value = value.to_str().map_err(|_| bad("malformed proof"))?;
    if value.contains(',') {
        return Err(bad("exactly one DPoP proof is needed"));
    }
    let htu = asked
        .site
        .own_origin(asked.headers, asked.authority)
        .and_then(|origin| dpop::request_htu(&origin, asked.path?))
        .ok_or(bad("the request's URL cannot be told"))?;
    let expected = Expected {
        method: asked.method.as_str(),
        htu: &htu,
        access_token,
        now,
        leeway: config.lifetimes.leeway,
    };
    let d = &config.dpop;
    dpop::verify(value.trim(), &d.settings, &d.nonces, &expected).map_err(|e| match e {
        ProofError::Invalid(why) => bad(why),
        ProofError::UseNonce => GatewayError::UseDpopNonce,
    })
}

/// Spends the proof's `jti` on every instance (the store): a proof is good once.
pub(crate) async fn spend(
    store: &dyn Store,
    config: &Config,
    proof: &Proof,
) -> Result<(), GatewayError> {
    let mut h = Sha256::new();
    h.update(proof.jkt.as_bytes());
    h.update([0]);
    h.update(proof.jti.as_bytes());
    let marker = format!("dpop:{}", hex::encode(&h.finalize()[..16]));
    match store.spend(&marker, proof.usable_until).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(GatewayError::InvalidDpopProof("the proof was used before")),
        Err(e) => {
            tracing::warn!(error = %e, "DPoP proof not checked for reuse: the store does not answer");
            match config.store.on_failure {
                OnFailure::Open => Ok(()),
                OnFailure::Closed => Err(GatewayError::Unavailable),
            }
        }
    }
}

/// The connection's client certificate as the credential (`accept` holding `"mtls"`): `None`
/// when there is none, or it has none of the names `subject_from` reads.
pub(super) fn certificate(
    config: &Config,
    store: &dyn Store,
    asked: &Asked<'_>,
    now: u64,
) -> Result<Option<Identity>, GatewayError> {
    let (Some(cert), Some(mtls)) = (asked.client_cert, &config.mtls) else {
        return Ok(None);
    };
    let Some(subject) = cert.subject(&mtls.subject_from) else {
        return Ok(None);
    };
    let presented = Presented {
        subject,
        ..Presented::default()
    };
    if store.is_revoked(&presented, now) {
        return Err(GatewayError::InvalidToken(TokenError::Revoked));
    }
    let mut roles: Vec<String> = mtls.roles.get(subject).cloned().unwrap_or_default();
    roles.extend(mtls.default_roles.iter().cloned());
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(subject.to_string()));
    claims.insert(
        "cnf".into(),
        serde_json::json!({"x5t#S256": cert.thumbprint}),
    );
    Ok(Some(Identity {
        subject: subject.to_string(),
        method: AuthMethod::Mtls,
        grants: Arc::new(config.roles.grants(&roles, &[])),
        claims: Arc::new(claims),
        api_key: None,
        bound: true,
    }))
}

/// What the tokens issued on a request are bound to, and what a refresh token presented on
/// it must be bound to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sender {
    /// The thumbprint of the key a valid proof on the request showed.
    pub proof_jkt: Option<String>,
    /// The connection's client certificate's thumbprint.
    pub cert: Option<String>,
    /// `[tokens] bind_to_certificate`.
    pub bind_cert: bool,
}

impl Sender {
    /// The request to a token endpoint: its proof (for `POST` and the endpoint's URL, no
    /// `ath`) verified and spent, when it carries one; a bad one is refused, never ignored.
    pub(crate) async fn of_request(
        config: &Config,
        store: &dyn Store,
        asked: &Asked<'_>,
        now: u64,
    ) -> Result<Sender, GatewayError> {
        let proof_jkt = match asked.headers.contains_key(DPOP) {
            true => {
                let proof = proof(config, asked, None, now)?;
                spend(store, config, &proof).await?;
                Some(proof.jkt)
            }
            false => None,
        };
        Ok(Sender {
            proof_jkt,
            cert: asked.client_cert.map(|c| c.thumbprint.clone()),
            bind_cert: config.bind_to_certificate,
        })
    }

    /// The `cnf` of the tokens issued now.
    pub(crate) fn binding(&self) -> Binding {
        Binding {
            jkt: self.proof_jkt.clone(),
            x5t: self.cert.clone().filter(|_| self.bind_cert),
        }
    }

    /// Whether a refresh token bound as `bound` may be used on this request: the same key's
    /// proof, the same certificate.
    pub(crate) fn holds(&self, bound: &Binding) -> Result<(), GatewayError> {
        let same = |want: &Option<String>, have: &Option<String>| match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => crate::auth::oidc::same(w, h),
            (Some(_), None) => false,
        };
        if !same(&bound.jkt, &self.proof_jkt) {
            return Err(GatewayError::InvalidGrant(
                "the refresh token needs a DPoP proof of its key",
            ));
        }
        if !same(&bound.x5t, &self.cert) {
            return Err(GatewayError::InvalidGrant(
                "the refresh token needs its client certificate",
            ));
        }
        Ok(())
    }
}

/// What DPoP adds to an answer (RFC 9449 sections 7.1 and 8): the current nonce on every
/// answer when `require_nonce`, and a refusal's challenge in the DPoP scheme when the request
/// used it, or the refusal is the proof's.
pub(crate) fn answer_headers(
    config: &Config,
    request: &http::HeaderMap,
    refusal: Option<&GatewayError>,
    now: u64,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut out = Vec::new();
    let d = &config.dpop;
    if d.settings.require_nonce {
        if let Ok(v) = http::HeaderValue::from_str(&d.nonces.current(now)) {
            out.push((http::HeaderName::from_static("dpop-nonce"), v));
        }
    }
    let Some(err) = refusal else {
        return out;
    };
    let used_dpop = request
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                crate::auth::credentials::parse_authorization(v),
                Some(Credential::Dpop(_))
            )
        });
    let proofs = matches!(
        err,
        GatewayError::InvalidDpopProof(_) | GatewayError::UseDpopNonce
    );
    if used_dpop || proofs {
        let algs: Vec<&str> = d.settings.algorithms.iter().map(|a| alg_name(*a)).collect();
        let challenge = err.dpop_challenge(&algs.join(" "));
        if let Some(v) = challenge.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            out.push((http::header::WWW_AUTHENTICATE, v));
        }
    }
    out
}

fn alg_name(a: jsonwebtoken::Algorithm) -> &'static str {
    use jsonwebtoken::Algorithm::*;
    match a {
        ES256 => "ES256",
        ES384 => "ES384",
        EdDSA => "EdDSA",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        _ => "",
    }
}
