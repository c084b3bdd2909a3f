//! Where the login flows find users: `users_db` when the gateway has one (names compared
//! lower-cased), else the users file (names exact). The one place that tells the two apart.

use std::sync::Arc;

use super::db::DbError;
use super::directory::Directory;
use super::password::PasswordHash;
use super::users::{User, Users};

#[derive(Clone, Copy)]
pub(crate) enum UserSource<'a> {
    File(&'a Users),
    Db(&'a Directory),
}

impl<'a> UserSource<'a> {
    /// The writable store, when users live in one.
    pub(crate) fn directory(self) -> Option<&'a Directory> {
        match self {
            UserSource::Db(d) => Some(d),
            UserSource::File(_) => None,
        }
    }

    /// The name lockouts and lookups use: lower-cased in the database.
    pub(crate) fn canonical(self, username: &str) -> String {
        match self {
            UserSource::Db(_) => username.to_ascii_lowercase(),
            UserSource::File(_) => username.to_string(),
        }
    }

    pub(crate) async fn find(self, username: &str) -> Result<Option<Arc<User>>, DbError> {
        match self {
            UserSource::Db(d) => Ok(d.user(username).await?.map(Arc::new)),
            UserSource::File(users) => Ok(users.get(username).cloned()),
        }
    }

    pub(crate) async fn find_by_subject(self, subject: &str) -> Result<Option<Arc<User>>, DbError> {
        match self {
            UserSource::Db(d) => Ok(d.user_by_subject(subject).await?.map(Arc::new)),
            UserSource::File(users) => Ok(users.by_subject(subject).cloned()),
        }
    }

    /// What an unknown name's password is checked against: a decoy of some user's algorithm
    /// and cost, so that refusing it takes as long as a wrong password.
    pub(crate) fn decoy(self, username: &str) -> PasswordHash {
        match self {
            UserSource::Db(d) => d.decoy(username),
            UserSource::File(users) => users.dummy_hash(username).clone(),
        }
    }
}
