//! Client certificates for the mTLS tests, made by `rcgen` (a CA of the test's own, client
//! certificates with the names asked for, CRLs), and a TLS client that presents one.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams,
    CertificateRevocationListParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_rustls::TlsConnector;

use super::{parse_response, Response};

/// A CA of the test's own.
pub struct Pki {
    pub ca_pem: String,
    ca: Certificate,
    key: KeyPair,
}

/// A client certificate and its key.
pub struct ClientId {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl ClientId {
    /// RFC 8705's `x5t#S256`.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }
}

/// The names a client certificate carries.
#[derive(Default)]
pub struct Names<'a> {
    pub uri: Option<&'a str>,
    pub dns: Option<&'a str>,
    pub cn: Option<&'a str>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = p.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
            key,
        }
    }

    /// A client certificate (serial `serial`) with `names`, for client authentication.
    pub fn client(&self, serial: u64, names: Names<'_>) -> ClientId {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        if let Some(cn) = names.cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some(uri) = names.uri {
            p.subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        if let Some(dns) = names.dns {
            p.subject_alt_names
                .push(SanType::DnsName(dns.try_into().unwrap()));
        }
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &self.ca, &self.key).unwrap();
        ClientId {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A PEM CRL revoking the certificates of these serials.
    pub fn crl(&self, revoked: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2025, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(revoked.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: date_time_ymd(2025, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.ca, &self.key)
            .unwrap()
            .pem()
            .unwrap()
    }
}

/// The client config that trusts the gateway's test certificate and presents `id`.
fn client_config(id: Option<&ClientId>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca = super::key("ca_cert.pem");
    for c in rustls_pemfile::certs(&mut ca.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match id {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let certs = rustls_pemfile::certs(&mut id.cert_pem.as_bytes())
                .map(Result::unwrap)
                .collect();
            let key = rustls_pemfile::private_key(&mut id.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
    }
}

/// Sends `raw` over TLS (SNI localhost) presenting `id`; `Err` when the handshake (or the
/// connection) fails before an answer.
pub async fn send_tls(
    addr: std::net::SocketAddr,
    id: Option<&ClientId>,
    raw: &str,
) -> Result<Response, String> {
    let connector = TlsConnector::from(Arc::new(client_config(id)));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let talk = async {
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(raw.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        // TLS 1.3: a refused certificate shows as an alert after the client's flight.
        tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        if !buf.starts_with(b"HTTP/") {
            return Err(format!(
                "no HTTP answer: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        Ok(parse_response(&buf))
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), talk)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// A kept-alive TLS connection presenting `id`: one request at a time.
pub struct TlsConn {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
}

impl TlsConn {
    pub async fn open(addr: std::net::SocketAddr, id: Option<&ClientId>) -> TlsConn {
        let connector = TlsConnector::from(Arc::new(client_config(id)));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        TlsConn {
            tls: connector.connect(name, tcp).await.unwrap(),
        }
    }

    /// `GET path` on the connection (kept alive), its answer read by `Content-Length`.
    pub async fn get(&mut self, path: &str) -> Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.tls.write_all(raw.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.tls.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the connection closed: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return parse_response(&buf[..end + 4 + length]);
            }
        }
    }
}
