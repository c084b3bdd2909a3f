//! Upstream pools: round-robin over the targets that pass their health check.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::WrappedX509;

/// An upstream's place in the config's list, and in the runtime's table of pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpstreamId(pub usize);

/// How to reach one `[[upstreams]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    pub name: String,
    pub targets: Vec<SocketAddr>,
    pub tls: bool,
    pub sni: String,
    /// DER certificates of `ca_file` (already checked to parse).
    pub ca_der: Option<Vec<Vec<u8>>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub health_check: Option<HealthCheckSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    /// `None`: a TCP connect check.
    pub path: Option<String>,
    pub interval: Duration,
}

struct Target {
    addr: SocketAddr,
    healthy: AtomicBool,
}

/// A pool of targets, with the peer template every request to it copies.
pub struct UpstreamPool {
    pub settings: UpstreamSettings,
    targets: Vec<Target>,
    next: AtomicUsize,
    ca: Option<Arc<[WrappedX509]>>,
    /// Pingora pools connections by address, SNI and verification flags, not by the CA a
    /// connection was verified with: this key keeps each upstream's connections its own.
    group_key: u64,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("name", &self.settings.name)
            .finish_non_exhaustive()
    }
}

impl UpstreamPool {
    pub fn new(settings: UpstreamSettings) -> Self {
        let ca = settings.ca_der.as_ref().map(|ders| {
            let certs: Vec<WrappedX509> = ders
                .iter()
                .map(|d| WrappedX509::new(d.clone(), pingora::utils::tls::parse_x509))
                .collect();
            Arc::from(certs.into_boxed_slice())
        });
        // One per pool built (a reload builds new pools, which then open new connections).
        static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);
        let group_key = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
        UpstreamPool {
            group_key,
            targets: settings
                .targets
                .iter()
                .map(|&addr| Target {
                    addr,
                    healthy: AtomicBool::new(true),
                })
                .collect(),
            settings,
            next: AtomicUsize::new(0),
            ca,
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The next healthy target in turn. When none is healthy every target is tried in turn
    /// (better a likely failure than a certain one, as Envoy's panic threshold does).
    pub fn select(&self) -> SocketAddr {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.targets[(start + i) % n])
            .find(|t| t.healthy.load(Ordering::Relaxed))
            .unwrap_or(&self.targets[start % n])
            .addr
    }

    /// A peer for `addr` with this pool's TLS and timeouts.
    pub fn peer(&self, addr: SocketAddr) -> HttpPeer {
        let s = &self.settings;
        let mut peer = HttpPeer::new(addr, s.tls, s.sni.clone());
        peer.options.connection_timeout = Some(s.connect_timeout);
        peer.options.total_connection_timeout = Some(s.connect_timeout * 2);
        peer.options.read_timeout = Some(s.read_timeout);
        peer.options.ca = self.ca.clone();
        peer.group_key = self.group_key;
        peer
    }

    /// Runs one round of health checks and updates the rotation.
    pub async fn check_health(&self, check: &(dyn HealthCheck + Send + Sync)) {
        for t in &self.targets {
            let ok = match Backend::new(&t.addr.to_string()) {
                Ok(backend) => check.check(&backend).await.is_ok(),
                Err(_) => false,
            };
            let was = t.healthy.swap(ok, Ordering::Relaxed);
            if was != ok {
                tracing::warn!(upstream = %self.settings.name, target = %t.addr, healthy = ok, "upstream target health changed");
            }
        }
    }

    /// The checker for this pool's `health_check`, if any.
    pub fn health_checker(&self) -> Option<Box<dyn HealthCheck + Send + Sync>> {
        let hc = self.settings.health_check.as_ref()?;
        let s = &self.settings;
        Some(match &hc.path {
            Some(path) => {
                let mut check = HttpHealthCheck::new(&s.sni, s.tls);
                check.peer_template = self.peer(s.targets[0]);
                check.req.set_uri(path.parse().expect("validated at load"));
                Box::new(check)
            }
            None => {
                let mut check = TcpHealthCheck::new();
                check.peer_template.options.connection_timeout = Some(s.connect_timeout);
                check
            }
        })
    }
}
