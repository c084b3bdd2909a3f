//! `[server.tls]`'s client certificates, `[mtls]` and `[dpop]` (docs/CONFIG.md, "Client
//! certificates and DPoP").

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::tokens::Tokens;
use super::{root, Validator};
use crate::auth::dpop::{DpopSettings, Nonces};
use crate::auth::keys::parse_algorithm;
use crate::config::raw::{RawDpop, RawMtls, RawTlsFiles};
use crate::config::sender::{CertName, ClientCerts, Dpop, MtlsSettings};
use crate::config::ServerSettings;

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl Validator<'_> {
    /// `[mtls]` and `[dpop]`, and whether `bind_to_certificate` can bind anything.
    pub(super) fn sender(
        &self,
        server: Option<&ServerSettings>,
        tokens: &Tokens,
        declared: &HashSet<String>,
    ) -> (Option<MtlsSettings>, Dpop) {
        let client_certs = server.and_then(|s| s.tls.as_ref()?.client.as_ref());
        if tokens.bind_to_certificate && client_certs.is_none() {
            self.warn(
                &root("tokens").key("bind_to_certificate"),
                "without [server.tls] client_ca_file no connection has a client certificate: nothing is bound",
            );
        }
        (
            self.mtls(client_certs.is_some(), declared),
            self.dpop(tokens.nonce_key),
        )
    }

    pub(super) fn client_certs(&self, t: &RawTlsFiles) -> Option<ClientCerts> {
        let tp = root("server").key("tls");
        let Some(ca) = &t.client_ca_file else {
            for (key, set) in [
                ("client_auth", t.client_auth.is_some()),
                ("client_crl_files", !t.client_crl_files.is_empty()),
            ] {
                if set {
                    self.err(&tp.key(key), "needs client_ca_file");
                }
            }
            return None;
        };
        let required = match t.client_auth.as_deref() {
            None | Some("optional") => false,
            Some("required") => true,
            Some(_) => {
                let why = "must be \"optional\" or \"required\"";
                self.err(&tp.key("client_auth"), why);
                false
            }
        };
        let roots = self.ca_file(ca, &tp.key("client_ca_file"))?;
        let mut crls = Vec::new();
        for (i, file) in t.client_crl_files.iter().enumerate() {
            let at = tp.key("client_crl_files").index(i);
            let Some(bytes) = self.read_file(&at, file) else {
                continue;
            };
            let found: Vec<Vec<u8>> = rustls_pemfile::crls(&mut bytes.as_slice())
                .filter_map(Result::ok)
                .map(|c| c.to_vec())
                .collect();
            let valid =
                !found.is_empty() && found.iter().all(|d| x509_parser::parse_x509_crl(d).is_ok());
            if !valid {
                self.err(
                    &at,
                    "the file holds no valid PEM CRL (`-----BEGIN X509 CRL-----`)",
                );
            }
            crls.extend(found);
        }
        Some(ClientCerts {
            roots,
            crls,
            required,
        })
    }

    fn mtls(&self, client_certs: bool, declared: &HashSet<String>) -> Option<MtlsSettings> {
        let p = root("mtls");
        let raw: RawMtls = self.section("mtls")?;
        if !client_certs {
            self.err(
                &p,
                "needs [server.tls] client_ca_file: certificates are asked for there",
            );
        }
        let names = raw
            .subject_from
            .unwrap_or_else(|| ["uri_san", "dns_san", "cn"].map(String::from).to_vec());
        if names.is_empty() {
            self.err(
                &p.key("subject_from"),
                "at least one of uri_san, dns_san, cn",
            );
        }
        let subject_from = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.as_str() {
                "uri_san" => Some(CertName::UriSan),
                "dns_san" => Some(CertName::DnsSan),
                "cn" => Some(CertName::Cn),
                other => {
                    let why = format!("`{other}` is not one of uri_san, dns_san, cn");
                    self.err(&p.key("subject_from").index(i), why);
                    None
                }
            })
            .collect();
        for (subject, roles) in &raw.roles {
            self.check_roles(roles, &p.key("roles").key(subject), declared);
        }
        self.check_roles(&raw.default_roles, &p.key("default_roles"), declared);
        Some(MtlsSettings {
            subject_from,
            roles: raw.roles.into_iter().collect(),
            default_roles: raw.default_roles,
        })
    }

    /// `nonce_key`: derived from the config's signing key, so that every instance of one
    /// config accepts the nonces of the others.
    /// Without `[dpop]`, proofs are still verified (with the defaults): any issuer may bind
    /// its tokens to a key.
    fn dpop(&self, nonce_key: Option<[u8; 32]>) -> Dpop {
        let p = root("dpop");
        let raw: RawDpop = self.section("dpop").unwrap_or(RawDpop {
            algorithms: None,
            max_age: None,
            require_nonce: false,
        });
        let names = raw.algorithms.unwrap_or_else(|| {
            ["ES256", "EdDSA", "RS256", "PS256"]
                .map(String::from)
                .to_vec()
        });
        if names.is_empty() {
            self.err(&p.key("algorithms"), "at least one algorithm");
        }
        let algorithms = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match parse_algorithm(n) {
                Ok(a) if ASYMMETRIC.contains(&a) => Some(a),
                _ => {
                    let why = format!("`{n}` is not an asymmetric algorithm (ES256/384, EdDSA, RS256/384/512, PS256/384/512)");
                    self.err(&p.key("algorithms").index(i), why);
                    None
                }
            })
            .collect();
        let max_age = self.duration(&p.key("max_age"), raw.max_age.as_deref(), DEFAULT_MAX_AGE);
        if max_age.is_zero() || max_age > Duration::from_secs(600) {
            self.err(&p.key("max_age"), "from 1s to 10m");
        }
        let key = match (raw.require_nonce, nonce_key) {
            (_, Some(k)) => k,
            (false, None) => [0; 32],
            (true, None) => {
                let why =
                    "require_nonce needs [tokens] with a signing key: nonces are derived from it";
                self.err(&p.key("require_nonce"), why);
                [0; 32]
            }
        };
        Dpop {
            settings: DpopSettings {
                algorithms,
                max_age: max_age.as_secs().max(1),
                require_nonce: raw.require_nonce,
            },
            nonces: Nonces::new(key, max_age.as_secs().max(1)),
        }
    }
}
