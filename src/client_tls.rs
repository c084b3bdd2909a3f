//! Client certificates on the listener (docs/CONFIG.md, "Client certificates and DPoP"): the
//! verifier rustls asks in the handshake, swapped whole at a reload (new CAs, new CRLs), and
//! what a verified certificate tells the request: its thumbprint (`cnf.x5t#S256`) and names.

use std::any::Any;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::sender::{CertName, ClientCerts};

/// A client certificate verified in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCert {
    /// base64url SHA-256 of the DER certificate: RFC 8705's `x5t#S256`.
    pub thumbprint: String,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    pub cn: Option<String>,
}

impl ClientCert {
    /// What the certificate says; its validity was the handshake's to check.
    pub(crate) fn from_der(der: &[u8]) -> ClientCert {
        use x509_parser::extensions::GeneralName;
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(der));
        let mut cert = ClientCert {
            thumbprint,
            uri_sans: Vec::new(),
            dns_sans: Vec::new(),
            cn: None,
        };
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) else {
            return cert;
        };
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(u) => cert.uri_sans.push(u.to_string()),
                    GeneralName::DNSName(d) => cert.dns_sans.push(d.to_string()),
                    _ => {}
                }
            }
        }
        cert.cn = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        cert
    }

    /// The subject, by the first of `order` the certificate has (and that could travel as a
    /// header value).
    pub(crate) fn subject(&self, order: &[CertName]) -> Option<&str> {
        order
            .iter()
            .find_map(|n| match n {
                CertName::UriSan => self.uri_sans.first().map(String::as_str),
                CertName::DnsSan => self.dns_sans.first().map(String::as_str),
                CertName::Cn => self.cn.as_deref(),
            })
            .filter(|s| !s.is_empty() && crate::auth::jwt::can_be_header_value(s))
    }
}

/// The handshake's verifier, replaced whole at a reload.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl ClientVerifier {
    pub(crate) fn new(certs: Option<&ClientCerts>) -> Result<Self, String> {
        Ok(ClientVerifier {
            current: ArcSwap::from_pointee(build(certs)?),
        })
    }

    /// Takes the CAs, CRLs and mode of a new config for the handshakes that follow.
    pub(crate) fn update(&self, certs: Option<&ClientCerts>) -> Result<(), String> {
        self.current.store(Arc::new(build(certs)?));
        Ok(())
    }

    fn inner(&self) -> Arc<Arc<dyn ClientCertVerifier>> {
        self.current.load_full()
    }
}

fn build(certs: Option<&ClientCerts>) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let Some(certs) = certs else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let mut roots = RootCertStore::empty();
    for der in &certs.roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("client_ca_file: {e}"))?;
    }
    let crls = certs
        .crls
        .iter()
        .map(|d| CertificateRevocationListDer::from(d.clone()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        // A revoked intermediate counts too; a CA without a CRL is not refused for it.
        .allow_unknown_revocation_status();
    let builder = match certs.required {
        true => builder,
        false => builder.allow_unauthenticated(),
    };
    builder
        .build()
        .map_err(|e| format!("client certificates: {e}"))
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner().client_auth_mandatory()
    }

    /// No hints: the verifier can change under a handshake, the list could not follow it.
    /// Clients then offer the certificate they have.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// After each handshake: the verified certificate, read once for every request of the
/// connection.
pub(crate) struct ReadCertificate;

#[async_trait]
impl TlsAccept for ReadCertificate {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let leaf = tls.peer_certificate_der()?;
        Some(Arc::new(ClientCert::from_der(leaf)))
    }
}

/// The connection's client certificate, from the session digest.
pub(crate) fn of_session(session: &pingora::proxy::Session) -> Option<&ClientCert> {
    let digest = session.digest()?;
    digest.ssl_digest.as_ref()?.extension.get::<ClientCert>()
}
