//! The users of `users.toml`, compiled.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::decoy::Decoys;
use super::mfa::Totp;
use super::password::PasswordHash;

#[derive(Debug)]
pub(crate) struct User {
    pub username: String,
    pub password: PasswordHash,
    pub subject: String,
    pub roles: Vec<String>,
    /// Extra claims of the user's tokens.
    pub claims: Map<String, Value>,
    pub totp: Option<Totp>,
    /// SHA-256 digests of the single-use backup codes.
    pub backup_codes: Vec<[u8; 32]>,
    pub disabled: bool,
}

impl User {
    pub(crate) fn has_mfa(&self) -> bool {
        self.totp.is_some() || !self.backup_codes.is_empty()
    }
}

/// Every user by username (exact, case-sensitive) and by subject (both unique).
#[derive(Debug, Default)]
pub(crate) struct Users {
    by_name: HashMap<String, Arc<User>>,
    by_subject: HashMap<String, Arc<User>>,
    /// What unknown usernames are checked against.
    decoys: Decoys,
}

impl Users {
    pub(crate) fn new(users: Vec<User>) -> Self {
        let decoys = Decoys::new(users.iter().map(|u| &u.password));
        let users: Vec<Arc<User>> = users.into_iter().map(Arc::new).collect();
        Users {
            by_name: users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            by_subject: users.into_iter().map(|u| (u.subject.clone(), u)).collect(),
            decoys,
        }
    }

    /// The hash an unknown username's password is checked against, so that refusing it takes
    /// as long as refusing a user's wrong password.
    pub(crate) fn dummy_hash(&self, username: &str) -> &PasswordHash {
        self.decoys.for_username(username)
    }

    pub(crate) fn get(&self, username: &str) -> Option<&Arc<User>> {
        self.by_name.get(username)
    }

    /// The user whose tokens name `subject` (refresh and userinfo re-read the user).
    pub(crate) fn by_subject(&self, subject: &str) -> Option<&Arc<User>> {
        self.by_subject.get(subject)
    }

    /// Every user, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_name.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }
}
