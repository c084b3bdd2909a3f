//! Client certificates on the listener (docs/CONFIG.md, "Client certificates and DPoP"): the
//! verifier rustls asks in the handshake, swapped whole at a reload (new CAs, new CRLs), and
//! what a verified certificate tells the request: its thumbprint (`cnf.x5t#S256`) and names.
//! A connection's certificate is checked again under the CAs and CRLs of the day on its
//! first request and after each reload: a resumed TLS session brings back a certificate the
//! handshake did not check again, and a connection may outlive a CRL.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A client certificate presented in the handshake.
#[derive(Debug)]
pub(crate) struct ClientCert {
    /// base64url SHA-256 of the DER certificate: RFC 8705's `x5t#S256`.
    pub thumbprint: String,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    pub cn: Option<String>,
    /// The chain as presented, leaf first, to be checked again.
    chain: Vec<CertificateDer<'static>>,
    /// `generation << 1 | accepted` of the verifier that last checked it (0: never).
    checked: AtomicU64,
}

impl ClientCert {
    /// What the certificate chain `chain` (leaf first) says; whether it is valid is
    /// [`ClientVerifier::accepts`]'s to tell.
    pub(crate) fn from_chain(chain: &[CertificateDer<'static>]) -> Option<ClientCert> {
        use x509_parser::extensions::GeneralName;
        let der = chain.first()?.as_ref();
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(der));
        let mut cert = ClientCert {
            thumbprint,
            uri_sans: Vec::new(),
            dns_sans: Vec::new(),
            cn: None,
            chain: chain.to_vec(),
            checked: AtomicU64::new(0),
        };
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) else {
            return Some(cert);
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
        Some(cert)
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
    /// Bumped at each update: certificates checked under an older one are checked again.
    generation: AtomicU64,
}

impl ClientVerifier {
    pub(crate) fn new(certs: Option<&ClientCerts>) -> Result<Self, String> {
        Ok(ClientVerifier {
            current: ArcSwap::from_pointee(build(certs)?),
            generation: AtomicU64::new(1),
        })
    }

    /// Takes the CAs, CRLs and mode of a new config for the handshakes that follow, and for
    /// the next request of every open connection.
    pub(crate) fn update(&self, certs: Option<&ClientCerts>) -> Result<(), String> {
        self.current.store(Arc::new(build(certs)?));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// `cert` while the CAs and CRLs of now accept it: checked once per connection and again
    /// after each reload, else remembered (one atomic load a request).
    pub(crate) fn accepts<'c>(&self, cert: &'c ClientCert) -> Option<&'c ClientCert> {
        let generation = self.generation.load(Ordering::Acquire);
        let seen = cert.checked.load(Ordering::Acquire);
        if seen >> 1 == generation {
            return (seen & 1 == 1).then_some(cert);
        }
        let inner = self.inner();
        let accepted = inner.offer_client_auth()
            && cert.chain.split_first().is_some_and(|(leaf, rest)| {
                inner
                    .verify_client_cert(leaf, rest, UnixTime::now())
                    .is_ok()
            });
        cert.checked
            .store(generation << 1 | u64::from(accepted), Ordering::Release);
        accepted.then_some(cert)
    }

    fn inner(&self) -> Arc<Arc<dyn ClientCertVerifier>> {
        self.current.load_full()
    }
}

fn build(certs: Option<&ClientCerts>) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let Some(certs) = certs else {
        return Ok(Arc::new(NoClients));
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

/// Asks for no certificate, and refuses one: what a handshake that began under client
/// certificates meets when a reload turned them off midway (rustls's own `NoClientAuth`
/// would panic there).
#[derive(Debug)]
struct NoClients;

impl ClientCertVerifier for NoClients {
    fn offer_client_auth(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::General("client certificates are off".into()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("client certificates are off".into()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("client certificates are off".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Vec::new()
    }
}

/// After each handshake: the certificate presented, read once for every request of the
/// connection.
pub(crate) struct ReadCertificate;

#[async_trait]
impl TlsAccept for ReadCertificate {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let chain = tls.peer_cert_chain_der()?;
        Some(Arc::new(ClientCert::from_chain(chain)?))
    }
}

/// The connection's client certificate, from the session digest, while `verifier` accepts it.
pub(crate) fn of_session<'s>(
    session: &'s pingora::proxy::Session,
    verifier: Option<&ClientVerifier>,
) -> Option<&'s ClientCert> {
    let digest = session.digest()?;
    let cert = digest.ssl_digest.as_ref()?.extension.get::<ClientCert>()?;
    verifier?.accepts(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake that meets the verifier after a reload turned client certificates off is
    /// refused, not a panic (rustls's `NoClientAuth` panics when asked to verify).
    #[test]
    fn without_client_certificates_a_certificate_is_refused_not_a_panic() {
        let v = ClientVerifier::new(None).unwrap();
        assert!(!v.offer_client_auth());
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert!(v.verify_client_cert(&junk, &[], UnixTime::now()).is_err());
        assert!(v.supported_verify_schemes().is_empty());
        let cert = ClientCert::from_chain(&[junk.into_owned()]).unwrap();
        assert!(v.accepts(&cert).is_none());
    }
}
