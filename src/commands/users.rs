//! `portcullis users import FILE` and `portcullis users add NAME`: writes to `users_db`,
//! checked as the admin API checks them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::accounts::db::users::UserRow;
use crate::accounts::db::DbError;
use crate::accounts::directory::Directory;
use crate::accounts::{password, policy};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::login::account::new_row;

/// The config's user store, opened (the database reached and migrated), or why not.
fn open(config_path: &Path) -> Result<(Config, Arc<Directory>), String> {
    let config = config::load(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?
        .config;
    let db = config
        .login
        .as_ref()
        .and_then(|l| l.users_db.clone())
        .ok_or("the config has no [login] users_db")?;
    let directory = Directory::open(
        db.url.expose(),
        db.db_key.expose(),
        Arc::new(config.roles.clone()),
    )?;
    Ok((config, directory))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for one command")
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {msg}");
    ExitCode::FAILURE
}

/// Copies every user of `file` (a users.toml) into the database; names taken are reported
/// and left as they are.
pub fn import(config_path: &Path, file: &Path) -> ExitCode {
    let (config, directory) = match open(config_path) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let roles = config.roles.names();
    let users = match config::users_file(file, &roles) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let now = Clock::System.now();
    let mut rows = Vec::new();
    for u in users.iter() {
        let Ok(username) = policy::username(&u.username) else {
            return fail(format!(
                "user `{}`: a users_db name is 1 to 64 of ASCII letters, digits and ._@+-",
                u.username
            ));
        };
        let mut row = new_row(
            &username,
            u.subject.clone(),
            u.password.phc_string().to_string(),
            u.roles.clone(),
            now,
        );
        row.claims = u.claims.clone();
        row.disabled = u.disabled;
        row.totp_secret = u
            .totp
            .as_ref()
            .map(|t| directory.seal(&username, &t.to_base32()));
        row.backup_codes = u.backup_codes.iter().map(hex::encode).collect();
        rows.push(row);
    }
    rows.sort_by(|a, b| a.username.cmp(&b.username));
    let (mut added, mut taken) = (0, 0);
    let result: Result<(), DbError> = runtime().block_on(async {
        for row in rows {
            let name = row.username.clone();
            match directory.insert(row).await {
                Ok(()) => added += 1,
                Err(DbError::Taken) => {
                    eprintln!("portcullis: `{name}` (or its subject) is already in users_db: left as it is");
                    taken += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        return fail(format!("users_db: {e}"));
    }
    println!("imported {added} user(s) into users_db ({taken} already there)");
    ExitCode::SUCCESS
}

/// Adds one user, the password read from stdin.
pub fn add(config_path: &Path, name: &str, roles: &[String], subject: Option<&str>) -> ExitCode {
    let username = match policy::username(name) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let password = match super::read_password() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (config, directory) = match open(config_path) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if let Some(unknown) = roles.iter().find(|r| !config.roles.is_known(r)) {
        return fail(format!("unknown role `{unknown}` (define it in [roles])"));
    }
    let policy = config
        .login
        .as_ref()
        .map(|l| l.password_policy.clone())
        .unwrap_or_default();
    let Ok(text) = String::from_utf8(password.clone()) else {
        return fail("the password is not UTF-8");
    };
    if let Err(rule) = policy.check(&username, &text) {
        return fail(format!("weak password: {rule}"));
    }
    let subject = subject.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    if subject.is_empty() || !crate::auth::jwt::can_be_header_value(&subject) {
        return fail("--subject: a non-empty string that a header can carry");
    }
    let row: UserRow = new_row(
        &username,
        subject.clone(),
        password::hash(&password),
        roles.to_vec(),
        Clock::System.now(),
    );
    match runtime().block_on(directory.insert(row)) {
        Ok(()) => {
            println!("added `{username}` (subject {subject})");
            ExitCode::SUCCESS
        }
        Err(DbError::Taken) => fail(format!(
            "`{username}` (or subject {subject}) is already in users_db"
        )),
        Err(e) => fail(format!("users_db: {e}")),
    }
}
