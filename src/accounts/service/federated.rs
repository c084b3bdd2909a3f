//! Users who sign in with an OpenID Provider (docs/CONFIG.md, `[[oidc]]`): the first login
//! creates the user, linked to the provider's identity (issuer, sub); later logins replace
//! what the provider gave it before (roles, claims) and keep what an admin added.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Accounts, Denied};
use crate::accounts::db::identities::IdentityRow;
use crate::accounts::db::users::{UserPatch, UserRow};
use crate::accounts::db::DbError;
use crate::accounts::policy;
use crate::error::GatewayError;

/// What a provider says of a user at one login.
#[derive(Debug, Clone)]
pub(crate) struct ProviderUser {
    /// The provider's `[[oidc]]` name: the fallback username's prefix.
    pub provider: String,
    pub issuer: String,
    pub sub: String,
    pub preferred_username: Option<String>,
    /// Mapped through `roles_map`, with `default_roles`.
    pub roles: Vec<String>,
    /// The claims `claims` copies.
    pub claims: Map<String, Value>,
}

impl ProviderUser {
    /// `{provider}-{the first 12 hex digits of SHA-256 of sub}`.
    fn fallback_username(&self) -> String {
        let digest = hex::encode(Sha256::digest(self.sub.as_bytes()));
        format!("{}-{}", self.provider, &digest[..12]).to_ascii_lowercase()
    }
}

impl Accounts<'_> {
    /// The user of the provider's identity, made or brought up to date (a disabled user is
    /// returned as it is: the caller refuses it).
    pub(crate) async fn federated(&self, who: &ProviderUser) -> Result<UserRow, Denied> {
        self.check_roles(&who.roles)?;
        // Twice at most: a first login racing another one of the same identity finds the
        // link the other made.
        for _ in 0..2 {
            if let Some(link) = self.directory.identity(&who.issuer, &who.sub).await? {
                match self.directory.row(&link.username).await? {
                    Some(user) => return self.update_federated(user, link, who).await,
                    // Its user was deleted: a new one is made.
                    None => self.directory.unlink(&who.issuer, &who.sub).await?,
                }
            }
            match self.create_federated(who).await {
                Err(Denied::Error(GatewayError::UsernameTaken)) => continue,
                done => return done,
            }
        }
        Err(GatewayError::Unavailable.into())
    }

    async fn create_federated(&self, who: &ProviderUser) -> Result<UserRow, Denied> {
        // No password: a random one nobody knows, so that a password login fails as any
        // wrong password does, in the same time.
        let hash = self
            .passwords
            .hash(crate::auth::oidc::random_token())
            .await?;
        let preferred = who
            .preferred_username
            .as_deref()
            .and_then(|p| policy::username(p).ok())
            .filter(|p| !policy::looks_federated(p));
        let mut names = preferred.into_iter().collect::<Vec<_>>();
        names.push(who.fallback_username());
        for username in names {
            let user = UserRow {
                username: username.clone(),
                subject: uuid::Uuid::new_v4().to_string(),
                password_hash: hash.clone(),
                roles: who.roles.clone(),
                claims: who.claims.clone(),
                totp_secret: None,
                totp_pending: None,
                backup_codes: Vec::new(),
                disabled: false,
                created_at: self.now,
                updated_at: self.now,
            };
            let link = IdentityRow {
                issuer: who.issuer.clone(),
                subject: who.sub.clone(),
                username,
                roles: who.roles.clone(),
                claims: who.claims.keys().cloned().collect(),
                created_at: self.now,
                updated_at: self.now,
            };
            match self.directory.insert_linked(user.clone(), link).await {
                Ok(()) => {
                    self.audit("user_created", &user.username);
                    return Ok(user);
                }
                // The name is taken (or the identity was linked meanwhile): the next name,
                // then the caller looks for the link again.
                Err(DbError::Taken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GatewayError::UsernameTaken.into())
    }

    /// A later login: the provider's roles and claims of the last login replaced by this
    /// one's; an admin's roles and claims stay.
    async fn update_federated(
        &self,
        user: UserRow,
        link: IdentityRow,
        who: &ProviderUser,
    ) -> Result<UserRow, Denied> {
        if user.disabled {
            return Ok(user);
        }
        let mut roles: Vec<String> = user
            .roles
            .iter()
            .filter(|r| !link.roles.contains(r))
            .cloned()
            .collect();
        for r in &who.roles {
            if !roles.contains(r) {
                roles.push(r.clone());
            }
        }
        let mut claims = user.claims.clone();
        claims.retain(|k, _| !link.claims.contains(k));
        claims.extend(who.claims.clone());
        let given: Vec<String> = who.claims.keys().cloned().collect();
        if link.roles != who.roles || link.claims != given {
            let link = IdentityRow {
                roles: who.roles.clone(),
                claims: given,
                updated_at: self.now,
                ..link
            };
            self.directory.update_identity(link).await?;
        }
        if roles == user.roles && claims == user.claims {
            return Ok(user);
        }
        let patch = UserPatch {
            roles: Some(roles),
            claims: Some(claims),
            ..UserPatch::default()
        };
        let changed = self
            .directory
            .update(&user.username, patch, self.now)
            .await?;
        tracing::info!(target: "audit", event = "account", action = "user_changed", username = %user.username, changed = "roles,claims", by = self.actor.as_str(), request_id = self.request_id);
        changed.ok_or_else(|| GatewayError::Unavailable.into())
    }
}
