//! `[[tokens.trusted_issuers]]`: tokens minted elsewhere, verify-only, each key pinned to the
//! algorithms of its family.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};

use super::Validator;
use crate::auth::jwks::JwksSource;
use crate::auth::jwt::{ClaimPaths, Issuer};
use crate::auth::keys::{self, Family, VerifyKey};
use crate::config::raw::{Choice, RawTrustedIssuer};
use crate::config::source::KeyPath;

const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);

impl Validator<'_> {
    pub(super) fn trusted_issuer(&self, raw: &RawTrustedIssuer, p: &KeyPath) -> Option<Issuer> {
        if raw.issuer.is_empty() {
            self.err(&p.key("issuer"), "must not be empty");
        }
        let sources = [
            raw.jwks_url.is_some(),
            raw.jwks_file.is_some(),
            raw.public_key_file.is_some(),
            raw.secret.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            self.err(
                p,
                "exactly one of `jwks_url`, `jwks_file`, `public_key_file`, `secret` is needed",
            );
            return None;
        }
        let algorithms: Option<Vec<Algorithm>> = raw.algorithms.as_ref().map(|list| {
            let at = p.key("algorithms");
            list.iter()
                .enumerate()
                .filter_map(|(i, a)| match a {
                    Choice::Is(a) => Some(*a),
                    Choice::Not(why) => {
                        self.err(&at.index(i), why.clone());
                        None
                    }
                })
                .collect()
        });
        if algorithms.as_ref().is_some_and(|a| a.is_empty()) {
            self.err(&p.key("algorithms"), "must name at least one algorithm");
        }
        let refresh = self.duration(
            &p.key("jwks_refresh"),
            raw.jwks_refresh.as_deref(),
            DEFAULT_JWKS_REFRESH,
        );
        let mut jwks = None;
        let keys = if let Some(url) = &raw.jwks_url {
            jwks = Some(self.jwks_source(url, algorithms, refresh, &p.key("jwks_url"))?);
            Vec::new()
        } else {
            self.static_keys(raw, algorithms.as_deref(), p)?
        };
        let claim_path = |s: &Option<String>, default: &str| -> Vec<String> {
            s.as_deref()
                .unwrap_or(default)
                .split('.')
                .map(str::to_string)
                .collect()
        };
        Some(Issuer {
            iss: raw.issuer.clone(),
            audience: raw.audience.clone(),
            keys,
            jwks,
            claim_paths: ClaimPaths {
                roles: claim_path(&raw.roles_claim, "roles"),
                permissions: claim_path(&raw.permissions_claim, "permissions"),
            },
            own: false,
        })
    }

    /// A `jwks_url`: checked here, fetched at run time (never by `check`).
    fn jwks_source(
        &self,
        url: &str,
        algorithms: Option<Vec<Algorithm>>,
        refresh: Duration,
        p: &KeyPath,
    ) -> Option<JwksSource> {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => u,
            _ => {
                self.err(p, "must be an https:// (or http://) URL");
                return None;
            }
        };
        if parsed.scheme() == "http" {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                self.warn(
                    p,
                    "plain http: the keys can be swapped on the way; use https",
                );
            }
        }
        Some(JwksSource {
            url: url.to_string(),
            algorithms,
            refresh: refresh.as_secs().max(1),
        })
    }

    /// The keys of a `secret`, a `public_key_file` or a `jwks_file`.
    fn static_keys(
        &self,
        raw: &RawTrustedIssuer,
        algorithms: Option<&[Algorithm]>,
        p: &KeyPath,
    ) -> Option<Vec<VerifyKey>> {
        if let Some(secret) = &raw.secret {
            let kp = p.key("secret");
            if !self.check_secret(&kp, secret) {
                return None;
            }
            let algs = self.pinned(Family::Hmac, algorithms, p, &kp)?;
            return Some(vec![VerifyKey {
                kid: None,
                algorithms: algs,
                key: DecodingKey::from_secret(secret.as_bytes()),
            }]);
        }
        if let Some(file) = &raw.public_key_file {
            let kp = p.key("public_key_file");
            let pem = self.read_file(&kp, file)?;
            let Some(family) = pem_family(&pem) else {
                self.err(
                    &kp,
                    "the file holds no RSA, EC (P-256/P-384) or Ed25519 PEM key",
                );
                return None;
            };
            let algs = self.pinned(family, algorithms, p, &kp)?;
            let key = keys::load_pem(&pem, algs[0])
                .map_err(|e| self.err(&kp, e))
                .ok()?;
            return Some(vec![VerifyKey {
                kid: None,
                algorithms: algs,
                key: key.decoding,
            }]);
        }
        let kp = p.key("jwks_file");
        let json = self.read_file(&kp, raw.jwks_file.as_deref().unwrap_or_default())?;
        match keys::keys_from_jwks(&json, algorithms) {
            Ok(k) => {
                for why in &k.skipped {
                    self.warn(&kp, why.clone());
                }
                Some(k.keys)
            }
            Err(e) => {
                self.err(&kp, e);
                None
            }
        }
    }

    /// The algorithms a key of `family` verifies: `algorithms` when all of them fit it.
    fn pinned(
        &self,
        family: Family,
        algorithms: Option<&[Algorithm]>,
        p: &KeyPath,
        key_path: &KeyPath,
    ) -> Option<Vec<Algorithm>> {
        let Some(list) = algorithms else {
            return Some(family.algorithms().to_vec());
        };
        if let Some(a) = list.iter().find(|a| Family::of(**a) != family) {
            self.err(
                &p.key("algorithms"),
                format!("{a:?} does not fit the key of `{key_path}`"),
            );
            return None;
        }
        Some(list.to_vec())
    }
}

/// The family of a PEM key: the configured algorithms are then checked against it.
fn pem_family(pem: &[u8]) -> Option<Family> {
    [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .find(|a| keys::load_pem(pem, *a).is_ok())
    .map(Family::of)
}
