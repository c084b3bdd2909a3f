//! Keeping this instance's API keys current with what any instance wrote: the change log read
//! every [`POLL`] (and at once on PostgreSQL's notification), each change reloaded; keys'
//! last use written back every [`FLUSH`]; the decoys drawn again every [`DECOYS`]; old
//! changes dropped every [`PRUNE`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::AnyPool;

use super::db::changes::{self, Change, ChangeKind, CHANNEL, LOOKBACK};
use super::db::{keys, DbError, DbKind};
use super::directory::Directory;
use crate::clock::Clock;

/// The backstop poll: a change shows on every instance within this, notified or not.
pub(crate) const POLL: Duration = Duration::from_millis(500);
const FLUSH: Duration = Duration::from_secs(30);
const PRUNE: Duration = Duration::from_secs(3600);
/// The decoys follow the users' hashes (imports, rehashes) this often.
const DECOYS: Duration = Duration::from_secs(600);
/// How long the change log keeps a row: far longer than any instance is behind. A deleted
/// key's revocation is kept as long: by then every instance has dropped the key.
pub(crate) const KEEP: u64 = 86400;

impl Directory {
    /// Follows the change log until `stop` resolves. Runs on the database's runtime (started
    /// here, after `run -d`'s fork).
    pub(crate) async fn follow(
        self: Arc<Self>,
        clock: Clock,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let me = self.clone();
        let seq = self.loaded_at;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        self.db.spawn(move |pool, kind, url| async move {
            tokio::select! {
                _ = me.follow_on(pool, kind, url, seq, clock) => {}
                _ = done_rx => {}
            }
        });
        stop.await;
        let _ = done_tx.send(());
    }

    async fn follow_on(
        &self,
        pool: AnyPool,
        kind: DbKind,
        url: String,
        mut seq: i64,
        clock: Clock,
    ) {
        let mut listener: Option<PgListener> = None;
        // What was applied within the lookback: seen again, not reloaded again.
        let mut applied: HashMap<i64, u64> = HashMap::new();
        let (mut flushed, mut pruned, mut decoyed) =
            (Instant::now(), Instant::now(), Instant::now());
        let mut failing = false;
        loop {
            if kind == DbKind::Postgres && listener.is_none() {
                listener = listen(&url).await;
            }
            wait(&mut listener).await;
            let now = clock.now();
            match self.apply_changes(&pool, seq, now, &mut applied).await {
                Ok(last) => {
                    self.db.set_down(false);
                    seq = seq.max(last);
                    if failing {
                        tracing::info!("users_db reachable again: following its changes");
                        failing = false;
                    }
                }
                Err(e) => {
                    self.db.set_down(true);
                    if !failing {
                        tracing::warn!(error = %e, "users_db unreachable: API keys stay as they were");
                        failing = true;
                    }
                    continue;
                }
            }
            applied.retain(|_, at| *at + LOOKBACK * 2 > now);
            if flushed.elapsed() >= FLUSH {
                flushed = Instant::now();
                let used = self.keys.take_used();
                if !used.is_empty() {
                    if let Err(e) = keys::touch(&pool, &used).await {
                        tracing::warn!(error = %e, "could not record API keys' last use");
                    }
                }
            }
            if decoyed.elapsed() >= DECOYS {
                decoyed = Instant::now();
                if let Err(e) = self.refresh_decoys().await {
                    tracing::warn!(error = %e, "could not read the users' hashes for the decoys");
                }
            }
            if pruned.elapsed() >= PRUNE {
                pruned = Instant::now();
                if let Err(e) = changes::prune(&pool, now, KEEP).await {
                    tracing::warn!(error = %e, "could not prune users_db's change log");
                }
            }
        }
    }

    /// Reloads what changed after `seq` (and in the lookback); the highest sequence seen.
    async fn apply_changes(
        &self,
        pool: &AnyPool,
        seq: i64,
        now: u64,
        applied: &mut HashMap<i64, u64>,
    ) -> Result<i64, DbError> {
        let mut last = seq;
        for change in changes::since(pool, seq, now).await? {
            if applied.contains_key(&change.seq) {
                continue;
            }
            match self.apply(pool, &change).await {
                Ok(()) => {}
                // One unreadable row must not look like a database away (every query then
                // refused): it is left out, with a warning, and the follower goes on.
                Err(DbError::Corrupt(what)) => {
                    tracing::warn!(seq = change.seq, %what, "users_db change not applied");
                }
                Err(e) => return Err(e),
            }
            applied.insert(change.seq, now);
            last = last.max(change.seq);
        }
        Ok(last)
    }

    async fn apply(&self, pool: &AnyPool, change: &Change) -> Result<(), DbError> {
        match change.kind {
            ChangeKind::Key => self
                .keys
                .set(&change.name, keys::live(pool, &change.name).await?),
            ChangeKind::User => self
                .keys
                .set_owner(&change.name, keys::live_of_user(pool, &change.name).await?),
        }
        Ok(())
    }
}

async fn listen(url: &str) -> Option<PgListener> {
    let mut l = PgListener::connect(url).await.ok()?;
    l.listen(CHANNEL).await.ok()?;
    Some(l)
}

/// Until a notification arrives or the poll interval passes. A listener that failed is
/// dropped (and made again on the next round).
async fn wait(listener: &mut Option<PgListener>) {
    let Some(l) = listener else {
        tokio::time::sleep(POLL).await;
        return;
    };
    tokio::select! {
        r = l.recv() => {
            if r.is_err() {
                *listener = None;
            }
        }
        _ = tokio::time::sleep(POLL) => {}
    }
}
