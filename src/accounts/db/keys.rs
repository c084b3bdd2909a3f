//! The API keys users make at run time: the digest only (the key is shown once, at
//! creation), the owner, roles, expiry and allowed networks.

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::Row;

use super::changes::{self, ChangeKind};
use super::{secs, unsecs, DbError, DbKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRow {
    pub id: String,
    /// The owner's username.
    pub username: String,
    pub name: String,
    /// The key's first 8 characters, to tell keys apart in a list.
    pub prefix: String,
    pub key_sha256: String,
    pub roles: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<u64>,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
}

/// A key as the proxy needs it: with its owner's subject and current roles (a key never
/// grants more than its owner has now), and only while the owner is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveKey {
    pub key: KeyRow,
    pub subject: String,
    pub owner_roles: Vec<String>,
}

const COLUMNS: &str = "k.id, k.username, k.name, k.prefix, k.key_sha256, k.roles, k.allowed_ips, \
                       k.expires_at, k.created_at, k.last_used_at";

fn read(row: &AnyRow) -> Result<KeyRow, DbError> {
    let json = |column: &str| -> Result<Vec<String>, DbError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| DbError::Corrupt(format!("{column}: {e}")))
    };
    Ok(KeyRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        key_sha256: row.try_get("key_sha256")?,
        roles: json("roles")?,
        allowed_ips: json("allowed_ips")?,
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(unsecs),
        created_at: unsecs(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(unsecs),
    })
}

fn read_live(row: &AnyRow) -> Result<LiveKey, DbError> {
    let owner_roles: String = row.try_get("owner_roles")?;
    Ok(LiveKey {
        key: read(row)?,
        subject: row.try_get("subject")?,
        owner_roles: serde_json::from_str(&owner_roles)
            .map_err(|e| DbError::Corrupt(format!("roles: {e}")))?,
    })
}

/// Why a key was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// The owner is gone, disabled, or another user of that name now.
    Owner,
    /// The owner holds `max` keys already.
    Full,
}

/// Stores `key` for its owner, whose subject is `subject`, in one transaction: only while
/// that owner exists, is enabled and has that subject (a key made while its owner is being
/// deleted never becomes live for a later user of the name), and holds fewer than `max`
/// unexpired keys. The owner's row is written first, so that concurrent insertions for one user are
/// counted one after the other (a row lock in PostgreSQL, the write lock in SQLite).
pub(crate) async fn insert(
    pool: &AnyPool,
    kind: DbKind,
    key: &KeyRow,
    subject: &str,
    max: usize,
) -> Result<Result<(), NotStored>, DbError> {
    let mut tx = pool.begin().await?;
    let owner = sqlx::query(
        "UPDATE portcullis_users SET updated_at = updated_at \
         WHERE username = $1 AND subject = $2 AND disabled = 0",
    )
    .bind(&key.username)
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    if owner.rows_affected() == 0 {
        return Ok(Err(NotStored::Owner));
    }
    // Expired keys hold no place: they are kept for the list, not counted.
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM portcullis_api_keys \
         WHERE username = $1 AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(&key.username)
    .bind(secs(key.created_at))
    .fetch_one(&mut *tx)
    .await?;
    if held as usize >= max {
        return Ok(Err(NotStored::Full));
    }
    sqlx::query(
        "INSERT INTO portcullis_api_keys (id, username, name, prefix, key_sha256, roles, \
         allowed_ips, expires_at, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&key.id)
    .bind(&key.username)
    .bind(&key.name)
    .bind(&key.prefix)
    .bind(&key.key_sha256)
    .bind(serde_json::to_string(&key.roles).expect("strings serialise"))
    .bind(serde_json::to_string(&key.allowed_ips).expect("strings serialise"))
    .bind(key.expires_at.map(secs))
    .bind(secs(key.created_at))
    .bind(key.last_used_at.map(secs))
    .execute(&mut *tx)
    .await?;
    changes::record(&mut tx, kind, ChangeKind::Key, &key.id, key.created_at).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// A user's keys, oldest first.
#[cfg(test)]
pub(crate) async fn of_user(pool: &AnyPool, username: &str) -> Result<Vec<KeyRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM portcullis_api_keys k WHERE k.username = $1 ORDER BY k.created_at, k.id"
    );
    let rows = sqlx::query(&sql).bind(username).fetch_all(pool).await?;
    rows.iter().map(read).collect()
}

/// Up to `limit` of a user's keys, oldest first, after the key `after` (keyset pagination;
/// an id that is not the user's starts nowhere).
pub(crate) async fn page_of_user(
    pool: &AnyPool,
    username: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<KeyRow>, DbError> {
    let rows = match after {
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM portcullis_api_keys k WHERE k.username = $1 \
                 ORDER BY k.created_at, k.id LIMIT $2"
            );
            sqlx::query(&sql)
                .bind(username)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
        Some(after) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM portcullis_api_keys k \
                 JOIN portcullis_api_keys a ON a.id = $2 AND a.username = $1 \
                 WHERE k.username = $1 \
                 AND (k.created_at > a.created_at OR (k.created_at = a.created_at AND k.id > a.id)) \
                 ORDER BY k.created_at, k.id LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(username)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(read).collect()
}

/// Deletes every key of `username` (a user disabled: its keys end for good).
pub(crate) async fn delete_of_user(
    pool: &AnyPool,
    kind: DbKind,
    username: &str,
    now: u64,
) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM portcullis_api_keys WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    changes::record(&mut tx, kind, ChangeKind::User, username, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes `username`'s key `id`; whether there was one (another user's key is none).
pub(crate) async fn delete(
    pool: &AnyPool,
    kind: DbKind,
    username: &str,
    id: &str,
    now: u64,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM portcullis_api_keys WHERE id = $1 AND username = $2")
        .bind(id)
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    changes::record(&mut tx, kind, ChangeKind::Key, id, now).await?;
    tx.commit().await?;
    Ok(true)
}

const LIVE: &str = "FROM portcullis_api_keys k JOIN portcullis_users u ON u.username = k.username \
                    WHERE u.disabled = 0";

/// Where the keys read at start go, one by one as their rows arrive.
pub(crate) trait KeySink {
    /// About `rows` keys follow (counted just before): room made once is not grown, and
    /// copied, key by key.
    fn expect(&mut self, rows: usize);
    fn key(&mut self, key: LiveKey);
}

#[cfg(test)]
impl KeySink for &mut Vec<LiveKey> {
    fn expect(&mut self, rows: usize) {
        self.reserve(rows);
    }
    fn key(&mut self, key: LiveKey) {
        self.push(key);
    }
}

/// Every key of an enabled user, into `sink`: what an instance loads at start. Streamed, not
/// fetched all at once: a million rows held together would be the gateway's peak memory.
pub(crate) async fn each_live(pool: &AnyPool, mut sink: impl KeySink) -> Result<(), DbError> {
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portcullis_api_keys")
        .fetch_one(pool)
        .await?;
    sink.expect(usize::try_from(held).unwrap_or(0));
    let sql = format!("SELECT {COLUMNS}, u.subject, u.roles AS owner_roles {LIVE}");
    let mut rows = sqlx::query(&sql).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        sink.key(read_live(&row)?);
    }
    Ok(())
}

/// Key `id`, if it exists and its owner is enabled.
pub(crate) async fn live(pool: &AnyPool, id: &str) -> Result<Option<LiveKey>, DbError> {
    let sql = format!("SELECT {COLUMNS}, u.subject, u.roles AS owner_roles {LIVE} AND k.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(read_live).transpose()
}

/// `username`'s keys, if the user exists and is enabled.
pub(crate) async fn live_of_user(pool: &AnyPool, username: &str) -> Result<Vec<LiveKey>, DbError> {
    let sql =
        format!("SELECT {COLUMNS}, u.subject, u.roles AS owner_roles {LIVE} AND k.username = $1");
    let rows = sqlx::query(&sql).bind(username).fetch_all(pool).await?;
    rows.iter().map(read_live).collect()
}

/// Records when keys were last used (batched: the proxy never writes per request).
pub(crate) async fn touch(pool: &AnyPool, used: &[(String, u64)]) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    for (id, at) in used {
        sqlx::query("UPDATE portcullis_api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(secs(*at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
