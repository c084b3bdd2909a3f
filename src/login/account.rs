//! Self-service over `users_db` (SPEC section 7), apart from HTTP: registration, a new
//! password, the caller's sessions and API keys, setting up MFA. Every change is an audit
//! event naming who and what, never a secret.

use std::sync::Arc;

use super::{Login, Refused, TokenPair};
use crate::accounts::db::keys::KeyRow;
use crate::accounts::db::users::{UserPatch, UserRow};
use crate::accounts::db::DbError;
use crate::accounts::directory::Directory;
use crate::accounts::mfa::{self, Totp};
use crate::accounts::policy;
use crate::accounts::users::User;
use crate::auth::apikey::{self, parse_rfc3339};
use crate::auth::jwt::VerifiedToken;
use crate::error::GatewayError;
use crate::store::{Presented, Revocation, SessionInfo, Store, StoreError};

/// How many backup codes MFA's enabling hands out.
const BACKUP_CODES: usize = 10;
/// Limits on what a client names its keys.
const MAX_KEY_NAME: usize = 64;
const MAX_ALLOWED_IPS: usize = 32;

/// The caller of a self-service endpoint: a login's access token and its user.
pub(crate) struct Me {
    pub token: VerifiedToken,
    pub user: UserRow,
}

impl Me {
    fn sid(&self) -> Option<&str> {
        self.token.claims.get("sid").and_then(|v| v.as_str())
    }
}

/// A session as the caller's list shows it.
pub(crate) struct SessionView {
    pub info: SessionInfo,
    pub current: bool,
}

impl Login<'_> {
    /// The user store, or 404: the self-service endpoints exist with `users_db` only.
    pub(crate) fn directory(&self) -> Result<&Arc<Directory>, Refused> {
        self.runtime
            .accounts
            .as_ref()
            .ok_or(Refused::Error(GatewayError::NotFound))
    }

    /// The caller behind `token` (verified and not revoked by the endpoint): one of this
    /// gateway's own access tokens, of an enabled user in the database.
    pub(crate) async fn me(&self, token: VerifiedToken) -> Result<Me, Refused> {
        let directory = self.directory()?;
        let own = token.claims.get("iss").and_then(|v| v.as_str()) == Some(&self.signer.issuer);
        if !own {
            return Err(
                GatewayError::InsufficientScope("needs an access token of a login here").into(),
            );
        }
        match directory.row_by_subject(&token.subject).await? {
            Some(user) if !user.disabled => Ok(Me { token, user }),
            _ => {
                Err(GatewayError::InsufficientScope("needs an access token of a login here").into())
            }
        }
    }

    /// `POST /auth/register`: the new user's subject and (lower-cased) name.
    pub(crate) async fn register(
        &self,
        username: &str,
        password: String,
    ) -> Result<(String, String), Refused> {
        let directory = self.directory()?;
        let roles = self
            .settings
            .registration
            .clone()
            .ok_or(GatewayError::NotFound)?;
        let username = policy::username(username).map_err(GatewayError::InvalidRequest)?;
        self.settings
            .password_policy
            .check(&username, &password)
            .map_err(Refused::WeakPassword)?;
        let hash = self.passwords.hash(password).await?;
        let row = new_row(
            &username,
            uuid::Uuid::new_v4().to_string(),
            hash,
            roles,
            self.now,
        );
        let subject = row.subject.clone();
        directory.insert(row).await.map_err(taken)?;
        self.audit("register", &username);
        Ok((subject, username))
    }

    /// `POST /auth/password`: a new token pair; every other session and token of the user
    /// ends. A wrong current password counts towards the lockout.
    pub(crate) async fn change_password(
        &self,
        me: &Me,
        current: String,
        new: String,
    ) -> Result<TokenPair, Refused> {
        let directory = self.directory()?;
        let user = self.check_password(me, current).await?;
        self.settings
            .password_policy
            .check(&user.username, &new)
            .map_err(Refused::WeakPassword)?;
        let hash = self.passwords.hash(new).await?;
        let patch = UserPatch {
            password_hash: Some(hash),
            ..UserPatch::default()
        };
        directory.update(&user.username, patch, self.now).await?;
        self.end_everything(&user.subject, self.now.saturating_sub(1))
            .await?;
        self.audit("password_changed", &user.username);
        let (_, pair) = self.new_session(&user).await?;
        Ok(pair)
    }

    async fn end_everything(&self, subject: &str, at: u64) -> Result<(), Refused> {
        Ok(end_all(self.store, self.session_memory(), subject, self.now, at).await?)
    }

    /// `GET /auth/sessions`.
    pub(crate) async fn sessions(&self, me: &Me) -> Result<Vec<SessionView>, Refused> {
        let all = self.store.sessions(&me.user.subject, self.now).await?;
        Ok(all
            .into_iter()
            .filter(|s| {
                let p = Presented {
                    sid: Some(&s.sid),
                    subject: &s.subject,
                    iat: Some(s.last_used_at),
                    ..Presented::default()
                };
                !self.store.is_revoked(&p, self.now)
            })
            .map(|info| SessionView {
                current: Some(info.sid.as_str()) == me.sid(),
                info,
            })
            .collect())
    }

    /// `DELETE /auth/sessions/{sid}`: 404 for a sid that is not the caller's.
    pub(crate) async fn end_session(&self, me: &Me, sid: &str) -> Result<(), Refused> {
        let mine = self
            .sessions(me)
            .await?
            .into_iter()
            .any(|s| s.info.sid == sid);
        if !mine {
            return Err(GatewayError::NotFound.into());
        }
        self.store
            .revoke(Revocation::Session {
                sid: sid.to_string(),
                until: self.session_memory(),
            })
            .await?;
        self.audit("session_ended", &me.user.username);
        Ok(())
    }

    /// `POST /auth/api-keys`: the key (shown this once) and what was stored of it.
    pub(crate) async fn create_key(
        &self,
        me: &Me,
        req: NewKey,
    ) -> Result<(KeyRow, String), Refused> {
        let directory = self.directory()?;
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
        // The user's roles as the database holds them now, not as the token was issued: an
        // admin may have taken one away since.
        let effective = self.runtime.config.roles.grants(&me.user.roles, &[]);
        let roles = match req.roles {
            None => me.user.roles.clone(),
            Some(roles) if roles.iter().all(|r| effective.roles.contains(r)) => roles,
            Some(_) => {
                return Err(
                    GatewayError::InsufficientScope("a key gets only roles its maker has").into(),
                )
            }
        };
        let expires_at = match req.expires_at.as_deref() {
            None => None,
            Some(t) => match parse_rfc3339(t) {
                Ok(at) if at > self.now => Some(at),
                Ok(_) => {
                    return Err(GatewayError::InvalidRequest("expires_at is in the past").into())
                }
                Err(_) => {
                    return Err(GatewayError::InvalidRequest(
                        "expires_at: not an RFC 3339 date-time",
                    )
                    .into())
                }
            },
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
            username: me.user.username.clone(),
            name: name.to_string(),
            prefix: key.chars().take(8).collect(),
            key_sha256: apikey::sha256_hex(&key),
            roles,
            allowed_ips: req.allowed_ips,
            expires_at,
            created_at: self.now,
            last_used_at: None,
        };
        directory.insert_key(row.clone(), &me.user).await?;
        tracing::info!(target: "audit", event = "account", action = "api_key_created", username = %me.user.username, api_key = %row.id, request_id = self.request_id);
        Ok((row, key))
    }

    pub(crate) async fn keys(&self, me: &Me) -> Result<Vec<KeyRow>, Refused> {
        Ok(self.directory()?.keys_of(&me.user.username).await?)
    }

    /// `DELETE /auth/api-keys/{id}`: refused on every instance (the store's revocation, and
    /// the database's change log).
    pub(crate) async fn delete_key(&self, me: &Me, id: &str) -> Result<(), Refused> {
        if !self
            .directory()?
            .delete_key(&me.user.username, id, self.now)
            .await?
        {
            return Err(GatewayError::NotFound.into());
        }
        self.store
            .revoke(Revocation::ApiKey { id: id.to_string() })
            .await?;
        tracing::info!(target: "audit", event = "account", action = "api_key_deleted", username = %me.user.username, api_key = id, request_id = self.request_id);
        Ok(())
    }

    /// `POST /auth/mfa/setup`: a new secret, pending until a code from it enables it.
    pub(crate) async fn mfa_setup(&self, me: &Me) -> Result<(String, String), Refused> {
        let directory = self.directory()?;
        refuse_if_mfa_on(&me.user)?;
        // 160 bits, RFC 4226's recommendation; base32 for the authenticator app.
        let mut raw = [0u8; 20];
        getrandom::fill(&mut raw).expect("the OS random source is available");
        let secret = totp_rs::Secret::Raw(raw.to_vec()).to_encoded().to_string();
        let patch = UserPatch {
            totp_pending: Some(Some(directory.seal(&me.user.username, &secret))),
            ..UserPatch::default()
        };
        directory.update(&me.user.username, patch, self.now).await?;
        let uri = otpauth_uri(&self.signer.issuer, &me.user.username, &secret);
        self.audit("mfa_setup", &me.user.username);
        Ok((secret, uri))
    }

    /// `POST /auth/mfa/enable`: the pending secret becomes the user's, with new backup
    /// codes (returned once).
    pub(crate) async fn mfa_enable(&self, me: &Me, code: &str) -> Result<Vec<String>, Refused> {
        let directory = self.directory()?;
        refuse_if_mfa_on(&me.user)?;
        let no_setup = GatewayError::InvalidRequest("no MFA set up: POST mfa/setup first");
        let sealed = me.user.totp_pending.as_deref().ok_or(no_setup)?;
        let secret = directory
            .unseal(&me.user.username, sealed)
            .ok_or(no_setup)?;
        let totp = Totp::from_base32(&secret).map_err(|_| no_setup)?;
        let step = totp
            .matching_step(code.trim(), self.now)
            .ok_or(GatewayError::InvalidCode)?;
        let marker = format!("totp:{}:{step}", me.user.username);
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
        directory.update(&me.user.username, patch, self.now).await?;
        self.audit("mfa_enabled", &me.user.username);
        Ok(codes)
    }

    /// `POST /auth/mfa/disable`: with the password and a current code (or a backup code).
    pub(crate) async fn mfa_disable(
        &self,
        me: &Me,
        password: String,
        code: &str,
    ) -> Result<(), Refused> {
        let directory = self.directory()?;
        let user = self.check_password(me, password).await?;
        if !user.has_mfa() {
            return Err(GatewayError::InvalidRequest("MFA is not on").into());
        }
        if !self.accept_code(&user, code).await? {
            self.failed(&user.username, "invalid_code").await?;
            return Err(GatewayError::InvalidCode.into());
        }
        directory
            .update(&user.username, mfa_removed(), self.now)
            .await?;
        self.audit("mfa_disabled", &user.username);
        Ok(())
    }

    /// The caller's password, checked as a login checks it (counted, locked out).
    async fn check_password(&self, me: &Me, password: String) -> Result<Arc<User>, Refused> {
        let username = me.user.username.clone();
        self.begin_attempt(&username).await?;
        let user = match self.find(&username).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                return Err(self
                    .give_back(&username, GatewayError::NotFound.into())
                    .await)
            }
            Err(e) => return Err(self.give_back(&username, e).await),
        };
        match self.passwords.verify(user.password.clone(), password).await {
            Ok(true) => {
                self.store.clear_failures(&username).await?;
                Ok(user)
            }
            Ok(false) => {
                self.failed(&username, "invalid_credentials").await?;
                Err(GatewayError::InvalidCredentials.into())
            }
            Err(busy) => Err(self.give_back(&username, busy.into()).await),
        }
    }

    fn audit(&self, action: &'static str, username: &str) {
        tracing::info!(target: "audit", event = "account", action, username, request_id = self.request_id);
    }
}

/// Ends every session and token of `subject` issued at or before `at`, on every instance:
/// each session by sid (a token of this very second included), then the subject's tokens by
/// `iat`; remembered `until`.
pub(crate) async fn end_all(
    store: &dyn Store,
    until: u64,
    subject: &str,
    now: u64,
    at: u64,
) -> Result<(), StoreError> {
    for s in store.sessions(subject, now).await? {
        store
            .revoke(Revocation::Session { sid: s.sid, until })
            .await?;
    }
    store
        .revoke(Revocation::Subject {
            subject: subject.to_string(),
            at,
            until,
        })
        .await
}

/// What `POST /auth/api-keys` asks for.
pub(crate) struct NewKey {
    pub name: String,
    pub roles: Option<Vec<String>>,
    pub expires_at: Option<String>,
    pub allowed_ips: Vec<String>,
}

/// A new user's row.
pub(crate) fn new_row(
    username: &str,
    subject: String,
    hash: String,
    roles: Vec<String>,
    now: u64,
) -> UserRow {
    UserRow {
        username: username.to_string(),
        subject,
        password_hash: hash,
        roles,
        claims: serde_json::Map::new(),
        totp_secret: None,
        totp_pending: None,
        backup_codes: Vec::new(),
        disabled: false,
        created_at: now,
        updated_at: now,
    }
}

/// The patch that removes a user's second factors.
pub(crate) fn mfa_removed() -> UserPatch {
    UserPatch {
        totp_secret: Some(None),
        totp_pending: Some(None),
        backup_codes: Some(Vec::new()),
        ..UserPatch::default()
    }
}

/// MFA already on is changed only through `mfa/disable` (password and code): a stolen access
/// token alone must not replace the user's second factor.
fn refuse_if_mfa_on(user: &UserRow) -> Result<(), Refused> {
    if user.totp_secret.is_some() {
        return Err(GatewayError::InvalidRequest(
            "MFA is already on: disable it first (password and code)",
        )
        .into());
    }
    Ok(())
}

/// A unique name taken: 409; anything else as the database's failure.
pub(crate) fn taken(e: DbError) -> Refused {
    match e {
        DbError::Taken => GatewayError::UsernameTaken.into(),
        other => other.into(),
    }
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
