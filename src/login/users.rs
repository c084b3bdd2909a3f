//! Where the login flows find users: `users_db` when the gateway has one (names compared
//! lower-cased), else the users file; and what a login changes in the database (a hash of an
//! older kind replaced, a backup code used up).

use std::sync::Arc;

use super::{Login, Refused};
use crate::accounts::db::users::UserPatch;
use crate::accounts::db::DbError;
use crate::accounts::password::PasswordHash;
use crate::accounts::users::User;
use crate::error::GatewayError;

impl From<DbError> for Refused {
    fn from(e: DbError) -> Self {
        match &e {
            DbError::Corrupt(_) => {
                tracing::error!(error = %e, "users_db holds a row that does not read")
            }
            _ => tracing::warn!(error = %e, "users_db unavailable"),
        }
        Refused::Error(GatewayError::Unavailable)
    }
}

impl Login<'_> {
    /// The name lockouts and lookups use: lower-cased with `users_db` (SPEC section 7).
    pub(super) fn canonical(&self, username: &str) -> String {
        if self.runtime.accounts.is_some() {
            username.to_ascii_lowercase()
        } else {
            username.to_string()
        }
    }

    pub(super) async fn find(&self, username: &str) -> Result<Option<Arc<User>>, Refused> {
        match &self.runtime.accounts {
            Some(db) => Ok(db.user(username).await?.map(Arc::new)),
            None => Ok(self.settings.users.get(username).cloned()),
        }
    }

    pub(super) async fn find_by_subject(
        &self,
        subject: &str,
    ) -> Result<Option<Arc<User>>, Refused> {
        match &self.runtime.accounts {
            Some(db) => Ok(db.user_by_subject(subject).await?.map(Arc::new)),
            None => Ok(self.settings.users.by_subject(subject).cloned()),
        }
    }

    /// What an unknown name's password is checked against: a decoy of some user's algorithm
    /// and cost, in the database or the file.
    pub(super) fn decoy(&self, username: &str) -> PasswordHash {
        match &self.runtime.accounts {
            Some(db) => db.decoy(username),
            None => self.settings.users.dummy_hash(username).clone(),
        }
    }

    /// Replaces `user`'s hash with a new argon2id one of `password` (just verified). A
    /// failure leaves the old hash, which still works.
    pub(super) async fn rehash(&self, user: &User, password: String) {
        let Some(db) = &self.runtime.accounts else {
            return;
        };
        let Ok(hash) = self.passwords.hash(password).await else {
            return;
        };
        let patch = UserPatch {
            password_hash: Some(hash),
            ..UserPatch::default()
        };
        match db.update(&user.username, patch, self.now).await {
            Ok(_) => {
                tracing::info!(target: "audit", event = "password_rehashed", username = %user.username, request_id = self.request_id)
            }
            Err(e) => tracing::warn!(error = %e, "could not rehash a password"),
        }
    }

    /// A used backup code leaves the database too (the store's marker already refuses it a
    /// second time; this keeps it refused after a restart of a memory store).
    pub(super) async fn forget_backup_code(
        &self,
        user: &User,
        digest: &[u8; 32],
    ) -> Result<(), Refused> {
        let Some(db) = &self.runtime.accounts else {
            return Ok(());
        };
        let left: Vec<String> = user
            .backup_codes
            .iter()
            .filter(|d| *d != digest)
            .map(hex::encode)
            .collect();
        let patch = UserPatch {
            backup_codes: Some(left),
            ..UserPatch::default()
        };
        db.update(&user.username, patch, self.now).await?;
        Ok(())
    }
}
