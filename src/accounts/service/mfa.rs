//! A user's second factor: set up (pending), enabled with a first code (and new backup
//! codes), removed, and backup codes used up.

use super::{mfa_removed, Accounts, Actor, Denied};
use crate::accounts::db::users::{UserPatch, UserRow};
use crate::accounts::mfa::{self, Totp};
use crate::error::GatewayError;

/// How many backup codes enabling MFA hands out.
const BACKUP_CODES: usize = 10;

impl Accounts<'_> {
    /// A new secret, pending until a code from it enables it: the secret and its
    /// `otpauth://` URI.
    pub(crate) async fn mfa_setup(&self, user: &UserRow) -> Result<(String, String), Denied> {
        refuse_if_mfa_on(user)?;
        // 160 bits, RFC 4226's recommendation; base32 for the authenticator app.
        let mut raw = [0u8; 20];
        getrandom::fill(&mut raw).expect("the OS random source is available");
        let secret = totp_rs::Secret::Raw(raw.to_vec()).to_encoded().to_string();
        let patch = UserPatch {
            totp_pending: Some(Some(self.directory.seal(&user.username, &secret))),
            ..UserPatch::default()
        };
        self.directory
            .update(&user.username, patch, self.now)
            .await?;
        let uri = otpauth_uri(self.rules.issuer, &user.username, &secret);
        self.audit("mfa_setup", &user.username);
        Ok((secret, uri))
    }

    /// The pending secret becomes the user's once `code` matches it; new backup codes,
    /// returned once.
    pub(crate) async fn mfa_enable(
        &self,
        user: &UserRow,
        code: &str,
    ) -> Result<Vec<String>, Denied> {
        refuse_if_mfa_on(user)?;
        let no_setup = GatewayError::InvalidRequest("no MFA set up: POST mfa/setup first");
        let sealed = user.totp_pending.as_deref().ok_or(no_setup)?;
        let secret = self
            .directory
            .unseal(&user.username, sealed)
            .ok_or(no_setup)?;
        let totp = Totp::from_base32(&secret).map_err(|_| no_setup)?;
        let step = totp
            .matching_step(code.trim(), self.now)
            .ok_or(GatewayError::InvalidCode)?;
        let marker = format!("totp:{}:{step}", user.username);
        if !self.store.spend(&marker, (step + 2) * mfa::STEP).await? {
            return Err(GatewayError::InvalidCode.into());
        }
        let codes = mfa::new_backup_codes(BACKUP_CODES);
        let patch = UserPatch {
            totp_secret: Some(Some(sealed.to_string())),
            totp_pending: Some(None),
            backup_codes: Some(
                codes
                    .iter()
                    .map(|c| hex::encode(mfa::backup_code_digest(c)))
                    .collect(),
            ),
            ..UserPatch::default()
        };
        self.directory
            .update(&user.username, patch, self.now)
            .await?;
        self.audit("mfa_enabled", &user.username);
        Ok(codes)
    }

    /// The user's second factors removed: by the user (who proved both factors first), or
    /// reset by an operator.
    pub(crate) async fn remove_mfa(&self, username: &str) -> Result<(), Denied> {
        self.directory
            .update(username, mfa_removed(), self.now)
            .await?;
        let action = match self.actor {
            Actor::User => "mfa_disabled",
            Actor::Admin | Actor::Command | Actor::Provider => "mfa_reset",
        };
        self.audit(action, username);
        Ok(())
    }

    /// A used backup code leaves the database too (the store's marker already refuses it a
    /// second time; this keeps it refused after a restart of a memory store).
    pub(crate) async fn forget_backup_code(
        &self,
        username: &str,
        codes: &[[u8; 32]],
        used: &[u8; 32],
    ) -> Result<(), Denied> {
        let left: Vec<String> = codes
            .iter()
            .filter(|d| *d != used)
            .map(hex::encode)
            .collect();
        let patch = UserPatch {
            backup_codes: Some(left),
            ..UserPatch::default()
        };
        self.directory.update(username, patch, self.now).await?;
        Ok(())
    }
}

/// MFA already on is changed only by removing it first (password and code): a stolen
/// access token alone must not replace the user's second factor.
fn refuse_if_mfa_on(user: &UserRow) -> Result<(), Denied> {
    if user.totp_secret.is_some() {
        return Err(GatewayError::InvalidRequest(
            "MFA is already on: disable it first (password and code)",
        )
        .into());
    }
    Ok(())
}

/// The `otpauth://` URI authenticator apps read (Google's Key Uri Format).
fn otpauth_uri(issuer: &str, username: &str, secret: &str) -> String {
    let enc = |s: &str| {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(username),
        enc(issuer)
    )
}
