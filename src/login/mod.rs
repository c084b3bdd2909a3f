//! Portcullis's own login (docs/CONFIG.md, `[login]`), apart from HTTP: passwords, lockout,
//! MFA, token pairs, refresh rotation with reuse detection, logout. `endpoints` puts it on
//! the wire.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::accounts::mfa;
use crate::accounts::password::{self, PasswordPool};
use crate::accounts::users::User;
use crate::auth::jwt::Signer;
use crate::config::LoginSettings;
use crate::error::GatewayError;
use crate::runtime::Runtime;
use crate::services::Services;
use crate::store::{Attempt, Store, StoreError};
pub(crate) use session::{Authn, Factor, Holder};

/// Longer usernames are refused before any work.
pub(crate) const MAX_USERNAME_BYTES: usize = 256;

pub(crate) mod account;
pub(crate) mod federated;
pub(crate) mod recovery;
mod session;
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
    /// Seconds the refresh token lives: the refresh cookie's `Max-Age`.
    #[serde(skip)]
    pub refresh_expires_in: u64,
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
    /// The OpenID Provider refused the sign-in, in these words (printable, short).
    ProviderError(String),
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
#[derive(Clone)]
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
    /// What the tokens issued now are bound to (a DPoP key, a client certificate), and what
    /// a refresh token presented now must be bound to.
    pub sender: crate::caller::bound::Sender,
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
        // Told only to someone who knows the password.
        if self.settings.require_verified_email
            && crate::accounts::service::email_of(&user.claims).is_some_and(|(_, ok)| !ok)
        {
            self.give_back(username, GatewayError::EmailUnverified.into())
                .await;
            tracing::info!(target: "audit", event = "login", result = "failure", reason = "email_unverified", username, request_id = self.request_id);
            return Err(GatewayError::EmailUnverified.into());
        }
        // The password is known good: an old hash is replaced now, before the second factor
        // (a login that goes on through `POST /auth/mfa` has no password to rehash with).
        if let Some(password) = rehash {
            self.rehash(user, password).await;
        }
        let mut factor = None;
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
                    factor = self.accept_code(user, code).await?;
                    if factor.is_none() {
                        self.failed(username, "invalid_code").await?;
                        return Err(GatewayError::InvalidCode.into());
                    }
                }
            }
        }
        self.succeeded(user, factor).await
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
        let Some(factor) = self.accept_code(user, code).await? else {
            self.store()
                .mfa_attempt_failed(&id, MFA_MAX_WRONG_CODES)
                .await?;
            self.failed(&username, "invalid_code").await?;
            return Err(GatewayError::InvalidCode.into());
        };
        if !self.store().take_mfa(&id).await? {
            return Err(self.give_back(&username, unknown.into()).await);
        }
        self.succeeded(user, Some(factor)).await
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
        let (client_ip, user_agent) = self.client();
        tracing::info!(target: "audit", event = "login", result = "failure", reason, username, client_ip, user_agent, request_id);
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

    async fn succeeded(&self, user: &User, factor: Option<Factor>) -> Result<TokenPair, Refused> {
        self.store().clear_failures(&user.username).await?;
        let authn = Authn::password(self.now, factor);
        let (sid, pair) = self.new_session(&Holder::from(user), &authn).await?;
        let (client_ip, user_agent) = self.client();
        tracing::info!(
            target: "audit",
            event = "login",
            result = "success",
            username = %user.username,
            subject = %user.subject,
            sid,
            client_ip,
            user_agent,
            request_id = self.request_id,
        );
        Ok(pair)
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

    /// A TOTP code (once per time step) or an unused backup code: which of them, or `None`.
    async fn accept_code(&self, user: &User, code: &str) -> Result<Option<Factor>, Refused> {
        let code = code.trim();
        if let Some(totp) = &user.totp {
            if let Some(step) = totp.matching_step(code, self.now) {
                let marker = format!("totp:{}:{step}", user.username);
                let window_end = (step + 2) * mfa::STEP;
                let first = self.store().spend(&marker, window_end).await?;
                return Ok(first.then_some(Factor::Totp));
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
            return Ok(first.then_some(Factor::BackupCode));
        }
        Ok(None)
    }
}

impl Login<'_> {
    /// Who the request comes from, for the audit trail (the user agent cut short).
    pub(crate) fn client(&self) -> (Option<String>, Option<String>) {
        let ip = self.client_ip.map(|ip| ip.to_string());
        let agent = self.user_agent.map(|ua| ua.chars().take(200).collect());
        (ip, agent)
    }
}

/// The store's name for an `mfa_token`: its digest, so that the token itself is not kept.
fn mfa_token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
