//! The users of `users.toml`, compiled.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::mfa::Totp;
use super::password::PasswordHash;

/// The hash of the users' most common algorithm and cost (ties: the class listed first).
fn most_common_cost(users: &[User]) -> Option<&PasswordHash> {
    // class -> (users, first index, a hash of that class)
    let mut classes: HashMap<String, (usize, usize, &PasswordHash)> = HashMap::new();
    for (i, u) in users.iter().enumerate() {
        classes
            .entry(u.password.cost_class())
            .or_insert((0, i, &u.password))
            .0 += 1;
    }
    let best = classes
        .into_values()
        .max_by_key(|&(count, first, _)| (count, std::cmp::Reverse(first)))?;
    Some(best.2)
}

#[derive(Debug)]
pub struct User {
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
    pub fn has_mfa(&self) -> bool {
        self.totp.is_some() || !self.backup_codes.is_empty()
    }
}

/// Every user by username (exact, case-sensitive) and by subject (both unique).
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
    by_subject: HashMap<String, Arc<User>>,
    /// What an unknown username is checked against: a hash with the algorithm and cost most
    /// of the users have (`None`: no users, the default cost).
    decoy: Option<PasswordHash>,
}

impl Users {
    pub fn new(users: Vec<User>) -> Self {
        let decoy = most_common_cost(&users).map(PasswordHash::decoy);
        let users: Vec<Arc<User>> = users.into_iter().map(Arc::new).collect();
        Users {
            by_name: users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            by_subject: users.into_iter().map(|u| (u.subject.clone(), u)).collect(),
            decoy,
        }
    }

    /// The hash an unknown username's password is checked against, so that refusing it takes
    /// as long as refusing a wrong password.
    pub fn dummy_hash(&self) -> &PasswordHash {
        self.decoy
            .as_ref()
            .unwrap_or_else(|| super::password::default_dummy())
    }

    pub fn get(&self, username: &str) -> Option<&Arc<User>> {
        self.by_name.get(username)
    }

    /// The user whose tokens name `subject` (refresh and userinfo re-read the user).
    pub fn by_subject(&self, subject: &str) -> Option<&Arc<User>> {
        self.by_subject.get(subject)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
