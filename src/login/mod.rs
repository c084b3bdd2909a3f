//! Portcullis's own login (SPEC section 4), apart from HTTP: passwords, lockout, MFA, token
//! pairs, refresh rotation with reuse detection, logout. `endpoints` puts it on the wire.

pub mod mfa;
pub mod password;
pub mod users;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::auth::jwt::{new_jti, Signer, TokenUse, VerifiedToken};
use crate::config::Config;
use crate::error::GatewayError;
use crate::ratelimit::Policy;
use crate::store::{Presented, Revocation, Rotation, Store, StoreError};
use password::PasswordPool;
use users::{User, Users};

/// How long an `mfa_token` lives, and how many wrong codes kill it.
pub const MFA_TOKEN_TTL: u64 = 300;
pub const MFA_MAX_WRONG_CODES: u32 = 5;
/// How long a used backup code is remembered: for good, in practice.
const BACKUP_CODE_MEMORY: u64 = 10 * 365 * 86400;

/// `[login]`, compiled.
#[derive(Debug)]
pub struct LoginSettings {
    pub base_path: String,
    pub users_file: PathBuf,
    pub users: Users,
    pub max_failed_attempts: u32,
    /// Seconds.
    pub lockout: u64,
    /// One budget per client IP over login, token and mfa.
    pub rate_limit: Option<Arc<Policy>>,
    pub cookie: Option<CookieSettings>,
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub path: String,
    pub secure: bool,
    pub same_site: SameSite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl CookieSettings {
    /// `Set-Cookie` carrying `token` for `max_age` seconds; an empty token clears it.
    pub fn set_cookie(&self, token: &str, max_age: u64) -> String {
        let same_site = match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        };
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={token}; Path={}; Max-Age={max_age}; HttpOnly{secure}; SameSite={same_site}",
            self.name, self.path
        )
    }
}

/// RFC 6749 section 5.1.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Why a login step did not produce tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A refusal with a fixed description.
    Error(GatewayError),
    /// The password was right; a second factor is needed, through this `mfa_token`.
    MfaRequired(String),
    /// Locked out: try again in this many seconds.
    Locked(u64),
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
pub struct Login<'a> {
    pub config: &'a Config,
    pub settings: &'a LoginSettings,
    pub signer: &'a Signer,
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordPool,
    pub now: u64,
}

impl Login<'_> {
    /// `POST /auth/login` (and the password grant): a token pair, or why not. `code` is the
    /// optional `totp` field (a TOTP code or a backup code).
    pub async fn password(
        &self,
        username: &str,
        password: String,
        code: Option<&str>,
    ) -> Result<TokenPair, Refused> {
        self.refuse_if_locked(username).await?;
        let user = self.settings.users.get(username);
        let matches = self
            .passwords
            .verify(user.map(|u| u.password.clone()), password)
            .await?;
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            _ => {
                self.failed(username, "invalid_credentials").await?;
                return Err(GatewayError::InvalidCredentials.into());
            }
        };
        if user.has_mfa() {
            match code {
                None => return Err(Refused::MfaRequired(self.start_mfa(username).await?)),
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
    pub async fn mfa(&self, mfa_token: &str, code: &str) -> Result<TokenPair, Refused> {
        let id = mfa_token_id(mfa_token);
        let unknown = GatewayError::InvalidGrant("unknown, expired or used mfa_token");
        let username = self.store.mfa_user(&id).await?.ok_or(unknown)?;
        self.refuse_if_locked(&username).await?;
        let user = match self.settings.users.get(&username) {
            Some(u) if !u.disabled => u,
            _ => return Err(unknown.into()),
        };
        if !self.accept_code(user, code).await? {
            self.store.mfa_wrong_code(&id, MFA_MAX_WRONG_CODES).await?;
            self.failed(&username, "invalid_code").await?;
            return Err(GatewayError::InvalidCode.into());
        }
        if !self.store.take_mfa(&id).await? {
            return Err(unknown.into());
        }
        self.succeeded(user).await
    }

    /// `POST /auth/refresh` (and the refresh_token grant): rotates the refresh token. A spent
    /// one presented again revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Refused> {
        let token = self
            .config
            .verifier
            .verify_as(refresh_token, self.now, TokenUse::Refresh)
            .map_err(GatewayError::InvalidGrant)?;
        let facts = TokenFacts::of(&token);
        let (Some(sid), Some(jti)) = (facts.sid, facts.jti) else {
            return Err(GatewayError::InvalidGrant("refresh token without a session").into());
        };
        if self.store.is_revoked(&facts.presented(&token.subject)) {
            return Err(GatewayError::InvalidGrant("refresh token revoked").into());
        }
        let user = match self.settings.users.by_subject(&token.subject) {
            Some(u) if !u.disabled => u,
            _ => return Err(GatewayError::InvalidGrant("the user is no longer allowed").into()),
        };
        let next = new_jti();
        let until = self.now + self.signer.refresh_ttl;
        match self.store.rotate_refresh(sid, jti, &next, until).await? {
            Rotation::Rotated => {
                tracing::info!(target: "audit", event = "refresh", subject = %user.subject, sid);
                Ok(self.pair(user, sid, &next)?)
            }
            Rotation::Reused => {
                self.store
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
                    "a spent refresh token was presented again: session revoked"
                );
                Err(GatewayError::InvalidGrant("refresh token reused: session revoked").into())
            }
            Rotation::Unknown => Err(GatewayError::InvalidGrant("session ended").into()),
        }
    }

    /// `POST /auth/logout`: the caller's session (or, with `all`, every token of its subject).
    pub async fn logout(&self, token: &VerifiedToken, all: bool) -> Result<(), Refused> {
        let facts = TokenFacts::of(token);
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
                until: facts.exp.unwrap_or(self.now) + self.config.verifier.leeway,
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
        self.store.revoke(revocation).await?;
        tracing::info!(target: "audit", event = "logout", subject = %token.subject, all, revoked = kind);
        Ok(())
    }

    async fn refuse_if_locked(&self, username: &str) -> Result<(), Refused> {
        match self.store.locked_until(username).await? {
            Some(until) => Err(Refused::Locked(until.saturating_sub(self.now).max(1))),
            None => Ok(()),
        }
    }

    /// Counts a failure; the one that reaches the maximum starts the lockout.
    async fn failed(&self, username: &str, reason: &'static str) -> Result<(), Refused> {
        tracing::info!(target: "audit", event = "login", result = "failure", reason, username);
        let locked = self
            .store
            .record_failure(
                username,
                self.settings.max_failed_attempts,
                self.settings.lockout,
            )
            .await?;
        if let Some(until) = locked {
            tracing::warn!(target: "audit", event = "lockout", username, until);
        }
        Ok(())
    }

    async fn succeeded(&self, user: &User) -> Result<TokenPair, Refused> {
        self.store.clear_failures(&user.username).await?;
        let sid = uuid::Uuid::new_v4().to_string();
        let refresh_jti = new_jti();
        self.store
            .start_session(&sid, &refresh_jti, self.now + self.signer.refresh_ttl)
            .await?;
        tracing::info!(
            target: "audit",
            event = "login",
            result = "success",
            username = %user.username,
            subject = %user.subject,
            sid,
        );
        Ok(self.pair(user, &sid, &refresh_jti)?)
    }

    /// A new access token and the refresh token `refresh_jti` of session `sid`.
    fn pair(&self, user: &User, sid: &str, refresh_jti: &str) -> Result<TokenPair, GatewayError> {
        let grants = self.config.roles.grants(&user.roles, &[]);
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
        self.store
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
                return Ok(self.store.spend(&marker, window_end).await?);
            }
        }
        if let Some(digest) = mfa::matching_backup_code(&user.backup_codes, code) {
            let marker = format!("backup:{}:{}", user.username, hex::encode(digest));
            return Ok(self
                .store
                .spend(&marker, self.now + BACKUP_CODE_MEMORY)
                .await?);
        }
        Ok(false)
    }

    /// Until when a session or subject revocation must be remembered: past it, every token
    /// it could refuse has expired.
    fn session_memory(&self) -> u64 {
        self.now + self.signer.refresh_ttl.max(self.signer.access_ttl) + self.config.verifier.leeway
    }
}

/// The store's name for an `mfa_token`: its digest, so that the token itself is not kept.
fn mfa_token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The claims revocation looks at.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub jti: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub iat: Option<u64>,
    pub exp: Option<u64>,
}

impl<'a> TokenFacts<'a> {
    pub fn of(token: &'a VerifiedToken) -> Self {
        let str_claim = |k: &str| token.claims.get(k).and_then(|v| v.as_str());
        let secs = |k: &str| {
            token
                .claims
                .get(k)
                .and_then(|v| v.as_f64())
                .map(|f| f.max(0.0) as u64)
        };
        TokenFacts {
            jti: str_claim("jti"),
            sid: str_claim("sid"),
            iat: secs("iat"),
            exp: secs("exp"),
        }
    }

    pub fn presented(&self, subject: &'a str) -> Presented<'a> {
        Presented {
            jti: self.jti,
            sid: self.sid,
            subject,
            iat: self.iat,
            api_key: None,
        }
    }
}
