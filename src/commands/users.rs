//! `portcullis users import FILE` and `portcullis users add NAME`: users written to
//! `users_db` through the accounts service, checked as the admin API checks them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::accounts::db::users::UserRow;
use crate::accounts::directory::Directory;
use crate::accounts::password::PasswordPool;
use crate::accounts::policy;
use crate::accounts::service::{Accounts, Actor, Denied, NewUser, Secret};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::error::GatewayError;
use crate::store::MemoryStore;

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
    let directory = Directory::open(db.url.expose(), db.db_key.expose())
        .map_err(|e| format!("users_db: {e}"))?;
    Ok((config, directory))
}

/// Creates `users` (stopping at the first refusal other than a name taken); those added, and
/// how many names were taken.
fn create_all(
    config: &Config,
    directory: &Directory,
    users: Vec<NewUser>,
) -> Result<(Vec<UserRow>, usize), String> {
    // Creating a user revokes nothing: the store is never written.
    let store = MemoryStore::new(Clock::System);
    let passwords = PasswordPool::new(1, 1);
    let accounts = Accounts {
        directory,
        store: &store,
        passwords: &passwords,
        rules: config.account_rules(),
        now: Clock::System.now(),
        actor: Actor::Command,
        request_id: "",
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for one command");
    runtime.block_on(async {
        let (mut added, mut taken) = (Vec::new(), 0);
        for user in users {
            let name = user.username.clone();
            match accounts.create(user).await {
                Ok(row) => added.push(row),
                Err(Denied::Error(GatewayError::UsernameTaken)) => {
                    eprintln!("portcullis: `{name}` (or its subject) is already in users_db: left as it is");
                    taken += 1;
                }
                Err(denied) => return Err(refused(denied)),
            }
        }
        Ok((added, taken))
    })
}

/// A refusal in the command's words.
fn refused(denied: Denied) -> String {
    match denied {
        Denied::WeakPassword(rule) => format!("weak password: {rule}"),
        Denied::UnknownRole(role) => format!("unknown role `{role}` (define it in [roles])"),
        Denied::Error(GatewayError::InvalidRequest(why)) => why.to_string(),
        Denied::Error(GatewayError::Unavailable) => "users_db: unavailable".to_string(),
        Denied::Error(e) => e.description().to_string(),
    }
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
    let mut new = Vec::new();
    for u in users.iter() {
        if policy::username(&u.username).is_err() {
            return fail(format!(
                "user `{}`: a users_db name is 1 to 64 of ASCII letters, digits and ._@+-",
                u.username
            ));
        }
        new.push(NewUser {
            username: u.username.clone(),
            secret: Secret::Hash(u.password.phc_string().to_string()),
            subject: Some(u.subject.clone()),
            roles: u.roles.clone(),
            claims: u.claims.clone(),
            disabled: u.disabled,
            totp: u.totp.as_ref().map(|t| t.to_base32()),
            backup_codes: u.backup_codes.iter().map(hex::encode).collect(),
        });
    }
    new.sort_by(|a, b| a.username.cmp(&b.username));
    match create_all(&config, &directory, new) {
        Ok((added, taken)) => {
            let added = added.len();
            println!("imported {added} user(s) into users_db ({taken} already there)");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Adds one user, the password read from stdin.
pub fn add(config_path: &Path, name: &str, roles: &[String], subject: Option<&str>) -> ExitCode {
    if let Err(e) = policy::username(name) {
        return fail(e);
    }
    let password = match super::read_password() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (config, directory) = match open(config_path) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let Ok(password) = String::from_utf8(password) else {
        return fail("the password is not UTF-8");
    };
    let user = NewUser {
        subject: subject.map(str::to_string),
        ..NewUser::with_password(name, password, roles.to_vec())
    };
    let subject = user.subject.clone();
    match create_all(&config, &directory, vec![user]) {
        Ok((added, _)) if !added.is_empty() => {
            let row = &added[0];
            println!("added `{}` (subject {})", row.username, row.subject);
            ExitCode::SUCCESS
        }
        Ok(_) => fail(format!(
            "`{}` (or subject {}) is already in users_db",
            name.to_ascii_lowercase(),
            subject.as_deref().unwrap_or("-")
        )),
        Err(e) => fail(e),
    }
}
