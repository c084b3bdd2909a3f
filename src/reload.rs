//! Hot reload (SPEC section 6): on SIGHUP, and when gateway.toml or users.toml changes,
//! validate fully, then swap the snapshot atomically. A failed reload keeps the running config
//! and logs every error. Requests in flight keep the snapshot they started with; shared state
//! (the store) lives outside the snapshot, and unchanged rate-limit policies keep their limiters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::app::bind_global_limits;
use crate::config::{self, Backend, Config};
use crate::metrics::metrics;
use crate::store::Store;

/// How often the files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

pub struct Reloader {
    pub path: PathBuf,
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
}

/// What is looked at to tell that a file changed.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Reloader {
    fn watched(&self) -> Vec<PathBuf> {
        let config = self.config.load();
        let mut files = vec![self.path.clone()];
        if let Some(login) = &config.login {
            files.push(login.users_file.clone());
        }
        files
    }

    /// Loads the files again; swaps only a config that is valid in full.
    pub fn reload(&self, why: &str) {
        let running = self.config.load_full();
        match config::load_after(&self.path, Some(&running)) {
            Err(errors) => {
                metrics().config_reloads.with_label_values(&["error"]).inc();
                for e in &errors.0 {
                    tracing::error!(error = %e, "config reload refused");
                }
                tracing::error!(
                    errors = errors.0.len(),
                    trigger = why,
                    "config reload refused: the running config stays"
                );
            }
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!(warning = %w, "config warning");
                }
                let next = loaded.config;
                self.report_restart_only_changes(&running, &next);
                bind_global_limits(&next, &self.store);
                self.config.store(Arc::new(next));
                metrics().config_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(trigger = why, "config reloaded");
            }
        }
    }

    /// Listeners, threads and the store are set up once: a change waits for a restart.
    fn report_restart_only_changes(&self, running: &Config, next: &Config) {
        let (a, b) = (&running.server, &next.server);
        let store_changed = match (&running.store.backend, &next.store.backend) {
            (Backend::Memory, Backend::Memory) => false,
            (Backend::Redis(x), Backend::Redis(y)) => {
                x.urls != y.urls || x.key_prefix != y.key_prefix || x.ca_pem != y.ca_pem
            }
            _ => true,
        };
        for (what, changed) in [
            ("server.listen", a.listen != b.listen),
            ("server.admin_listen", a.admin_listen != b.admin_listen),
            ("server.tls", a.tls.is_some() != b.tls.is_some()),
            ("server.threads", a.threads != b.threads),
            ("store", store_changed),
        ] {
            if changed {
                tracing::warn!(
                    setting = what,
                    "changed in the file, but takes effect only after a restart"
                );
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; file changes still reload");
                None
            }
        };
        let mut stamps: Vec<(PathBuf, Stamp)> = self
            .watched()
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect();
        loop {
            let hup = async {
                match hangups.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let why = tokio::select! {
                _ = hup => "SIGHUP",
                _ = tokio::time::sleep(WATCH_EVERY) => "",
                _ = shutdown.changed() => return,
            };
            let now: Vec<(PathBuf, Stamp)> = self
                .watched()
                .into_iter()
                .map(|p| {
                    let s = stamp(&p);
                    (p, s)
                })
                .collect();
            let changed = now != stamps;
            stamps = now;
            if !why.is_empty() {
                self.reload(why);
            } else if changed {
                self.reload("file changed");
            } else {
                continue;
            }
            // The reload may have named other files (a new users_file).
            stamps = self
                .watched()
                .into_iter()
                .map(|p| {
                    let s = stamp(&p);
                    (p, s)
                })
                .collect();
        }
    }
}
