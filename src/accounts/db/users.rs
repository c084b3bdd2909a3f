//! The users table: rows as stored (hashes as strings, the TOTP secret sealed), read and
//! written by username (lower-cased) or subject. Every write records a change in the same
//! transaction, which the other instances follow.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::Row;

use super::changes::{self, ChangeKind};
use super::{secs, unsecs, DbError, DbKind};

/// One user as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserRow {
    pub username: String,
    pub subject: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub claims: Map<String, Value>,
    /// Sealed (`accounts::sealed`).
    pub totp_secret: Option<String>,
    /// Sealed; set up, not enabled yet.
    pub totp_pending: Option<String>,
    /// SHA-256 digests of the unused backup codes, hex.
    pub backup_codes: Vec<String>,
    pub disabled: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A change to some of a user's fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserPatch {
    pub password_hash: Option<String>,
    pub roles: Option<Vec<String>>,
    pub claims: Option<Map<String, Value>>,
    pub disabled: Option<bool>,
    pub totp_secret: Option<Option<String>>,
    pub totp_pending: Option<Option<String>>,
    pub backup_codes: Option<Vec<String>>,
}

const COLUMNS: &str = "username, subject, password_hash, roles, claims, totp_secret, \
                       totp_pending, backup_codes, disabled, created_at, updated_at";

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain JSON values serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, DbError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| DbError::Corrupt(format!("{column}: {e}")))
}

fn read(row: &AnyRow) -> Result<UserRow, DbError> {
    Ok(UserRow {
        username: row.try_get("username")?,
        subject: row.try_get("subject")?,
        password_hash: row.try_get("password_hash")?,
        roles: from_json(row, "roles")?,
        claims: from_json(row, "claims")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_pending: row.try_get("totp_pending")?,
        backup_codes: from_json(row, "backup_codes")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: unsecs(row.try_get("created_at")?),
        updated_at: unsecs(row.try_get("updated_at")?),
    })
}

pub(crate) async fn get(pool: &AnyPool, username: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM portcullis_users WHERE username = $1");
    let row = sqlx::query(&sql)
        .bind(username)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(read).transpose()
}

pub(crate) async fn by_subject(pool: &AnyPool, subject: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM portcullis_users WHERE subject = $1");
    let row = sqlx::query(&sql).bind(subject).fetch_optional(pool).await?;
    row.as_ref().map(read).transpose()
}

/// The users whose email claim is `email` (lower-cased), a few at most.
pub(crate) async fn by_email(
    pool: &AnyPool,
    kind: DbKind,
    email: &str,
) -> Result<Vec<UserRow>, DbError> {
    // The expression of the index of migration 3, per database.
    let email_of = match kind {
        DbKind::Sqlite => "lower(json_extract(claims, '$.email'))",
        DbKind::Postgres => "lower((claims::jsonb)->>'email')",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM portcullis_users WHERE {email_of} = $1 ORDER BY username LIMIT 5"
    );
    let rows = sqlx::query(&sql)
        .bind(email.to_ascii_lowercase())
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).collect()
}

/// A new user: [`DbError::Taken`] when the username (or the subject) exists. Of two racing
/// inserts of one username, the primary key lets exactly one in.
pub(crate) async fn insert(pool: &AnyPool, kind: DbKind, user: &UserRow) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    insert_in(&mut tx, kind, user).await?;
    tx.commit().await?;
    Ok(())
}

/// [`insert`], in the caller's transaction.
pub(super) async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: DbKind,
    user: &UserRow,
) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO portcullis_users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    sqlx::query(&sql)
        .bind(&user.username)
        .bind(&user.subject)
        .bind(&user.password_hash)
        .bind(json_text(&user.roles))
        .bind(json_text(&user.claims))
        .bind(user.totp_secret.clone())
        .bind(user.totp_pending.clone())
        .bind(json_text(&user.backup_codes))
        .bind(i64::from(user.disabled))
        .bind(secs(user.created_at))
        .bind(secs(user.updated_at))
        .execute(&mut **tx)
        .await?;
    changes::record(tx, kind, ChangeKind::User, &user.username, user.updated_at).await?;
    Ok(())
}

/// Applies `patch` at `now`; the user as it is now, or `None` when there is no such user.
pub(crate) async fn update(
    pool: &AnyPool,
    kind: DbKind,
    username: &str,
    patch: &UserPatch,
    now: u64,
) -> Result<Option<UserRow>, DbError> {
    // Column names come from this list only; every value is a bound parameter.
    let mut sets: Vec<(&str, Option<String>)> = Vec::new();
    if let Some(h) = &patch.password_hash {
        sets.push(("password_hash", Some(h.clone())));
    }
    if let Some(r) = &patch.roles {
        sets.push(("roles", Some(json_text(r))));
    }
    if let Some(c) = &patch.claims {
        sets.push(("claims", Some(json_text(c))));
    }
    if let Some(t) = &patch.totp_secret {
        sets.push(("totp_secret", t.clone()));
    }
    if let Some(t) = &patch.totp_pending {
        sets.push(("totp_pending", t.clone()));
    }
    if let Some(b) = &patch.backup_codes {
        sets.push(("backup_codes", Some(json_text(b))));
    }
    let mut assignments: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
        .collect();
    let n = sets.len();
    assignments.push(format!("updated_at = ${}", n + 1));
    if patch.disabled.is_some() {
        assignments.push(format!("disabled = ${}", n + 2));
    }
    let name_at = n + 2 + usize::from(patch.disabled.is_some());
    let sql = format!(
        "UPDATE portcullis_users SET {} WHERE username = ${name_at}",
        assignments.join(", ")
    );
    let mut tx = pool.begin().await?;
    let mut query = sqlx::query(&sql);
    for (_, value) in sets {
        query = query.bind(value);
    }
    query = query.bind(secs(now));
    if let Some(d) = patch.disabled {
        query = query.bind(i64::from(d));
    }
    let done = query.bind(username).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    changes::record(&mut tx, kind, ChangeKind::User, username, now).await?;
    let sql = format!("SELECT {COLUMNS} FROM portcullis_users WHERE username = $1");
    let row = sqlx::query(&sql).bind(username).fetch_one(&mut *tx).await?;
    let user = read(&row)?;
    tx.commit().await?;
    Ok(Some(user))
}

/// Deletes a user, its API keys and its link to a provider; whether it existed.
pub(crate) async fn delete(
    pool: &AnyPool,
    kind: DbKind,
    username: &str,
    now: u64,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    for table in [
        "portcullis_api_keys",
        "portcullis_identities",
        "portcullis_tokens",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE username = $1"))
            .bind(username)
            .execute(&mut *tx)
            .await?;
    }
    let done = sqlx::query("DELETE FROM portcullis_users WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    changes::record(&mut tx, kind, ChangeKind::User, username, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Up to `limit` users after `after` (keyset pagination), whose names start with `prefix`.
pub(crate) async fn list(
    pool: &AnyPool,
    prefix: &str,
    after: &str,
    limit: u32,
) -> Result<Vec<UserRow>, DbError> {
    // LIKE's wildcards in the prefix are literal.
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let sql = format!(
        "SELECT {COLUMNS} FROM portcullis_users WHERE username > $1 AND username LIKE $2 ESCAPE '\\' \
         ORDER BY username LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).collect()
}

/// Every user's password hash (what the decoys of unknown names are drawn from).
pub(crate) async fn all_hashes(pool: &AnyPool) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM portcullis_users")
            .fetch_all(pool)
            .await?,
    )
}
