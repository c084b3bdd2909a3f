//! The change log: every write to users or keys adds a row naming what changed, in the same
//! transaction. Other instances read it after their last sequence number (PostgreSQL also
//! notifies them at commit) and reload what it names.
//!
//! Sequence numbers are given at insert but rows become visible at commit, so a slow
//! transaction can show up behind a higher number already read: each read also takes every
//! row of the last [`LOOKBACK`] seconds again (reloading is idempotent).

use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::{Any, Row, Transaction};

use super::{secs, DbError, DbKind};

/// How far back each read looks again, in seconds.
pub(crate) const LOOKBACK: u64 = 10;
/// The PostgreSQL channel of the notifications.
pub(crate) const CHANNEL: &str = "portcullis_changes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    User,
    Key,
}

impl ChangeKind {
    fn name(self) -> &'static str {
        match self {
            ChangeKind::User => "user",
            ChangeKind::Key => "key",
        }
    }
}

/// One row of the log: a user (by username) or a key (by id) to reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub seq: i64,
    pub kind: ChangeKind,
    pub name: String,
}

pub(super) async fn record(
    tx: &mut Transaction<'_, Any>,
    kind: DbKind,
    what: ChangeKind,
    name: &str,
    now: u64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO portcullis_changes (kind, name, at) VALUES ($1, $2, $3)")
        .bind(what.name())
        .bind(name)
        .bind(secs(now))
        .execute(&mut **tx)
        .await?;
    if kind == DbKind::Postgres {
        // Delivered at commit, to every instance listening.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(what.name())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A row of the log; `None` for a kind this version does not know (written by a newer
/// one during a rolling upgrade), which is passed over rather than stopping the follower.
fn read(row: &AnyRow) -> Result<Option<Change>, DbError> {
    let kind: String = row.try_get("kind")?;
    let kind = match kind.as_str() {
        "user" => ChangeKind::User,
        "key" => ChangeKind::Key,
        other => {
            tracing::warn!(
                kind = other,
                "users_db change of an unknown kind: passed over"
            );
            return Ok(None);
        }
    };
    Ok(Some(Change {
        seq: row.try_get("seq")?,
        kind,
        name: row.try_get("name")?,
    }))
}

/// The changes after `seq`, and those of the last [`LOOKBACK`] seconds before `now`.
pub(crate) async fn since(pool: &AnyPool, seq: i64, now: u64) -> Result<Vec<Change>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, kind, name FROM portcullis_changes WHERE seq > $1 OR at >= $2 ORDER BY seq",
    )
    .bind(seq)
    .bind(secs(now.saturating_sub(LOOKBACK)))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// The last sequence number (0 for an empty log): a follower starts after it.
pub(crate) async fn last(pool: &AnyPool) -> Result<i64, DbError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM portcullis_changes")
        .fetch_one(pool)
        .await?;
    Ok(last.unwrap_or(0))
}

/// Forgets changes older than `keep` seconds: an instance that starts loads everything.
pub(crate) async fn prune(pool: &AnyPool, now: u64, keep: u64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM portcullis_changes WHERE at < $1")
        .bind(secs(now.saturating_sub(keep)))
        .execute(pool)
        .await?;
    Ok(())
}
