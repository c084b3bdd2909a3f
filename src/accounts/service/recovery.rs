//! A forgotten password reset, and an email verified, through single-use tokens that the
//! database keeps as digests (docs/CONFIG.md, `[mail]`). A reset revokes what a new password
//! does, voids the user's other reset tokens and clears a lockout.

use serde_json::{Map, Value};

use super::{Accounts, Denied};
use crate::accounts::db::tokens::Purpose;
use crate::accounts::db::users::{UserPatch, UserRow};
use crate::error::GatewayError;

/// How long a reset token lives.
pub(crate) const RESET_TTL: u64 = 30 * 60;
/// How long a verification token lives.
pub(crate) const VERIFY_TTL: u64 = 24 * 3600;

impl Accounts<'_> {
    /// A new reset token for `user` (mailed, or handed to an operator), and its expiry; any
    /// older one is void.
    pub(crate) async fn reset_token(&self, user: &UserRow) -> Result<(String, u64), Denied> {
        let expires_at = self.now + RESET_TTL;
        let token = self
            .directory
            .issue_token(Purpose::Reset, user, self.now, expires_at)
            .await
            .map_err(|e| match e {
                // The user was disabled or deleted meanwhile.
                crate::accounts::db::DbError::Taken => Denied::Error(GatewayError::NotFound),
                e => e.into(),
            })?;
        self.audit("password_reset_requested", &user.username);
        Ok((token, expires_at))
    }

    /// `POST /auth/password/reset`: the token's user, with `new` as its password. A password
    /// the policy refuses does not spend the token.
    pub(crate) async fn reset_password(&self, token: &str, new: String) -> Result<UserRow, Denied> {
        let bad = GatewayError::InvalidGrant("unknown, expired or used reset token");
        let directory = self.directory;
        let username = directory
            .token_user(token, Purpose::Reset, self.now, false)
            .await?
            .ok_or(bad)?;
        let hash = self.new_hash(&username, new).await?;
        let spent = directory
            .token_user(token, Purpose::Reset, self.now, true)
            .await?;
        if spent.as_deref() != Some(username.as_str()) {
            return Err(bad.into());
        }
        let user = directory
            .row(&username)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(bad)?;
        self.apply_password(&user, hash).await?;
        directory.void_tokens(&username, Purpose::Reset).await?;
        self.store.clear_failures(&username).await?;
        self.audit("password_reset", &username);
        Ok(user)
    }

    /// `POST /auth/email/verify`: the token's user, its email now verified.
    pub(crate) async fn verify_email(&self, token: &str) -> Result<UserRow, Denied> {
        let bad = GatewayError::InvalidGrant("unknown, expired or used verification token");
        let username = self
            .directory
            .token_user(token, Purpose::Verify, self.now, true)
            .await?
            .ok_or(bad)?;
        let user = self.directory.row(&username).await?.ok_or(bad)?;
        let mut claims = user.claims.clone();
        claims.insert("email_verified".into(), Value::Bool(true));
        let patch = UserPatch {
            claims: Some(claims),
            ..UserPatch::default()
        };
        let user = self
            .directory
            .update(&username, patch, self.now)
            .await?
            .ok_or(bad)?;
        self.audit("email_verified", &username);
        Ok(user)
    }
}

/// An operator's new claims: a changed email is unverified, unless the same change says it
/// is verified where it was not (copying the old claims with a new email does not).
pub(super) fn unverify_changed_email(old: &Map<String, Value>, new: &mut Map<String, Value>) {
    let changed = new
        .get("email")
        .is_some_and(|e| Some(e) != old.get("email"));
    let verified = |m: &Map<String, Value>| m.get("email_verified") == Some(&Value::Bool(true));
    // The operator's own word: verified now, where it was not.
    let said = verified(new) && !verified(old);
    if changed && !said {
        new.insert("email_verified".into(), Value::Bool(false));
    }
}

/// Whether `user` has an email, and it is verified.
pub(crate) fn email_of(claims: &Map<String, Value>) -> Option<(&str, bool)> {
    let email = claims.get("email")?.as_str()?;
    let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    Some((email, verified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_operators_new_email_is_unverified_unless_said_otherwise() {
        let old = json!({"email": "a@x", "email_verified": true})
            .as_object()
            .unwrap()
            .clone();
        let run = |new: Value| {
            let mut new = new.as_object().unwrap().clone();
            unverify_changed_email(&old, &mut new);
            new.get("email_verified").cloned()
        };
        assert_eq!(
            run(json!({"email": "b@x", "email_verified": true})),
            Some(json!(false))
        );
        assert_eq!(run(json!({"email": "b@x"})), Some(json!(false)));
        assert_eq!(
            run(json!({"email": "a@x", "email_verified": true})),
            Some(json!(true))
        );
        assert_eq!(
            run(json!({"email": "b@x", "email_verified": false})),
            Some(json!(false))
        );
        // Setting it verified with the new email, in the same change: the admin's word.
        let mut new = json!({"email": "c@x"}).as_object().unwrap().clone();
        let unverified = json!({"email": "a@x"}).as_object().unwrap().clone();
        new.insert("email_verified".into(), json!(true));
        unverify_changed_email(&unverified, &mut new);
        assert_eq!(new["email_verified"], json!(true));
    }
}
