//! Portcullis's own login (docs/CONFIG.md, `[login]`), apart from HTTP: passwords, lockout,
//! MFA, token pairs, refresh rotation with reuse detection, logout. `endpoints` puts it on
//! the wire.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::accounts::mfa;
use crate::accounts::password::{self, PasswordPool};
use crate::accounts::users::User;
use crate::auth::facts::TokenFacts;
use crate::auth::jwt::{new_jti, Signer, TokenUse};
use crate::auth::Identity;
use crate::config::LoginSettings;
use crate::error::GatewayError;
use crate::runtime::Runtime;
use crate::services::Services;
use crate::store::{Attempt, Revocation, Rotation, SessionInfo, Store, StoreError};

/// Longer usernames are refused before any work.
pub(crate) const MAX_USERNAME_BYTES: usize = 256;

pub(crate) mod account;
mod users;
/// How long an `mfa_token` lives, and how many wrong codes kill it.
pub(crate) const MFA_TOKEN_TTL: u64 = 300;
pub(crate) const MFA_MAX_WRONG_CODES: u32 = 5;
/// How long a used backup code is remembered: for good, in practice.
const BACKUP_CODE_MEMORY: u64 = 10 * 365 * 86400;

/// RFC 6749 section 5.1.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Why a login step did not produce tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A refusal with a fixed description.
    Error(GatewayError),
    /// The password was right; a second factor is needed, through this `mfa_token`.
    MfaRequired(String),
    /// Locked out: try again in this many seconds.
    Locked(u64),
    /// A new password the policy refuses, and which rule.
    WeakPassword(String),
}

impl From<GatewayError> for Refused {
    fn from(e: GatewayError) -> Self {
        Refused::Error(e)
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "shared state unavailable during login");
        Refused::Error(GatewayError::Unavailable)
    }
}

impl From<password::Busy> for Refused {
    fn from(_: password::Busy) -> Self {
        tracing::warn!("password verification queue full: login refused");
        Refused::Error(GatewayError::Unavailable)
    }
}

/// What the login steps work with: one request's view.
pub(crate) struct Login<'a> {
    pub services: &'a Services,
    /// The request's runtime (one request never sees two configs).
    pub runtime: &'a Runtime,
    pub settings: &'a LoginSettings,
    pub signer: &'a Signer,
    pub now: u64,
    /// The request's id, carried by every audit event it causes.
    pub request_id: &'a str,
    /// What a new session records of its client.
    pub client_ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

impl Login<'_> {
    fn store(&self) -> &dyn Store {
        self.services.store.as_ref()
    }

    fn passwords(&self) -> &PasswordPool {
        &self.services.passwords
    }

    /// `POST /auth/login` (and the password grant): a token pair, or why not. `code` is the
    /// optional `totp` field (a TOTP code or a backup code).
    pub(crate) async fn password(
        &self,
        username: &str,
        password: String,
        code: Option<&str>,
    ) -> Result<TokenPair, Refused> {
        if username.len() > MAX_USERNAME_BYTES {
            // Refused before it is hashed, stored for the lockout or logged.
            return Err(GatewayError::InvalidRequest("username too long").into());
        }
        let username = &self.users().canonical(username);
        self.begin_attempt(username).await?;
        let user = match self.find(username).await {
            Ok(user) => user,
            Err(refused) => return Err(self.give_back(username, refused).await),
        };
        // Unknown users are checked against a decoy with some user's algorithm and cost, so
        // that the answer takes as long as for a wrong password.
        let hash = user
            .as_ref()
            .map_or_else(|| self.users().decoy(username), |u| u.password.clone());
        // A hash of another kind than new ones is replaced once the password is known good.
        let writable = self.users().directory().is_some();
        let rehash = (writable && !hash.is_current()).then(|| password.clone());
        let matches = match self.passwords().verify(hash, password).await {
            Ok(m) => m && user.is_some(),
            Err(busy) => return Err(self.give_back(username, busy.into()).await),
        };
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            _ => {
                self.failed(username, "invalid_credentials").await?;
                return Err(GatewayError::InvalidCredentials.into());
            }
        };
        let user = &user;
        // The password is known good: an old hash is replaced now, before the second factor
        // (a login that goes on through `POST /auth/mfa` has no password to rehash with).
        if let Some(password) = rehash {
            self.rehash(user, password).await;
        }
        if user.has_mfa() {
            match code {
                None => {
                    // The password was right: this attempt is not a failure.
                    let started = self.start_mfa(username).await;
                    let refused = match started {
                        Ok(token) => Refused::MfaRequired(token),
                        Err(e) => e,
                    };
                    return Err(self.give_back(username, refused).await);
                }
                Some(code) => {
                    if !self.accept_code(user, code).await? {
                        self.failed(username, "invalid_code").await?;
                        return Err(GatewayError::InvalidCode.into());
                    }
                }
            }
        }
        self.succeeded(user).await
    }

    /// `POST /auth/mfa`: the second step of a login that answered `mfa_required`.
    pub(crate) async fn mfa(&self, mfa_token: &str, code: &str) -> Result<TokenPair, Refused> {
        let id = mfa_token_id(mfa_token);
        let unknown = GatewayError::InvalidGrant("unknown, expired or used mfa_token");
        // Counted before the code is checked: at most MFA_MAX_WRONG_CODES are ever checked.
        let username = self
            .store()
            .mfa_attempt(&id, MFA_MAX_WRONG_CODES)
            .await?
            .ok_or(unknown)?;
        self.begin_attempt(&username).await?;
        let user = match self.find(&username).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => return Err(self.give_back(&username, unknown.into()).await),
            Err(refused) => return Err(self.give_back(&username, refused).await),
        };
        let user = &user;
        if !self.accept_code(user, code).await? {
            self.store()
                .mfa_attempt_failed(&id, MFA_MAX_WRONG_CODES)
                .await?;
            self.failed(&username, "invalid_code").await?;
            return Err(GatewayError::InvalidCode.into());
        }
        if !self.store().take_mfa(&id).await? {
            return Err(self.give_back(&username, unknown.into()).await);
        }
        self.succeeded(user).await
    }

    /// `POST /auth/refresh` (and the refresh_token grant): rotates the refresh token. A spent
    /// one presented again revokes its whole session.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Refused> {
        let token = self
            .runtime
            .verifier
            .verify_as(refresh_token, self.now, TokenUse::Refresh)
            .map_err(|e| GatewayError::InvalidGrant(e.description()))?;
        let facts = TokenFacts::of(&token.claims);
        let (Some(sid), Some(jti)) = (facts.sid, facts.jti) else {
            return Err(GatewayError::InvalidGrant("refresh token without a session").into());
        };
        if self
            .store()
            .is_revoked(&facts.presented(&token.subject), self.now)
        {
            return Err(GatewayError::InvalidGrant("refresh token revoked").into());
        }
        let user = match self.find_by_subject(&token.subject).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(GatewayError::InvalidGrant("the user is no longer allowed").into()),
        };
        let next = new_jti();
        let until = self.now + self.signer.refresh_ttl;
        match self
            .store()
            .rotate_refresh(
                sid,
                jti,
                &next,
                until,
                self.now,
                self.settings.refresh_reuse_grace,
            )
            .await?
        {
            Rotation::Rotated => {
                tracing::info!(target: "audit", event = "refresh", subject = %user.subject, sid, request_id = self.request_id);
                Ok(self.pair(&user, sid, &next)?)
            }
            Rotation::Successor(successor) => {
                // Within refresh_reuse_grace: the same successor again, not a theft.
                tracing::info!(target: "audit", event = "refresh", grace = true, subject = %user.subject, sid, request_id = self.request_id);
                Ok(self.pair(&user, sid, &successor)?)
            }
            Rotation::Reused => {
                self.store()
                    .revoke(Revocation::Session {
                        sid: sid.to_string(),
                        until: self.session_memory(),
                    })
                    .await?;
                tracing::warn!(
                    target: "audit",
                    event = "refresh_reuse",
                    subject = %user.subject,
                    sid,
                    request_id = self.request_id,
                    "a spent refresh token was presented again: session revoked"
                );
                Err(GatewayError::InvalidGrant("refresh token reused: session revoked").into())
            }
            Rotation::Unknown => Err(GatewayError::InvalidGrant("session ended").into()),
        }
    }

    /// `POST /auth/logout`: the caller's session (or, with `all`, every token of its subject).
    pub(crate) async fn logout(&self, token: &Identity, all: bool) -> Result<(), Refused> {
        let facts = TokenFacts::of(&token.claims);
        let revocation = if all {
            Revocation::Subject {
                subject: token.subject.clone(),
                at: self.now,
                until: self.session_memory(),
            }
        } else if let Some(sid) = facts.sid {
            Revocation::Session {
                sid: sid.to_string(),
                until: self.session_memory(),
            }
        } else if let Some(jti) = facts.jti {
            Revocation::Jti {
                jti: jti.to_string(),
                until: self.session_memory(),
            }
        } else {
            // Nothing names this token alone: revoke it with everything of its subject.
            Revocation::Subject {
                subject: token.subject.clone(),
                at: self.now,
                until: self.session_memory(),
            }
        };
        let kind = revocation.kind();
        self.store().revoke(revocation).await?;
        tracing::info!(
            target: "audit",
            event = "logout",
            subject = %token.subject,
            all,
            revoked = kind,
            request_id = self.request_id,
        );
        Ok(())
    }

    /// Counts the attempt before anything is evaluated; refuses it while the username is
    /// locked or `max_failed_attempts` are already counted.
    async fn begin_attempt(&self, username: &str) -> Result<(), Refused> {
        let s = self.settings;
        match self
            .store()
            .begin_attempt(username, s.max_failed_attempts, s.lockout)
            .await?
        {
            Attempt::Allowed => Ok(()),
            Attempt::Locked(until) => Err(Refused::Locked(until.saturating_sub(self.now).max(1))),
        }
    }

    /// Gives a counted attempt back (it was not a failure), then answers `refused`.
    async fn give_back(&self, username: &str, refused: Refused) -> Refused {
        if let Err(e) = self.store().return_attempt(username).await {
            tracing::warn!(error = %e, "could not give a login attempt back");
        }
        refused
    }

    /// The counted attempt failed; the one that reaches the maximum starts the lockout.
    async fn failed(&self, username: &str, reason: &'static str) -> Result<(), Refused> {
        let request_id = self.request_id;
        tracing::info!(target: "audit", event = "login", result = "failure", reason, username, request_id);
        let s = self.settings;
        let locked = self
            .store()
            .attempt_failed(username, s.max_failed_attempts, s.lockout)
            .await?;
        if let Some(until) = locked {
            tracing::warn!(target: "audit", event = "lockout", username, until, request_id);
        }
        Ok(())
    }

    async fn succeeded(&self, user: &User) -> Result<TokenPair, Refused> {
        self.store().clear_failures(&user.username).await?;
        let (sid, pair) = self.new_session(user).await?;
        tracing::info!(
            target: "audit",
            event = "login",
            result = "success",
            username = %user.username,
            subject = %user.subject,
            sid,
            request_id = self.request_id,
        );
        Ok(pair)
    }

    /// A new session of `user` and its first token pair.
    async fn new_session(&self, user: &User) -> Result<(String, TokenPair), Refused> {
        let sid = uuid::Uuid::new_v4().to_string();
        let refresh_jti = new_jti();
        let info = SessionInfo {
            sid: sid.clone(),
            subject: user.subject.clone(),
            created_at: self.now,
            last_used_at: self.now,
            client_ip: self.client_ip.map(|ip| ip.to_string()),
            // Bounded: it is stored for the session's life.
            user_agent: self.user_agent.map(|ua| ua.chars().take(256).collect()),
        };
        self.store()
            .start_session(&refresh_jti, self.now + self.signer.refresh_ttl, &info)
            .await?;
        let pair = self.pair(user, &sid, &refresh_jti)?;
        Ok((sid, pair))
    }

    /// A new access token and the refresh token `refresh_jti` of session `sid`.
    fn pair(&self, user: &User, sid: &str, refresh_jti: &str) -> Result<TokenPair, GatewayError> {
        let grants = self.runtime.config.roles.grants(&user.roles, &[]);
        let permissions: Vec<String> = grants.permissions.iter().cloned().collect();
        let signing_failed = |e: jsonwebtoken::errors::Error| {
            tracing::error!(error = %e, "could not sign a token");
            GatewayError::Unavailable
        };
        let access_token = self
            .signer
            .access_token_with(
                &user.subject,
                &user.roles,
                &permissions,
                &user.claims,
                self.signer.access_ttl,
                self.now,
                Some(sid),
            )
            .map_err(signing_failed)?;
        let refresh_token = self
            .signer
            .refresh_token(&user.subject, sid, refresh_jti, self.now)
            .map_err(signing_failed)?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in: self.signer.access_ttl,
            refresh_token,
        })
    }

    /// A pending MFA login: the token is returned once; the store keeps only its digest.
    async fn start_mfa(&self, username: &str) -> Result<String, Refused> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        let token = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        self.store()
            .put_mfa(&mfa_token_id(&token), username, self.now + MFA_TOKEN_TTL)
            .await?;
        Ok(token)
    }

    /// A TOTP code (once per time step) or an unused backup code.
    async fn accept_code(&self, user: &User, code: &str) -> Result<bool, Refused> {
        let code = code.trim();
        if let Some(totp) = &user.totp {
            if let Some(step) = totp.matching_step(code, self.now) {
                let marker = format!("totp:{}:{step}", user.username);
                let window_end = (step + 2) * mfa::STEP;
                return Ok(self.store().spend(&marker, window_end).await?);
            }
        }
        if let Some(digest) = mfa::matching_backup_code(&user.backup_codes, code) {
            let marker = format!("backup:{}:{}", user.username, hex::encode(digest));
            let first = self
                .store()
                .spend(&marker, self.now + BACKUP_CODE_MEMORY)
                .await?;
            if first {
                self.forget_backup_code(user, &digest).await?;
            }
            return Ok(first);
        }
        Ok(false)
    }

    /// Until when a revocation made now must be remembered: past it, every token it could
    /// refuse has expired (no accepted token lives longer than `max_ttl`).
    fn session_memory(&self) -> u64 {
        self.runtime.config.revocation_until(self.now)
    }
}

/// The store's name for an `mfa_token`: its digest, so that the token itself is not kept.
fn mfa_token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
