//! The schema, created and migrated at start: numbered SQL files embedded in the binary,
//! each applied once, in order, and recorded in `portcullis_schema` (a table of our own, so
//! that a database shared with an application's own migrations keeps both apart).

use sqlx::AnyPool;
use sqlx::{Acquire, Executor};

use super::{DbError, DbKind};

/// (version, SQLite's text, PostgreSQL's text).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("migrations/sqlite/0001_accounts.sql"),
        include_str!("migrations/postgres/0001_accounts.sql"),
    ),
    (
        2,
        include_str!("migrations/sqlite/0002_identities.sql"),
        include_str!("migrations/postgres/0002_identities.sql"),
    ),
    (
        3,
        include_str!("migrations/sqlite/0003_recovery_audit.sql"),
        include_str!("migrations/postgres/0003_recovery_audit.sql"),
    ),
];

/// Any number to lock on: instances starting together migrate one after the other.
const PG_LOCK: i64 = 0x706f_7274_6375;

pub(super) async fn run(pool: &AnyPool, kind: DbKind) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS portcullis_schema \
         (version BIGINT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    for (version, sqlite, postgres) in MIGRATIONS {
        let mut tx = conn.begin().await?;
        if kind == DbKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM portcullis_schema WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_none() {
            let sql = match kind {
                DbKind::Sqlite => sqlite,
                DbKind::Postgres => postgres,
            };
            tx.execute(*sql).await?;
            sqlx::query("INSERT INTO portcullis_schema (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(super::secs(crate::clock::Clock::System.now()))
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "users_db migrated");
        }
        tx.commit().await?;
    }
    Ok(())
}
