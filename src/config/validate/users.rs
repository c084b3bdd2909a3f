//! `users.toml` (docs/CONFIG.md): read and checked like gateway.toml, by a validator of its
//! own file, every error with its place in that file.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::de::DeValue;

use super::Validator;
use crate::accounts::mfa::Totp;
use crate::accounts::password::PasswordHash;
use crate::accounts::users::{User, Users};
use crate::auth::jwt::can_be_header_value;
use crate::config::source::{KeyPath, SourceFile};

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

impl Validator<'_> {
    /// The users of `path`, named at `at` in this file; `roles` are the roles `[roles]`
    /// declares. The users file's errors are reported as its own.
    pub(super) fn users_file(&self, path: &Path, at: &KeyPath, roles: &HashSet<String>) -> Users {
        let src = match SourceFile::read(path) {
            Ok(src) => src,
            Err(errors) => {
                // The file itself could not be read: say so at the key naming it.
                for e in &errors.0 {
                    self.err(at, format!("{}: {}", path.display(), e.message));
                }
                return Users::default();
            }
        };
        let Some(table) = src.parse() else {
            self.src.absorb(src.take_errors());
            return Users::default();
        };
        let users = Validator::new(&src, &table).users(roles);
        if src.has_errors() {
            self.src.absorb(src.take_errors());
            return Users::default();
        }
        users
    }

    /// This file as a users file.
    pub(super) fn users(&self, roles: &HashSet<String>) -> Users {
        for (k, _) in self.table.iter() {
            if k.get_ref() != "users" {
                self.src.error_at(
                    Some(k.span()),
                    None,
                    format!("unknown section `{}` (expected [[users]])", k.get_ref()),
                );
            }
        }
        let p = KeyPath::root().key("users");
        if let Some(v) = self.table.get("users") {
            if !matches!(v.get_ref(), DeValue::Array(_)) {
                self.err(&p, "expected an array of tables ([[users]])");
                return Users::default();
            }
        }
        let mut users = Vec::new();
        let mut names = HashSet::new();
        let mut subjects = HashSet::new();
        for (i, raw) in self.array::<RawUser>(self.table.get("users"), &p) {
            let up = p.index(i);
            if raw.username.is_empty() {
                self.err(&up.key("username"), "must not be empty");
            } else if !names.insert(raw.username.clone()) {
                self.err(
                    &up.key("username"),
                    format!("user `{}` is listed twice", raw.username),
                );
            }
            if let Some(user) = self.user(raw, &up, roles, &mut subjects) {
                users.push(user);
            }
        }
        Users::new(users)
    }

    fn user(
        &self,
        raw: RawUser,
        up: &KeyPath,
        roles: &HashSet<String>,
        subjects: &mut HashSet<String>,
    ) -> Option<User> {
        let subject = raw.subject.clone().unwrap_or_else(|| raw.username.clone());
        if subject.is_empty() {
            self.err(&up.key("subject"), "must not be empty");
        } else if !can_be_header_value(&subject) {
            let at = if raw.subject.is_some() {
                "subject"
            } else {
                "username"
            };
            self.err(
                &up.key(at),
                "must not hold control characters (it is sent as a header)",
            );
        } else if !subjects.insert(subject.clone()) {
            self.err(
                &up.key("subject"),
                format!("subject `{subject}` belongs to two users"),
            );
        }
        let password = PasswordHash::parse(&raw.password_hash)
            .map_err(|e| self.err(&up.key("password_hash"), e))
            .ok();
        for (j, role) in raw.roles.iter().enumerate() {
            if !roles.contains(role) {
                self.err(
                    &up.key("roles").index(j),
                    format!("unknown role `{role}` (not in [roles] of the gateway config)"),
                );
            }
        }
        for name in raw.claims.keys() {
            if crate::claims::RESERVED.contains(&name.as_str()) {
                self.err(
                    &up.key("claims").key(name),
                    format!("`{name}` is set by Portcullis and cannot be a user claim"),
                );
            }
        }
        let totp = raw.totp_secret.as_deref().and_then(|s| {
            Totp::from_base32(s)
                .map_err(|e| self.err(&up.key("totp_secret"), e))
                .ok()
        });
        let backup_codes =
            self.backup_codes(&raw.backup_codes_sha256, &up.key("backup_codes_sha256"));
        Some(User {
            username: raw.username,
            password: password?,
            subject,
            roles: raw.roles,
            claims: raw.claims.into_iter().collect(),
            totp,
            backup_codes,
            disabled: raw.disabled,
        })
    }

    fn backup_codes(&self, digests: &[String], at: &KeyPath) -> Vec<[u8; 32]> {
        let mut codes = Vec::new();
        for (j, hex_digest) in digests.iter().enumerate() {
            match hex::decode(hex_digest)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(d) => codes.push(d),
                None => self.err(&at.index(j), "must be a SHA-256 digest: 64 hex characters"),
            }
        }
        codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::Validator;

    /// The errors of a users file, each from its file name on.
    fn errors_of(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, text).unwrap();
        let src = SourceFile::read(&path).unwrap();
        let table = src.parse().unwrap();
        let roles: HashSet<String> = ["user".to_string()].into();
        Validator::new(&src, &table).users(&roles);
        src.take_errors()
            .0
            .iter()
            .map(|e| {
                let s = e.to_string();
                s[s.find("users.toml").unwrap()..].to_string()
            })
            .collect()
    }

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
