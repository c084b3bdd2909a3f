//! The login flows' users: found through the one user source (the database or the users
//! file), and what a login changes of them through the accounts service (a hash of an older
//! kind replaced, a backup code used up).

use std::sync::Arc;

use super::{Login, Refused};
use crate::accounts::db::DbError;
use crate::accounts::service::Denied;
use crate::accounts::source::UserSource;
use crate::accounts::users::User;
use crate::error::GatewayError;

impl From<Denied> for Refused {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Error(e) => Refused::Error(e),
            Denied::WeakPassword(rule) => Refused::WeakPassword(rule),
            // Registration names configured roles only.
            Denied::UnknownRole(_) => Refused::Error(GatewayError::Unavailable),
        }
    }
}

impl From<DbError> for Refused {
    fn from(e: DbError) -> Self {
        Denied::from(e).into()
    }
}

impl Login<'_> {
    pub(super) fn users(&self) -> UserSource<'_> {
        self.services.users(self.runtime)
    }

    pub(super) async fn find(&self, username: &str) -> Result<Option<Arc<User>>, Refused> {
        Ok(self.users().find(username).await?)
    }

    pub(super) async fn find_by_subject(
        &self,
        subject: &str,
    ) -> Result<Option<Arc<User>>, Refused> {
        Ok(self.users().find_by_subject(subject).await?)
    }

    /// Replaces `user`'s hash with a new argon2id one of `password` (just verified).
    pub(super) async fn rehash(&self, user: &User, password: String) {
        if let Ok(accounts) = self.accounts() {
            accounts.rehash(&user.username, password).await;
        }
    }

    /// A used backup code leaves the database too.
    pub(super) async fn forget_backup_code(
        &self,
        user: &User,
        digest: &[u8; 32],
    ) -> Result<(), Refused> {
        match self.accounts() {
            Ok(accounts) => Ok(accounts
                .forget_backup_code(&user.username, &user.backup_codes, digest)
                .await?),
            // The users file: the store's marker alone refuses it again.
            Err(_) => Ok(()),
        }
    }
}
