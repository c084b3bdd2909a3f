//! The audit table: rows written in batches, read newest first by keyset (the row id), pruned
//! past the retention.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{secs, unsecs, DbError};
use crate::audit::AuditRow;

/// What `GET /admin/audit` filters on.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuditFilter {
    pub subject: Option<String>,
    pub username: Option<String>,
    pub event: Option<String>,
    /// Rows older than this id (the previous page's `next`).
    pub before: Option<i64>,
}

const COLUMNS: &str =
    "id, at, event, result, reason, subject, username, client_ip, user_agent, request_id, route";

pub(crate) async fn insert(pool: &AnyPool, rows: &[AuditRow]) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO portcullis_audit (at, event, result, reason, subject, username, \
             client_ip, user_agent, request_id, route) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(secs(r.at))
        .bind(&r.event)
        .bind(r.result.clone())
        .bind(r.reason.clone())
        .bind(r.subject.clone())
        .bind(r.username.clone())
        .bind(r.client_ip.clone())
        .bind(r.user_agent.clone())
        .bind(r.request_id.clone())
        .bind(r.route.clone())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn read(row: &AnyRow) -> Result<(i64, AuditRow), DbError> {
    Ok((
        row.try_get("id")?,
        AuditRow {
            at: unsecs(row.try_get("at")?),
            event: row.try_get("event")?,
            result: row.try_get("result")?,
            reason: row.try_get("reason")?,
            subject: row.try_get("subject")?,
            username: row.try_get("username")?,
            client_ip: row.try_get("client_ip")?,
            user_agent: row.try_get("user_agent")?,
            request_id: row.try_get("request_id")?,
            route: row.try_get("route")?,
        },
    ))
}

/// Up to `limit` rows matching `filter`, newest first, with their ids.
pub(crate) async fn page(
    pool: &AnyPool,
    filter: &AuditFilter,
    limit: u32,
) -> Result<Vec<(i64, AuditRow)>, DbError> {
    // Column names come from this list only; every value is a bound parameter.
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for (column, value) in [
        ("subject", &filter.subject),
        ("username", &filter.username),
        ("event", &filter.event),
    ] {
        if let Some(v) = value {
            values.push(v.clone());
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    if filter.before.is_some() {
        conditions.push(format!("id < ${}", values.len() + 1));
    }
    let filter_sql = match conditions.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conditions.join(" AND ")),
    };
    let n = values.len() + usize::from(filter.before.is_some()) + 1;
    let sql =
        format!("SELECT {COLUMNS} FROM portcullis_audit {filter_sql} ORDER BY id DESC LIMIT ${n}");
    let mut query = sqlx::query(&sql);
    for v in values {
        query = query.bind(v);
    }
    if let Some(before) = filter.before {
        query = query.bind(before);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
    rows.iter().map(read).collect()
}

/// The last `limit` rows of one user: by its subject, or its name (a failed login knows
/// only the name).
pub(crate) async fn of_user(
    pool: &AnyPool,
    subject: &str,
    username: &str,
    limit: u32,
) -> Result<Vec<AuditRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM portcullis_audit WHERE subject = $1 OR username = $2 \
         ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(subject)
        .bind(username)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| read(r).map(|(_, row)| row)).collect()
}

/// Deletes the rows older than `before` (Unix seconds); how many.
pub(crate) async fn prune(pool: &AnyPool, before: u64) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM portcullis_audit WHERE at < $1")
        .bind(secs(before))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
