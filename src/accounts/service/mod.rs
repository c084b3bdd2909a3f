//! The accounts service: every change of a user's life in `users_db` (creation, a new
//! password, roles and claims, disabling, deletion, API keys, MFA) and what each change
//! revokes, in one place and with no HTTP in it. Self-service, the admin API, the `users`
//! commands and the login flows (a rehash, a spent backup code) are adapters over it: they
//! say who acts and what they ask; the rules are here.
//!
//! What a change revokes, on every instance (through the store: within a second, whether the
//! database answers then or not):
//! - a new password: every session and token of the user (its API keys stay);
//! - disabling: every session, token and API key of the user (the keys are deleted too);
//! - deletion: every session, token and API key;
//! - roles: the user's keys keep only the roles the user still has;
//! - MFA, claims, enabling: nothing.

mod federated;
mod keys;
mod mfa;
mod recovery;

use serde_json::{Map, Value};

use super::db::tokens::Purpose;
use super::db::users::{UserPatch, UserRow};
use super::db::DbError;
use super::directory::Directory;
use super::password::{self, PasswordPool};
use super::policy::{self, PasswordPolicy};
use crate::error::GatewayError;
use crate::policy::roles::RoleGraph;
use crate::store::{Revocation, Store, StoreError};

pub(crate) use federated::ProviderUser;
pub(crate) use keys::NewKey;
pub(crate) use recovery::{email_of, RESET_TTL, VERIFY_TTL};

/// Who asks for a change: its audit events say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// The user, with a token of their own (self-service).
    User,
    /// An operator, through the admin API.
    Admin,
    /// An operator, through `portcullis users`.
    Command,
    /// An OpenID Provider's login.
    Provider,
}

impl Actor {
    fn as_str(self) -> &'static str {
        match self {
            Actor::User => "self",
            Actor::Admin => "admin",
            Actor::Command => "command",
            Actor::Provider => "provider",
        }
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    Error(GatewayError),
    /// A password the policy refuses, and which rule (in words made here).
    WeakPassword(String),
    /// A role that `[roles]` does not define.
    UnknownRole(String),
}

impl From<GatewayError> for Denied {
    fn from(e: GatewayError) -> Self {
        Denied::Error(e)
    }
}

impl From<DbError> for Denied {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Taken => Denied::Error(GatewayError::UsernameTaken),
            DbError::Corrupt(_) => {
                tracing::error!(error = %e, "users_db holds a row that does not read");
                Denied::Error(GatewayError::Unavailable)
            }
            DbError::Unavailable(_) => {
                tracing::warn!(error = %e, "users_db unavailable");
                Denied::Error(GatewayError::Unavailable)
            }
            DbError::Unholdable(_) => Denied::Error(GatewayError::InvalidRequest(
                "a field holds a character that cannot be stored (NUL)",
            )),
        }
    }
}

impl From<StoreError> for Denied {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "shared state unavailable: an account change not finished");
        Denied::Error(GatewayError::Unavailable)
    }
}

impl From<password::Busy> for Denied {
    fn from(_: password::Busy) -> Self {
        tracing::warn!("password queue full: an account change refused");
        Denied::Error(GatewayError::Unavailable)
    }
}

/// The rules of the config that changes follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub password_policy: &'a PasswordPolicy,
    pub roles: &'a RoleGraph,
    /// How long a revocation is remembered: as long as any token it covers may live.
    pub revocation_memory: u64,
    /// The `iss` of issued tokens: the issuer authenticator apps show.
    pub issuer: &'a str,
    /// How many keys a user may hold, and how long a key lives at most (seconds).
    pub max_keys: usize,
    pub key_ttl: u64,
}

/// A new user's password: one to check and hash, or a hash made elsewhere (an import).
pub(crate) enum Secret {
    Password(String),
    Hash(String),
}

/// A user to create.
pub(crate) struct NewUser {
    /// As given: checked and lower-cased here.
    pub username: String,
    pub secret: Secret,
    /// A UUID v4 when none is given.
    pub subject: Option<String>,
    pub roles: Vec<String>,
    pub claims: Map<String, Value>,
    pub disabled: bool,
    /// A base32 TOTP secret (imported), sealed here.
    pub totp: Option<String>,
    /// Hex SHA-256 digests of backup codes (imported).
    pub backup_codes: Vec<String>,
}

impl NewUser {
    pub(crate) fn with_password(username: &str, password: String, roles: Vec<String>) -> Self {
        NewUser {
            username: username.to_string(),
            secret: Secret::Password(password),
            subject: None,
            roles,
            claims: Map::new(),
            disabled: false,
            totp: None,
            backup_codes: Vec::new(),
        }
    }
}

/// What an operator changes of a user (`PATCH /admin/users/{name}`).
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub roles: Option<Vec<String>>,
    pub claims: Option<Map<String, Value>>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

/// One actor's view of the accounts, for one request or command.
pub(crate) struct Accounts<'a> {
    pub directory: &'a Directory,
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordPool,
    pub rules: Rules<'a>,
    pub now: u64,
    pub actor: Actor,
    /// Carried by every audit event the change causes.
    pub request_id: &'a str,
}

impl Accounts<'_> {
    /// A new user; its row as stored.
    pub(crate) async fn create(&self, new: NewUser) -> Result<UserRow, Denied> {
        let username = policy::username(&new.username).map_err(GatewayError::InvalidRequest)?;
        self.check_roles(&new.roles)?;
        check_claims(&new.claims)?;
        let subject = new
            .subject
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if subject.is_empty() || !crate::auth::jwt::can_be_header_value(&subject) {
            return Err(
                GatewayError::InvalidRequest("subject: a non-empty header-safe string").into(),
            );
        }
        let password_hash = match new.secret {
            Secret::Password(p) => self.new_hash(&username, p).await?,
            Secret::Hash(h) => h,
        };
        let row = UserRow {
            totp_secret: new.totp.map(|t| self.directory.seal(&username, &t)),
            totp_pending: None,
            backup_codes: new.backup_codes,
            disabled: new.disabled,
            created_at: self.now,
            updated_at: self.now,
            username,
            subject,
            password_hash,
            roles: new.roles,
            claims: new.claims,
        };
        self.directory.insert(row.clone()).await?;
        let action = match self.actor {
            Actor::User => "register",
            Actor::Admin | Actor::Command | Actor::Provider => "user_created",
        };
        self.audit(action, &row.username);
        Ok(row)
    }

    /// The user's row, by (lower-cased) name.
    pub(crate) async fn find(&self, username: &str) -> Result<Option<UserRow>, Denied> {
        Ok(self.directory.row(username).await?)
    }

    /// A page of users by name, after `after`.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<UserRow>, Denied> {
        Ok(self.directory.list(prefix, after, limit).await?)
    }

    /// A new password for `user` (the caller has checked who asks). Every session and token
    /// of the user ends; its keys stay.
    pub(crate) async fn set_password(&self, user: &UserRow, new: String) -> Result<(), Denied> {
        let hash = self.new_hash(&user.username, new).await?;
        self.apply_password(user, hash).await?;
        self.audit("password_changed", &user.username);
        Ok(())
    }

    /// `hash` (of a password the policy let through) becomes `user`'s; every session and
    /// token of the user ends.
    async fn apply_password(&self, user: &UserRow, hash: String) -> Result<(), Denied> {
        let patch = UserPatch {
            password_hash: Some(hash),
            ..UserPatch::default()
        };
        self.directory
            .update(&user.username, patch, self.now)
            .await?;
        self.end_everything(&user.subject).await
    }

    /// An operator's change; the user as it is now.
    pub(crate) async fn change(&self, user: &UserRow, mut c: Change) -> Result<UserRow, Denied> {
        if let Some(roles) = &c.roles {
            self.check_roles(roles)?;
        }
        let new_email = c.claims.as_ref().map(|n| n.get("email")) != Some(user.claims.get("email"))
            && c.claims.is_some();
        if let Some(claims) = &mut c.claims {
            recovery::unverify_changed_email(&user.claims, claims);
        }
        if let Some(claims) = &c.claims {
            check_claims(claims)?;
        }
        let password_hash = match c.password {
            None => None,
            Some(p) => Some(self.new_hash(&user.username, p).await?),
        };
        let disables = c.disabled == Some(true);
        let new_password = password_hash.is_some();
        let what: Vec<&str> = [
            ("roles", c.roles.is_some()),
            ("claims", c.claims.is_some()),
            ("disabled", c.disabled == Some(true)),
            ("enabled", c.disabled == Some(false)),
            ("password", password_hash.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        let patch = UserPatch {
            password_hash,
            roles: c.roles,
            claims: c.claims,
            disabled: c.disabled,
            ..UserPatch::default()
        };
        let changed = self
            .directory
            .update(&user.username, patch, self.now)
            .await?
            .ok_or(GatewayError::NotFound)?;
        if disables {
            self.end_owner(&user.subject).await?;
            self.directory
                .delete_keys_of(&user.username, self.now)
                .await?;
        } else if new_password {
            self.end_everything(&user.subject).await?;
        }
        if new_email {
            // A token mailed to the old address must not reset, nor verify, the new one.
            for purpose in [Purpose::Reset, Purpose::Verify] {
                self.directory.void_tokens(&user.username, purpose).await?;
            }
        }
        let changed_fields = what.join(",");
        tracing::info!(target: "audit", event = "account", action = "user_changed", username = %user.username, changed = %changed_fields, by = self.actor.as_str(), request_id = self.request_id);
        Ok(changed)
    }

    /// Deletes `user`: revoked first (sessions, tokens, every key), deleted last, so that a
    /// failure on the way leaves a user to delete again rather than live credentials.
    pub(crate) async fn delete(&self, user: &UserRow) -> Result<(), Denied> {
        self.end_owner(&user.subject).await?;
        if !self.directory.delete(&user.username, self.now).await? {
            return Err(GatewayError::NotFound.into());
        }
        self.audit("user_deleted", &user.username);
        Ok(())
    }

    /// A hash of another kind than new ones replaced by an argon2id one of `password`, just
    /// verified. A failure leaves the old hash, which still works.
    pub(crate) async fn rehash(&self, username: &str, password: String) {
        let Ok(hash) = self.passwords.hash(password).await else {
            return;
        };
        let patch = UserPatch {
            password_hash: Some(hash),
            ..UserPatch::default()
        };
        match self.directory.update(username, patch, self.now).await {
            Ok(_) => {
                tracing::info!(target: "audit", event = "password_rehashed", username, request_id = self.request_id)
            }
            Err(e) => tracing::warn!(error = %e, "could not rehash a password"),
        }
    }

    /// Ends every session and token of `subject` on every instance: each session by sid (a
    /// token of this very second included), then the subject's tokens by `iat`. A user who
    /// changes their own account goes on with a new session made this second, so their
    /// revoke-all stops at the second before.
    async fn end_everything(&self, subject: &str) -> Result<(), Denied> {
        let until = self.now + self.rules.revocation_memory;
        let at = match self.actor {
            Actor::User => self.now.saturating_sub(1),
            Actor::Admin | Actor::Command | Actor::Provider => self.now,
        };
        // Without the list (the store away), the revoke-all still ends every token issued
        // before `at`: only those of this very second would slip through.
        match self.store.sessions(subject, self.now).await {
            Ok(sessions) => {
                for s in sessions {
                    self.store
                        .revoke(Revocation::Session { sid: s.sid, until })
                        .await?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a user's sessions could not be listed: its tokens are revoked by time")
            }
        }
        let subject = subject.to_string();
        self.store
            .revoke(Revocation::Subject { subject, at, until })
            .await?;
        Ok(())
    }

    /// Ends every credential of `subject` made until now, the keys its user made included:
    /// remembered for as long as a token, or a key made before now, may live.
    async fn end_owner(&self, subject: &str) -> Result<(), Denied> {
        let until = self.now + self.rules.revocation_memory.max(self.rules.key_ttl);
        let subject = subject.to_string();
        let at = self.now;
        self.store
            .revoke(Revocation::Owner { subject, at, until })
            .await?;
        Ok(())
    }

    /// `password` checked against the policy for `username`, then hashed off the event loop.
    async fn new_hash(&self, username: &str, password: String) -> Result<String, Denied> {
        self.rules
            .password_policy
            .check(username, &password)
            .map_err(Denied::WeakPassword)?;
        Ok(self.passwords.hash(password).await?)
    }

    fn check_roles(&self, roles: &[String]) -> Result<(), Denied> {
        match roles.iter().find(|r| !self.rules.roles.is_known(r)) {
            Some(unknown) => Err(Denied::UnknownRole(unknown.clone())),
            None => Ok(()),
        }
    }

    fn audit(&self, action: &'static str, username: &str) {
        tracing::info!(target: "audit", event = "account", action, username, by = self.actor.as_str(), request_id = self.request_id);
    }
}

/// Claims Portcullis sets itself (`iss`, `sub`, `exp`, `roles`...) are not a user's.
fn check_claims(claims: &Map<String, Value>) -> Result<(), Denied> {
    if claims
        .keys()
        .any(|k| crate::claims::RESERVED.contains(&k.as_str()))
    {
        return Err(GatewayError::InvalidRequest(
            "claims: iss, sub, exp, roles and the like are set by Portcullis",
        )
        .into());
    }
    Ok(())
}

/// The sealed TOTP secret, pending and enabled, and the backup codes removed.
fn mfa_removed() -> UserPatch {
    UserPatch {
        totp_secret: Some(None),
        totp_pending: Some(None),
        backup_codes: Some(Vec::new()),
        ..UserPatch::default()
    }
}
