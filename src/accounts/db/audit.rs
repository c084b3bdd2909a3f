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

/// Rows per INSERT statement: 10 values each, under SQLite's 999 parameters.
const ROWS_PER_STATEMENT: usize = 90;

pub(crate) async fn insert(pool: &AnyPool, rows: &[AuditRow]) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 10;
                let cols: Vec<String> = (1..=10).map(|c| format!("${}", n + c)).collect();
                format!("({})", cols.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO portcullis_audit (at, event, result, reason, subject, username, \
             client_ip, user_agent, request_id, route) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(secs(r.at))
                .bind(r.event.clone())
                .bind(r.result.clone())
                .bind(r.reason.clone())
                .bind(r.subject.clone())
                .bind(r.username.clone())
                .bind(r.client_ip.clone())
                .bind(r.user_agent.clone())
                .bind(r.request_id.clone())
                .bind(r.route.clone());
        }
        query.execute(&mut *tx).await?;
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

/// The events a user's activity shows: logins and their failures, refreshes reused, new
/// passwords and resets, keys made and deleted, MFA changes.
const SECURITY_EVENTS: &str = "'login', 'refresh_reuse', 'password_changed', \
    'password_reset', 'password_reset_requested', 'api_key_created', 'api_key_deleted', \
    'mfa_enabled', 'mfa_disabled', 'mfa_reset', 'email_verified', 'lockout'";

/// The last `limit` security events of one user: by its subject, or by its name for those
/// that knew only the name (a failed login), never another user's of a name used before.
pub(crate) async fn of_user(
    pool: &AnyPool,
    subject: &str,
    username: &str,
    limit: u32,
) -> Result<Vec<AuditRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM portcullis_audit WHERE event IN ({SECURITY_EVENTS}) \
         AND (subject = $1 OR (subject IS NULL AND username = $2)) ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(subject)
        .bind(username)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| read(r).map(|(_, row)| row)).collect()
}

/// Deletes the rows older than `before` (Unix seconds), a few thousand at a time so that no
/// statement holds the table long; how many.
pub(crate) async fn prune(pool: &AnyPool, before: u64) -> Result<u64, DbError> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM portcullis_audit WHERE id IN \
             (SELECT id FROM portcullis_audit WHERE at < $1 ORDER BY id LIMIT 5000)",
        )
        .bind(secs(before))
        .execute(pool)
        .await?;
        total += done.rows_affected();
        if done.rows_affected() < 5000 {
            return Ok(total);
        }
    }
}
