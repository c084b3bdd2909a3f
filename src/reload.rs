//! Hot reload (docs/CONFIG.md, "Reload"): on SIGHUP, and when gateway.toml or users.toml changes,
//! validate fully, then swap the runtime atomically. A failed reload keeps the running config
//! and logs every error. Requests in flight keep the runtime they started with; shared state
//! (the store) lives outside it, and the new runtime carries over what is unchanged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::{self, Backend, Config};
use crate::runtime::Runtime;
use crate::services::Services;

/// How often the files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Reloader {
    pub path: PathBuf,
    pub services: Arc<Services>,
    /// Reload on SIGHUP too (a process of its own; not the tests' in-process gateways).
    pub on_sighup: bool,
}

/// What is looked at to tell that a file changed.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Reloader {
    fn watched(&self) -> Vec<(PathBuf, Stamp)> {
        let runtime = self.services.runtime.load();
        let mut files = vec![self.path.clone()];
        if let Some(file) = runtime
            .config
            .login
            .as_ref()
            .and_then(|l| l.users_file.clone())
        {
            files.push(file);
        }
        files
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect()
    }

    /// Loads the files again; swaps in only a config that is valid in full.
    pub(crate) fn reload(&self, why: &str) {
        let services = &self.services;
        let running = services.runtime.load_full();
        match config::load(&self.path) {
            Err(errors) => {
                services
                    .metrics
                    .config_reloads
                    .with_label_values(&["error"])
                    .inc();
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
                report_restart_only_changes(&running.config, &loaded.config);
                // New CAs and CRLs for the handshakes from now on.
                if let Some(verifier) = &services.client_verifier {
                    let certs = loaded
                        .config
                        .server
                        .tls
                        .as_ref()
                        .and_then(|t| t.client.as_ref());
                    if let Err(e) = verifier.update(certs) {
                        tracing::error!(error = %e, "config reload refused: the running config stays");
                        return;
                    }
                }
                let shared = services.store.clone().shared_buckets();
                let next = Runtime::new(loaded.config, Some(&running), shared);
                services.runtime.store(Arc::new(next));
                let reloads = &services.metrics.config_reloads;
                reloads.with_label_values(&["ok"]).inc();
                tracing::info!(trigger = why, "config reloaded");
            }
        }
    }

    /// Watches the files (and SIGHUP) until `shutdown` changes.
    pub(crate) async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut hangups = if self.on_sighup {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; file changes still reload");
                    None
                }
            }
        } else {
            None
        };
        let mut stamps = self.watched();
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
            let now = self.watched();
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
            stamps = self.watched();
        }
    }
}

/// Listeners, threads, the store and the users database are set up once: a change waits
/// for a restart.
fn users_db(config: &Config) -> (Option<&str>, Option<&str>) {
    let db = config.login.as_ref().and_then(|l| l.users_db.as_ref());
    (db.map(|d| d.url.expose()), db.map(|d| d.db_key.expose()))
}

/// The certificate and key files the listeners load.
fn tls(config: &Config) -> Option<(&std::path::Path, &std::path::Path)> {
    let files = config.server.tls.as_ref()?;
    Some((&files.cert_file, &files.key_file))
}

fn decision_listen(c: &Config) -> Vec<std::net::SocketAddr> {
    c.decision
        .as_ref()
        .map(|d| d.listen.clone())
        .unwrap_or_default()
}

/// What the mail task was started with: the server, its TLS and the sender (the links are
/// read at each mail).
fn mail_transport(config: &Config) -> Option<crate::config::MailSettings> {
    let mut m = config.mail.clone()?;
    (m.link, m.verify_link) = (None, None);
    Some(m)
}

fn report_restart_only_changes(running: &Config, next: &Config) {
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
        ("server.tls", tls(running) != tls(next)),
        ("server.threads", a.threads != b.threads),
        ("store", store_changed),
        ("login.users_db", users_db(running).0 != users_db(next).0),
        ("login.db_key", users_db(running).1 != users_db(next).1),
        (
            "decision.listen",
            decision_listen(running) != decision_listen(next),
        ),
        ("mail", mail_transport(running) != mail_transport(next)),
        ("audit", running.audit != next.audit),
    ] {
        if changed {
            tracing::warn!(
                setting = what,
                "changed in the file, but takes effect only after a restart"
            );
        }
    }
}
