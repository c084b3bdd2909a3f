//! `users.toml`: read and checked like gateway.toml, every error with its place in the file.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::de::DeValue;

use super::source::{deserialize, span_of, ConfigErrors, KeyPath, SourceFile};
use crate::login::mfa::Totp;
use crate::login::password::PasswordHash;
use crate::login::users::{User, Users};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    password_hash: String,
    subject: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, serde_json::Value>,
    totp_secret: Option<String>,
    #[serde(default)]
    backup_codes_sha256: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

/// Claims Portcullis sets itself: a user's `claims` may not replace them.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sid",
    "typ",
    "roles",
    "permissions",
];

/// Loads `path`; `roles` are the roles `[roles]` declares.
pub fn load(path: &Path, roles: &HashSet<String>) -> Result<Users, ConfigErrors> {
    let src = SourceFile::read(path)?;
    let Some(table) = src.parse() else {
        return Err(src.take_errors());
    };
    let err = |p: &KeyPath, msg: String| src.error_at(span_of(&table, p), Some(p.clone()), msg);
    for (k, _) in table.iter() {
        if k.get_ref() != "users" {
            src.error_at(
                Some(k.span()),
                None,
                format!("unknown section `{}` (expected [[users]])", k.get_ref()),
            );
        }
    }
    let p = KeyPath::root().key("users");
    let items = match table.get("users").map(|v| v.get_ref()) {
        None => &[][..],
        Some(DeValue::Array(items)) => &items[..],
        Some(_) => {
            err(&p, "expected an array of tables ([[users]])".into());
            &[][..]
        }
    };
    let mut users = Vec::new();
    let mut names = HashSet::new();
    let mut subjects = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let up = p.index(i);
        let Some(raw) = deserialize::<RawUser>(&src, item, &up) else {
            continue;
        };
        if raw.username.is_empty() {
            err(&up.key("username"), "must not be empty".into());
        } else if !names.insert(raw.username.clone()) {
            err(
                &up.key("username"),
                format!("user `{}` is listed twice", raw.username),
            );
        }
        let subject = raw.subject.clone().unwrap_or_else(|| raw.username.clone());
        if subject.is_empty() {
            err(&up.key("subject"), "must not be empty".into());
        } else if !crate::auth::jwt::can_be_header_value(&subject) {
            let at = if raw.subject.is_some() {
                "subject"
            } else {
                "username"
            };
            err(
                &up.key(at),
                "must not hold control characters (it is sent as a header)".into(),
            );
        } else if !subjects.insert(subject.clone()) {
            err(
                &up.key("subject"),
                format!("subject `{subject}` belongs to two users"),
            );
        }
        let password = PasswordHash::parse(&raw.password_hash)
            .map_err(|e| err(&up.key("password_hash"), e))
            .ok();
        for (j, role) in raw.roles.iter().enumerate() {
            if !roles.contains(role) {
                err(
                    &up.key("roles").index(j),
                    format!("unknown role `{role}` (not in [roles] of the gateway config)"),
                );
            }
        }
        for name in raw.claims.keys() {
            if RESERVED_CLAIMS.contains(&name.as_str()) {
                err(
                    &up.key("claims").key(name),
                    format!("`{name}` is set by Portcullis and cannot be a user claim"),
                );
            }
        }
        let totp = raw.totp_secret.as_deref().and_then(|s| {
            Totp::from_base32(s)
                .map_err(|e| err(&up.key("totp_secret"), e))
                .ok()
        });
        let mut backup_codes = Vec::new();
        for (j, hex_digest) in raw.backup_codes_sha256.iter().enumerate() {
            match hex::decode(hex_digest)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(d) => backup_codes.push(d),
                None => err(
                    &up.key("backup_codes_sha256").index(j),
                    "must be a SHA-256 digest: 64 hex characters".into(),
                ),
            }
        }
        if let Some(password) = password {
            users.push(User {
                username: raw.username,
                password,
                subject,
                roles: raw.roles,
                claims: raw.claims.into_iter().collect(),
                totp,
                backup_codes,
                disabled: raw.disabled,
            });
        }
    }
    if src.has_errors() {
        return Err(src.take_errors());
    }
    Ok(Users::new(users))
}

/// Errors of a users file, for tests.
#[cfg(test)]
fn errors_of(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    std::fs::write(&path, text).unwrap();
    let roles: HashSet<String> = ["user".to_string()].into();
    match load(&path, &roles) {
        Ok(_) => vec![],
        Err(e) => {
            e.0.iter()
                .map(|e: &super::source::ConfigError| {
                    let s = e.to_string();
                    s[s.find("users.toml").unwrap()..].to_string()
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_place() {
        let errors = errors_of(
            r#"[[users]]
username = "alice"
password_hash = "plaintext"
roles = ["user", "ghost"]
claims = { sub = "x", email = "a@example.com" }
totp_secret = "not base32!"
backup_codes_sha256 = ["abc"]

[[users]]
username = "alice"
password_hash = "$2b$04$tooshort"
colour = "blue"
"#,
        );
        for e in [
            "users.toml:3:17: users[0].password_hash: must be an argon2 PHC string",
            "users.toml:4:18: users[0].roles[1]: unknown role `ghost`",
            "users.toml:5:18: users[0].claims.sub: `sub` is set by Portcullis",
            "users.toml:6:15: users[0].totp_secret: not a base32 secret",
            "users.toml:7:24: users[0].backup_codes_sha256[0]: must be a SHA-256 digest",
            "users.toml:12:1: users[1].colour: unknown field `colour`",
        ] {
            assert!(
                errors.iter().any(|got| got.starts_with(e)),
                "missing `{e}` in {errors:#?}"
            );
        }
    }
}
