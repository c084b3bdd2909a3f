//! TLS termination on the listener, and TLS to the upstream with `sni` and `ca_file`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::support::*;

fn certs(name: &str) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut key(name).as_slice())
        .map(Result::unwrap)
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn client_config() -> rustls::ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in certs("ca_cert.pem") {
        roots.add(c).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The echo upstream behind TLS with the test certificate (CN/SAN localhost, 127.0.0.1).
async fn start_tls_echo() -> std::net::SocketAddr {
    let key = rustls_pemfile::private_key(&mut key("tls_key.pem").as_slice())
        .unwrap()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs("tls_cert.pem"), key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    let _ = echo_connection(tls).await;
                }
            });
        }
    });
    addr
}

async fn echo_connection(s: tokio_rustls::server::TlsStream<TcpStream>) -> std::io::Result<()> {
    crate::support::serve_echo_connection(s).await
}

#[tokio::test]
async fn tls_termination_on_every_listener() {
    let echo = start_echo().await;
    let second = free_port();
    let toml = toml()
        .without_tokens()
        .listen(&format!(r#"["{{LISTEN}}", "127.0.0.1:{second}"]"#))
        .server(r#"tls = { cert_file = "{KEYS}/tls_cert.pem", key_file = "{KEYS}/tls_key.pem" }"#)
        .route("all", "/**", r#"auth = "none""#)
        .build();
    let gw = Gateway::start(&toml, echo).await;
    let connector = TlsConnector::from(Arc::new(client_config()));
    for port in [gw.addr.port(), second] {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains(
                r#""x-forwarded-proto": [
      "https""#
            ),
            "{text}"
        );
    }
    // Plain HTTP on a TLS listener gets no answer that looks like a proxied response.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}

/// Public routes `/{name}` to TLS upstreams of one target each: (name, target, SNI, whether
/// it trusts the test CA).
fn tls_upstreams(upstreams: &[(&str, &str, &str, bool)]) -> String {
    let mut t = toml().without_tokens().without_echo();
    for (name, target, sni, trusts_ca) in upstreams {
        let ca = if *trusts_ca {
            "\nca_file = \"{KEYS}/ca_cert.pem\""
        } else {
            ""
        };
        t = t
            .table(&format!(
                "[[upstreams]]\nname = \"{name}\"\ntargets = [\"{target}\"]\ntls = true\nsni = \"{sni}\"{ca}"
            ))
            .route(
                name,
                &format!("/{name}"),
                &format!("upstream = \"{name}\"\nauth = \"none\""),
            );
    }
    t.build()
}

#[tokio::test]
async fn tls_to_the_upstream_verifies_with_ca_file_and_sni() {
    // One upstream server each, so no pooled connection is shared between the three.
    let (a, b, c) = (
        start_tls_echo().await,
        start_tls_echo().await,
        start_tls_echo().await,
    );
    let toml = tls_upstreams(&[
        ("trusted", "{UPSTREAM}", "localhost", true),
        ("untrusted", "{B}", "localhost", false),
        ("wrong-name", "{C}", "other.example", true),
    ]);
    let toml = toml
        .replace("{B}", &b.to_string())
        .replace("{C}", &c.to_string());
    let gw = Gateway::start(&toml, a).await;
    assert_eq!(gw.get("/trusted", &[]).await.echo().path, "/trusted");
    gw.get("/untrusted", &[])
        .await
        .assert_refusal(502, "bad_gateway");
    gw.get("/wrong-name", &[])
        .await
        .assert_refusal(502, "bad_gateway");
}

/// Pingora pools upstream connections by address, SNI and verification flags: without a pool
/// of its own per upstream, a connection verified with one upstream's `ca_file` would serve
/// another upstream of the same address and SNI that does not trust that CA.
#[tokio::test]
async fn each_upstream_keeps_its_own_tls_connections() {
    let server = start_tls_echo().await;
    let toml = tls_upstreams(&[
        ("trusted", "{UPSTREAM}", "localhost", true),
        ("untrusted", "{UPSTREAM}", "localhost", false),
    ]);
    let gw = Gateway::start(&toml, server).await;
    for _ in 0..3 {
        assert_eq!(gw.get("/trusted", &[]).await.echo().path, "/trusted");
        gw.get("/untrusted", &[])
            .await
            .assert_refusal(502, "bad_gateway");
    }
}
