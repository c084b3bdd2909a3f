//! The audit trail's writer (docs/CONFIG.md, `[audit]`): the rows its gateway's audit events
//! became, stored in batches on the database's own runtime; older rows than the retention
//! deleted every hour. A database that does not answer costs the rows of that batch (counted
//! in `portcullis_audit_dropped_total`; the events are in the log all the same), never a
//! request's time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::db::audit;
use super::directory::Directory;
use crate::audit::AuditRow;
use crate::clock::Clock;
use crate::metrics::Metrics;

/// Rows per insert, at most.
const BATCH: usize = 500;
/// How long a row may wait for others before its batch is written.
const LINGER: Duration = Duration::from_millis(200);
const PRUNE_EVERY: u64 = 3600;

pub(crate) struct Trail {
    pub directory: Arc<Directory>,
    pub rows: mpsc::Receiver<AuditRow>,
    pub retention: u64,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Trail {
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut pruned_at = 0;
        let mut failing = false;
        loop {
            let tick = tokio::time::sleep(Duration::from_secs(60));
            let first = tokio::select! {
                r = self.rows.recv() => match r { Some(r) => Some(r), None => return },
                _ = tick => None,
                _ = shutdown.changed() => {
                    // What is queued is written before the process ends.
                    let mut rest = Vec::new();
                    while let Ok(r) = self.rows.try_recv() {
                        rest.push(r);
                    }
                    if !rest.is_empty() {
                        self.write(rest, &mut failing).await;
                    }
                    return;
                }
            };
            if let Some(first) = first {
                let batch = self.batch(first).await;
                self.write(batch, &mut failing).await;
            }
            self.prune_if_due(&mut pruned_at).await;
        }
    }

    /// `first` and what arrives within [`LINGER`], up to [`BATCH`] rows.
    async fn batch(&mut self, first: AuditRow) -> Vec<AuditRow> {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, self.rows.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        batch
    }

    async fn write(&self, batch: Vec<AuditRow>, failing: &mut bool) {
        let n = batch.len() as u64;
        let stored = self
            .directory
            .db
            .run(move |pool, _| async move { audit::insert(&pool, &batch).await })
            .await;
        match stored {
            Ok(()) if *failing => {
                *failing = false;
                tracing::info!("audit rows are stored again");
            }
            Ok(()) => {}
            Err(e) => {
                self.metrics.audit_dropped.inc_by(n);
                if !*failing {
                    tracing::warn!(error = %e, rows = n, "audit rows not stored (they are in the log): the database does not answer");
                }
                *failing = true;
            }
        }
    }

    async fn prune_if_due(&self, pruned_at: &mut u64) {
        let now = self.clock.now();
        if now < *pruned_at + PRUNE_EVERY {
            return;
        }
        *pruned_at = now;
        let before = now.saturating_sub(self.retention);
        let pruned = self
            .directory
            .db
            .run(move |pool, _| async move { audit::prune(&pool, before).await })
            .await;
        if let Ok(rows @ 1..) = pruned {
            tracing::info!(rows, "audit rows past the retention deleted");
        }
    }
}
