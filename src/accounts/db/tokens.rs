//! Reset and verification tokens: kept only as their SHA-256 digest, one live token per user
//! and purpose (a newer one voids the older), spent by deleting it.

use sqlx::AnyPool;

use super::{secs, DbError};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Reset,
    Verify,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Verify => "verify",
        }
    }
}

/// The user's new token of `purpose` (its digest), replacing any older one: only while
/// `subject` is the enabled user of that name ([`DbError::Taken`] otherwise).
pub(crate) async fn replace(
    pool: &AnyPool,
    digest: &str,
    purpose: Purpose,
    username: &str,
    subject: &str,
    now: u64,
    expires_at: u64,
) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM portcullis_tokens WHERE username = $1 AND purpose = $2")
        .bind(username)
        .bind(purpose.name())
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query(
        "INSERT INTO portcullis_tokens (digest, purpose, username, created_at, expires_at) \
         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM portcullis_users \
         WHERE username = $3 AND subject = $6 AND disabled = 0)",
    )
    .bind(digest)
    .bind(purpose.name())
    .bind(username)
    .bind(secs(now))
    .bind(secs(expires_at))
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::Taken);
    }
    tx.commit().await?;
    Ok(())
}

/// The user a live token of `purpose` is for, without spending it.
pub(crate) async fn peek(
    pool: &AnyPool,
    digest: &str,
    purpose: Purpose,
    now: u64,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT username FROM portcullis_tokens WHERE digest = $1 AND purpose = $2 AND expires_at > $3",
    )
    .bind(digest)
    .bind(purpose.name())
    .bind(secs(now))
    .fetch_optional(pool)
    .await?)
}

/// Spends a live token: its user, for exactly one caller.
pub(crate) async fn take(
    pool: &AnyPool,
    digest: &str,
    purpose: Purpose,
    now: u64,
) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "DELETE FROM portcullis_tokens WHERE digest = $1 AND purpose = $2 AND expires_at > $3 \
         RETURNING username",
    )
    .bind(digest)
    .bind(purpose.name())
    .bind(secs(now))
    .fetch_optional(pool)
    .await?)
}

/// Voids every token of `purpose` the user holds.
pub(crate) async fn void(pool: &AnyPool, username: &str, purpose: Purpose) -> Result<(), DbError> {
    sqlx::query("DELETE FROM portcullis_tokens WHERE username = $1 AND purpose = $2")
        .bind(username)
        .bind(purpose.name())
        .execute(pool)
        .await?;
    Ok(())
}
