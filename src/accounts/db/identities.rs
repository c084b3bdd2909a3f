//! The links of users to an OpenID Provider's identities (issuer, sub), and what the provider
//! gave each at its last login.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::users::{self, UserRow};
use super::{secs, unsecs, DbError, DbKind};

/// One provider identity and the user it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityRow {
    pub issuer: String,
    /// The provider's `sub`.
    pub subject: String,
    pub username: String,
    /// The roles the provider gave at the last login.
    pub roles: Vec<String>,
    /// The names of the claims it set then.
    pub claims: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

const COLUMNS: &str = "issuer, subject, username, roles, claims, created_at, updated_at";

fn read(row: &AnyRow) -> Result<IdentityRow, DbError> {
    let list = |column: &str| -> Result<Vec<String>, DbError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| DbError::Corrupt(format!("{column}: {e}")))
    };
    Ok(IdentityRow {
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        username: row.try_get("username")?,
        roles: list("roles")?,
        claims: list("claims")?,
        created_at: unsecs(row.try_get("created_at")?),
        updated_at: unsecs(row.try_get("updated_at")?),
    })
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialise")
}

pub(crate) async fn get(
    pool: &AnyPool,
    issuer: &str,
    subject: &str,
) -> Result<Option<IdentityRow>, DbError> {
    let sql =
        format!("SELECT {COLUMNS} FROM portcullis_identities WHERE issuer = $1 AND subject = $2");
    let row = sqlx::query(&sql)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(read).transpose()
}

/// A new user and its link, together: [`DbError::Taken`] when the username, the user's
/// subject or the identity exists (a login racing this one made it).
pub(crate) async fn insert_with_user(
    pool: &AnyPool,
    kind: DbKind,
    user: &UserRow,
    identity: &IdentityRow,
) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    users::insert_in(&mut tx, kind, user).await?;
    let sql = format!(
        "INSERT INTO portcullis_identities ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    sqlx::query(&sql)
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .bind(&identity.username)
        .bind(json_list(&identity.roles))
        .bind(json_list(&identity.claims))
        .bind(secs(identity.created_at))
        .bind(secs(identity.updated_at))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What the provider gave at this login.
pub(crate) async fn update(pool: &AnyPool, identity: &IdentityRow) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE portcullis_identities SET roles = $1, claims = $2, updated_at = $3 \
         WHERE issuer = $4 AND subject = $5",
    )
    .bind(json_list(&identity.roles))
    .bind(json_list(&identity.claims))
    .bind(secs(identity.updated_at))
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .execute(pool)
    .await?;
    Ok(())
}

/// A link whose user is gone.
pub(crate) async fn delete(pool: &AnyPool, issuer: &str, subject: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM portcullis_identities WHERE issuer = $1 AND subject = $2")
        .bind(issuer)
        .bind(subject)
        .execute(pool)
        .await?;
    Ok(())
}
