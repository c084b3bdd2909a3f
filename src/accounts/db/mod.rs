//! The writable user store (docs/CONFIG.md, "Users in a database"): users and their API keys in SQLite or
//! PostgreSQL, through sqlx's Any driver (queries at run time: no database at compile time).
//!
//! The database's I/O runs on a runtime of its own, on a thread started with the first query
//! (after `run -d` forks): the proxy's event loops never poll a database socket, and a slow
//! database slows the endpoints that need it, nothing else.

pub(crate) mod audit;
pub(crate) mod changes;
pub(crate) mod identities;
pub(crate) mod keys;
mod migrate;
pub(crate) mod tokens;
pub(crate) mod users;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;

/// How long a query waits for a connection before the caller is told the database is
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// From `users_db`'s scheme.
    pub(crate) fn of(url: &str) -> Option<DbKind> {
        if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DbKind::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DbError {
    /// The database cannot be reached or refused the query; the text is for the log.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique name is taken (a username, a subject).
    #[error("already taken")]
    Taken,
    /// A row that does not read back as what was written.
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// A value of the request's that the database cannot hold (PostgreSQL: a NUL character
    /// in text or JSON, which SQLite stores): malformed input, not a fault of the database.
    #[error("a value the database cannot hold: {0}")]
    Unholdable(String),
}

/// PostgreSQL's SQLSTATEs for a character it cannot hold: `character_not_in_repertoire`
/// (text: "invalid byte sequence for encoding UTF8: 0x00") and `untranslatable_character`
/// (jsonb: "unsupported Unicode escape sequence", `\u0000`).
const UNHOLDABLE: [&str; 2] = ["22021", "22P05"];

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Taken,
            sqlx::Error::Database(d) if d.code().is_some_and(|c| UNHOLDABLE.contains(&&*c)) => {
                DbError::Unholdable(e.to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                DbError::Corrupt(e.to_string())
            }
            _ => DbError::Unavailable(e.to_string()),
        }
    }
}

/// What a gateway reads from the database before it starts.
pub(crate) struct Loaded {
    /// The change log's last sequence number.
    pub seq: i64,
    pub hashes: Vec<String>,
}

/// The database of `users_db`: its pool lives on the database's own runtime.
pub(crate) struct Db {
    url: String,
    kind: DbKind,
    started: OnceLock<Started>,
    /// The follower's last poll failed: queries fail at once rather than each waiting
    /// [`ACQUIRE_TIMEOUT`] for a database that is away. The next good poll clears it.
    down: AtomicBool,
}

/// The database's runtime and the pool on it.
struct Started {
    runtime: tokio::runtime::Runtime,
    pool: AnyPool,
}

impl Drop for Db {
    fn drop(&mut self) {
        // A gateway stopped in-process lets its database threads go (without blocking: the
        // last owner may be a task).
        if let Some(started) = self.started.take() {
            started.runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Db").field("kind", &self.kind).finish()
    }
}

impl Db {
    /// A database to connect to on first use. `url` was checked by the config.
    pub(crate) fn new(url: &str) -> Arc<Db> {
        sqlx::any::install_default_drivers();
        Arc::new(Db {
            url: url.to_string(),
            kind: DbKind::of(url).unwrap_or(DbKind::Sqlite),
            started: OnceLock::new(),
            down: AtomicBool::new(false),
        })
    }

    /// Connects and migrates now, on a runtime of the caller's, then reads the change log's
    /// position and every live API key (into `keys`): what a gateway loads before it starts,
    /// so that a database down at start is an error then, not later.
    pub(crate) async fn check_and_load(&self, keys: impl keys::KeySink) -> Result<Loaded, DbError> {
        let pool = pool_options(self.kind)
            .max_connections(1)
            .connect(&self.url)
            .await?;
        let loaded = async {
            migrate::run(&pool, self.kind).await?;
            // The position first: a change made while the keys load is read again later.
            let seq = changes::last(&pool).await?;
            keys::each_live(&pool, keys).await?;
            Ok(Loaded {
                seq,
                hashes: users::all_hashes(&pool).await?,
            })
        }
        .await;
        pool.close().await;
        loaded
    }

    /// Runs `work` with the pool, on the database's runtime.
    pub(crate) async fn run<T, F, Fut>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(AnyPool, DbKind) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
        T: Send + 'static,
    {
        if self.down.load(Ordering::Relaxed) {
            return Err(DbError::Unavailable("unreachable at the last poll".into()));
        }
        let started = self.started();
        let (pool, kind) = (started.pool.clone(), self.kind);
        started
            .runtime
            .spawn(async move { work(pool, kind).await })
            .await
            .unwrap_or_else(|e| Err(DbError::Unavailable(format!("database task failed: {e}"))))
    }

    /// What the follower saw at its last poll.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Spawns `task` on the database's runtime (the change follower, the last-used flusher).
    pub(crate) fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce(AnyPool, DbKind, String) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let started = self.started();
        started
            .runtime
            .spawn(task(started.pool.clone(), self.kind, self.url.clone()));
    }

    fn started(&self) -> &Started {
        self.started.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("portcullis-db")
                .enable_all()
                .build()
                .expect("the OS can start the database's threads");
            let pool = {
                let _entered = runtime.enter();
                pool_options(self.kind)
                    .connect_lazy(&self.url)
                    .expect("users_db was checked by the config")
            };
            Started { runtime, pool }
        })
    }
}

fn pool_options(kind: DbKind) -> AnyPoolOptions {
    let sqlite = kind == DbKind::Sqlite;
    AnyPoolOptions::new()
        // SQLite serialises writers anyway; a few readers beside them.
        .max_connections(if sqlite { 4 } else { 10 })
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // Readers beside the writer, and a writer waits for another rather than
                    // failing at once.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                        .await?;
                }
                Ok(())
            })
        })
}

/// Unix seconds as the database keeps them.
pub(crate) fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

pub(crate) fn unsecs(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

#[cfg(test)]
mod tests;
