//! The API keys users make: created with no more roles than their owner has now, listed,
//! deleted (and refused on every instance).

use super::{Accounts, Denied};
use crate::accounts::db::keys::{KeyRow, NotStored};
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
        check_name_and_networks(name, &req.allowed_ips)?;
        let roles = self.key_roles(owner, req.roles)?;
        let expires_at = self.key_expiry(req.expires_at.as_deref())?;
        let key = apikey::generate();
        let row = KeyRow {
            id: format!("key_{}", uuid::Uuid::new_v4().simple()),
            username: owner.username.clone(),
            name: name.to_string(),
            prefix: key.chars().take(8).collect(),
            key_sha256: apikey::sha256_hex(&key),
            roles,
            allowed_ips: req.allowed_ips,
            expires_at: Some(expires_at),
            created_at: self.now,
            last_used_at: None,
        };
        let stored = self
            .directory
            .insert_key(row.clone(), owner, self.rules.max_keys)
            .await?;
        match stored {
            Ok(()) => {}
            Err(NotStored::Full) => return Err(GatewayError::TooManyKeys.into()),
            Err(NotStored::Owner) => {
                return Err(GatewayError::InsufficientScope(
                    "needs an access token of a login here",
                )
                .into())
            }
        }
        tracing::info!(target: "audit", event = "account", action = "api_key_created", username = %owner.username, api_key = %row.id, by = self.actor.as_str(), request_id = self.request_id);
        Ok((row, key))
    }

    /// The roles a new key gets: its owner's by default, else some of those its owner has
    /// now, as the database holds them (an admin may have taken one away since a token was
    /// issued).
    fn key_roles(
        &self,
        owner: &UserRow,
        asked: Option<Vec<String>>,
    ) -> Result<Vec<String>, Denied> {
        let effective = self.rules.roles.grants(&owner.roles, &[]);
        match asked {
            None => Ok(owner.roles.clone()),
            Some(roles) if roles.iter().all(|r| effective.roles.contains(r)) => Ok(roles),
            Some(_) => {
                Err(GatewayError::InsufficientScope("a key gets only roles its maker has").into())
            }
        }
    }

    /// When a new key ends: `api_key_ttl` from now at the latest (every key ends).
    fn key_expiry(&self, asked: Option<&str>) -> Result<u64, Denied> {
        let latest = self.now + self.rules.key_ttl;
        let invalid = |why| Err(Denied::Error(GatewayError::InvalidRequest(why)));
        match asked.map(parse_rfc3339) {
            None => Ok(latest),
            Some(Ok(at)) if at > latest => invalid("expires_at: later than api_key_ttl allows"),
            Some(Ok(at)) if at > self.now => Ok(at),
            Some(Ok(_)) => invalid("expires_at is in the past"),
            Some(Err(_)) => invalid("expires_at: not an RFC 3339 date-time"),
        }
    }

    /// A page of `owner`'s keys, oldest first, after the key `after`; and the id to ask
    /// after for the next page, when there may be one.
    pub(crate) async fn keys(
        &self,
        owner: &UserRow,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<KeyRow>, Option<String>), Denied> {
        let page = self
            .directory
            .keys_page(&owner.username, after, limit)
            .await?;
        let next = (page.len() == limit as usize)
            .then(|| page.last().map(|k| k.id.clone()))
            .flatten();
        Ok((page, next))
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
        // Refused by id until every instance has followed the deletion.
        let until = Some(self.now + crate::accounts::follow::KEEP);
        let id_owned = id.to_string();
        self.store
            .revoke(Revocation::ApiKey {
                id: id_owned,
                until,
            })
            .await?;
        tracing::info!(target: "audit", event = "account", action = "api_key_deleted", username = %owner.username, api_key = id, by = self.actor.as_str(), request_id = self.request_id);
        Ok(())
    }
}

/// A key's name (1 to 64 characters, no control) and its allowed networks (up to 32).
fn check_name_and_networks(name: &str, allowed_ips: &[String]) -> Result<(), Denied> {
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME || name.chars().any(char::is_control)
    {
        return Err(GatewayError::InvalidRequest(
            "name: 1 to 64 characters, no control characters",
        )
        .into());
    }
    let readable = allowed_ips
        .iter()
        .all(|n| crate::headers::parse_net(n).is_some());
    if allowed_ips.len() > MAX_ALLOWED_IPS || !readable {
        return Err(
            GatewayError::InvalidRequest("allowed_ips: up to 32 networks or addresses").into(),
        );
    }
    Ok(())
}
