//! `[[upstreams]]`: targets, TLS with its trust settings, timeouts, health checks.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use toml::de::DeValue;

use super::{root, Validator};
use crate::config::raw::{RawHealthCheck, RawUpstream};
use crate::config::source::KeyPath;
use crate::upstream::{HealthCheckSettings, UpstreamId, UpstreamSettings};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// The valid upstreams, in file order, and their ids by name.
pub(super) struct Upstreams {
    pub(super) settings: Vec<UpstreamSettings>,
    pub(super) by_name: BTreeMap<String, UpstreamId>,
}

impl Validator<'_> {
    pub(super) fn upstreams(&self) -> Upstreams {
        let p = root("upstreams");
        let mut out = Upstreams {
            settings: Vec::new(),
            by_name: BTreeMap::new(),
        };
        for (i, raw) in self.array::<RawUpstream>(self.table.get("upstreams"), &p) {
            let up = p.index(i);
            if raw.name.is_empty() {
                self.err(&up.key("name"), "must not be empty");
            }
            if out.by_name.contains_key(&raw.name) {
                self.err(
                    &up.key("name"),
                    format!("upstream `{}` is defined twice", raw.name),
                );
                continue;
            }
            if let Some(settings) = self.upstream(&raw, &up) {
                out.by_name.insert(raw.name, UpstreamId(out.settings.len()));
                out.settings.push(settings);
            }
        }
        out
    }

    fn upstream(&self, raw: &RawUpstream, up: &KeyPath) -> Option<UpstreamSettings> {
        if raw.targets.is_empty() {
            self.err(&up.key("targets"), "at least one target is needed");
        }
        let mut targets = Vec::new();
        let mut first_host = None;
        for (t, target) in raw.targets.iter().enumerate() {
            match resolve_target(target) {
                Some((addr, host)) => {
                    first_host.get_or_insert(host);
                    targets.push(addr);
                }
                None => self.err(
                    &up.key("targets").index(t),
                    format!("`{target}` is not a resolvable host:port"),
                ),
            }
        }
        let ca_der = raw
            .ca_file
            .as_ref()
            .and_then(|f| self.ca_file(f, &up.key("ca_file")));
        if raw.ca_file.is_some() && !raw.tls {
            self.err(&up.key("ca_file"), "ca_file needs `tls = true`");
        }
        let health_check = raw
            .health_check
            .as_ref()
            .map(|hc| self.health_check(hc, &up.key("health_check")));
        let settings = UpstreamSettings {
            name: raw.name.clone(),
            sni: raw.sni.clone().or(first_host).unwrap_or_default(),
            tls: raw.tls,
            ca_der,
            connect_timeout: self.duration(
                &up.key("connect_timeout"),
                raw.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
            ),
            read_timeout: self.duration(
                &up.key("read_timeout"),
                raw.read_timeout.as_deref(),
                DEFAULT_READ_TIMEOUT,
            ),
            health_check,
            targets,
        };
        (!settings.targets.is_empty()).then_some(settings)
    }

    /// PEM certificates, each checked to parse.
    pub(super) fn ca_file(&self, file: &str, at: &KeyPath) -> Option<Vec<Vec<u8>>> {
        let bytes = self.read_file(at, file)?;
        let ders: Vec<Vec<u8>> = rustls_pemfile::certs(&mut bytes.as_slice())
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect();
        let valid = !ders.is_empty()
            && ders
                .iter()
                .all(|d| x509_parser::parse_x509_certificate(d).is_ok());
        if !valid {
            self.err(at, "the file holds no valid PEM certificate");
            return None;
        }
        Some(ders)
    }

    fn health_check(&self, hc: &RawHealthCheck, hp: &KeyPath) -> HealthCheckSettings {
        if let Some(path) = &hc.path {
            if !path.starts_with('/') || path.parse::<http::Uri>().is_err() {
                self.err(&hp.key("path"), "must be a path starting with `/`");
            }
        }
        HealthCheckSettings {
            path: hc.path.clone(),
            interval: self.duration(
                &hp.key("interval"),
                hc.interval.as_deref(),
                DEFAULT_HEALTH_INTERVAL,
            ),
        }
    }

    /// Whether `[[upstreams]]` has an entry of that name, valid or not (an invalid one has
    /// its own errors; the route referring to it is not wrong too).
    pub(super) fn upstream_declared(&self, name: &str) -> bool {
        match self.table.get("upstreams").map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items.iter().any(|u| {
                u.get_ref()
                    .as_table()
                    .and_then(|t| t.get("name"))
                    .and_then(|n| n.get_ref().as_str())
                    == Some(name)
            }),
            _ => false,
        }
    }
}

/// `host:port` -> the first address it resolves to, and the host (the default SNI).
fn resolve_target(target: &str) -> Option<(SocketAddr, String)> {
    let (host, _) = target.rsplit_once(':')?;
    let addr = target.to_socket_addrs().ok()?.next()?;
    Some((addr, host.trim_matches(['[', ']']).to_string()))
}
