//! The API keys users make: created with no more roles than their owner has now, listed,
//! deleted (and refused on every instance).

use super::{Accounts, Denied};
use crate::accounts::db::keys::KeyRow;
use crate::accounts::db::users::UserRow;
use crate::auth::apikey::{self, parse_rfc3339};
use crate::error::GatewayError;
use crate::store::Revocation;

/// Limits on what a client names its keys.
const MAX_KEY_NAME: usize = 64;
const MAX_ALLOWED_IPS: usize = 32;

/// What a new key is asked to be.
pub(crate) struct NewKey {
    pub name: String,
    pub roles: Option<Vec<String>>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub allowed_ips: Vec<String>,
}

impl Accounts<'_> {
    /// A new key of `owner`: the key (shown this once) and what was stored of it.
    pub(crate) async fn create_key(
        &self,
        owner: &UserRow,
        req: NewKey,
    ) -> Result<(KeyRow, String), Denied> {
        let name = req.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_KEY_NAME
            || name.chars().any(char::is_control)
        {
            return Err(GatewayError::InvalidRequest(
                "name: 1 to 64 characters, no control characters",
            )
            .into());
        }
        // The owner's roles as the database holds them now, not as a token was issued: an
        // admin may have taken one away since.
        let effective = self.rules.roles.grants(&owner.roles, &[]);
        let roles = match req.roles {
            None => owner.roles.clone(),
            Some(roles) if roles.iter().all(|r| effective.roles.contains(r)) => roles,
            Some(_) => {
                return Err(
                    GatewayError::InsufficientScope("a key gets only roles its maker has").into(),
                )
            }
        };
        let expires_at = match req.expires_at.as_deref().map(parse_rfc3339) {
            None => None,
            Some(Ok(at)) if at > self.now => Some(at),
            Some(Ok(_)) => {
                return Err(GatewayError::InvalidRequest("expires_at is in the past").into())
            }
            Some(Err(_)) => {
                return Err(
                    GatewayError::InvalidRequest("expires_at: not an RFC 3339 date-time").into(),
                )
            }
        };
        if req.allowed_ips.len() > MAX_ALLOWED_IPS
            || req
                .allowed_ips
                .iter()
                .any(|n| crate::headers::parse_net(n).is_none())
        {
            return Err(GatewayError::InvalidRequest(
                "allowed_ips: up to 32 networks or addresses",
            )
            .into());
        }
        let key = apikey::generate();
        let row = KeyRow {
            id: format!("key_{}", uuid::Uuid::new_v4().simple()),
            username: owner.username.clone(),
            name: name.to_string(),
            prefix: key.chars().take(8).collect(),
            key_sha256: apikey::sha256_hex(&key),
            roles,
            allowed_ips: req.allowed_ips,
            expires_at,
            created_at: self.now,
            last_used_at: None,
        };
        self.directory.insert_key(row.clone(), owner).await?;
        tracing::info!(target: "audit", event = "account", action = "api_key_created", username = %owner.username, api_key = %row.id, by = self.actor.as_str(), request_id = self.request_id);
        Ok((row, key))
    }

    pub(crate) async fn keys(&self, owner: &UserRow) -> Result<Vec<KeyRow>, Denied> {
        Ok(self.directory.keys_of(&owner.username).await?)
    }

    /// Deletes `owner`'s key `id` (404 when it is not theirs); refused on every instance (the
    /// store's revocation, and the database's change log).
    pub(crate) async fn delete_key(&self, owner: &UserRow, id: &str) -> Result<(), Denied> {
        if !self
            .directory
            .delete_key(&owner.username, id, self.now)
            .await?
        {
            return Err(GatewayError::NotFound.into());
        }
        self.store
            .revoke(Revocation::ApiKey { id: id.to_string() })
            .await?;
        tracing::info!(target: "audit", event = "account", action = "api_key_deleted", username = %owner.username, api_key = id, by = self.actor.as_str(), request_id = self.request_id);
        Ok(())
    }
}
