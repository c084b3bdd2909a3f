//! `[server]`: listeners, TLS, trusted proxies, threads, path and IPv6 rules.

use std::net::SocketAddr;

use super::{root, Validator};
use crate::config::raw::RawServer;
use crate::config::{ServerSettings, TlsFiles};
use crate::headers::TrustedProxies;

/// Every host on an IPv6 network gets a /64: counting by the full address would give a client
/// 2^64 budgets.
const DEFAULT_IPV6_PREFIX: u8 = 64;

impl Validator<'_> {
    pub(super) fn raw_server(&self) -> Option<RawServer> {
        if !self.table.contains_key("server") {
            self.src.error_at(
                None,
                None,
                "missing section `[server]` (with `listen`)".into(),
            );
            return None;
        }
        self.section::<RawServer>("server")
    }

    pub(super) fn server(&self, raw: &RawServer) -> ServerSettings {
        let p = root("server");
        if raw.listen.is_empty() {
            self.err(&p.key("listen"), "at least one address is needed");
        }
        let listen = self.addresses(&raw.listen, &p.key("listen"));
        let admin_listen = raw
            .admin_listen
            .as_deref()
            .and_then(|a| self.address(&p.key("admin_listen"), a));
        if raw.threads == Some(0) {
            self.err(&p.key("threads"), "must be at least 1");
        }
        let ipv6_prefix = raw.ipv6_prefix.unwrap_or(DEFAULT_IPV6_PREFIX);
        if !(1..=128).contains(&ipv6_prefix) {
            self.err(
                &p.key("ipv6_prefix"),
                "must be a prefix length from 1 to 128",
            );
        }
        ServerSettings {
            listen,
            admin_listen,
            tls: raw.tls.as_ref().map(|t| self.tls(t)),
            threads: raw.threads,
            allow_path_semicolons: raw.allow_path_semicolons,
            ipv6_prefix,
        }
    }

    /// Every address of a `listen` list; each unreadable one is an error.
    pub(super) fn addresses(
        &self,
        list: &[String],
        at: &crate::config::source::KeyPath,
    ) -> Vec<SocketAddr> {
        list.iter()
            .enumerate()
            .filter_map(|(i, a)| self.address(&at.index(i), a))
            .collect()
    }

    fn address(&self, at: &crate::config::source::KeyPath, a: &str) -> Option<SocketAddr> {
        a.parse()
            .map_err(|_| self.err(at, format!("`{a}` is not an IP:port address")))
            .ok()
    }

    fn tls(&self, t: &crate::config::raw::RawTlsFiles) -> TlsFiles {
        let tp = root("server").key("tls");
        for (k, f) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
            if let Some(bytes) = self.read_file(&tp.key(k), f) {
                if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
                    self.err(&tp.key(k), "not a PEM file");
                }
            }
        }
        TlsFiles {
            cert_file: self.resolve(&t.cert_file),
            key_file: self.resolve(&t.key_file),
            client: self.client_certs(t),
        }
    }

    /// Every listener on an address of its own: Pingora would hand two services one socket
    /// (each then closing it), and requests would reach either door.
    pub(super) fn distinct_listeners(
        &self,
        server: Option<&ServerSettings>,
        decision: Option<&crate::config::DecisionSettings>,
    ) {
        let (s, d) = (root("server"), root("decision"));
        let mut all: Vec<(SocketAddr, crate::config::source::KeyPath)> = Vec::new();
        if let Some(server) = server {
            let listen = server.listen.iter().enumerate();
            all.extend(listen.map(|(i, a)| (*a, s.key("listen").index(i))));
            all.extend(server.admin_listen.map(|a| (a, s.key("admin_listen"))));
        }
        if let Some(decision) = decision {
            let listen = decision.listen.iter().enumerate();
            all.extend(listen.map(|(i, a)| (*a, d.key("listen").index(i))));
        }
        for (i, (addr, at)) in all.iter().enumerate() {
            if all[..i].iter().any(|(earlier, _)| earlier == addr) {
                self.err(at, format!("`{addr}` is already a listener's address"));
            }
        }
    }

    pub(super) fn trusted_proxies(&self, raw: &RawServer) -> TrustedProxies {
        TrustedProxies(self.networks(&raw.trusted_proxies, &root("server").key("trusted_proxies")))
    }
}
