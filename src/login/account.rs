//! Self-service over `users_db` (docs/CONFIG.md, "Users in a database"), apart from HTTP:
//! who the caller is, what they must prove again (their password, a code), and their
//! sessions. The changes themselves, and what each revokes, are the accounts service's.

use std::sync::Arc;

use super::{Authn, Holder, Login, Refused, TokenPair};
use crate::accounts::db::keys::KeyRow;
use crate::accounts::db::users::UserRow;
use crate::accounts::service::{Accounts, Actor, NewKey, NewUser};
use crate::accounts::users::User;
use crate::auth::Identity;
use crate::error::GatewayError;
use crate::store::SessionInfo;

/// The caller of a self-service endpoint: a login's access token and its user.
pub(crate) struct Me {
    pub identity: Identity,
    pub user: UserRow,
}

impl Me {
    fn sid(&self) -> Option<&str> {
        self.identity.claims.get("sid").and_then(|v| v.as_str())
    }
}

/// A session as the caller's list shows it.
pub(crate) struct SessionView {
    pub info: SessionInfo,
    pub current: bool,
}

impl Login<'_> {
    /// The accounts service acting for the user; 404 without `users_db` (self-service exists
    /// with it only).
    pub(crate) fn accounts(&self) -> Result<Accounts<'_>, Refused> {
        let accounts = self
            .services
            .accounts(self.runtime, Actor::User, self.now, self.request_id);
        accounts.ok_or(Refused::Error(GatewayError::NotFound))
    }

    /// The caller behind `identity` (verified and not revoked): one of this gateway's own
    /// access tokens, of an enabled user in the database.
    pub(crate) async fn me(&self, identity: Identity) -> Result<Me, Refused> {
        let accounts = self.accounts()?;
        let not_ours = GatewayError::InsufficientScope("needs an access token of a login here");
        let iss = identity.claims.get("iss").and_then(|v| v.as_str());
        if iss != Some(self.signer.issuer.as_str()) {
            return Err(not_ours.into());
        }
        match accounts.directory.row_by_subject(&identity.subject).await? {
            Some(user) if !user.disabled => Ok(Me { identity, user }),
            _ => Err(not_ours.into()),
        }
    }

    /// `POST /auth/register`: the new user's subject and (lower-cased) name.
    pub(crate) async fn register(
        &self,
        username: &str,
        password: String,
        email: Option<String>,
    ) -> Result<(String, String), Refused> {
        let accounts = self.accounts()?;
        let roles = self
            .settings
            .registration
            .clone()
            .ok_or(GatewayError::NotFound)?;
        let kept = !self.runtime.config.oidc.is_empty()
            && crate::accounts::policy::looks_federated(&username.to_ascii_lowercase());
        if kept {
            let why = "this form of username is kept for users of an OpenID Provider";
            return Err(GatewayError::InvalidRequest(why).into());
        }
        let mut new = NewUser::with_password(username, password, roles);
        match email {
            Some(email) => {
                let valid = email.len() <= 320 && email.parse::<lettre::Address>().is_ok();
                if !valid {
                    return Err(GatewayError::InvalidRequest("email: not an address").into());
                }
                new.claims.insert("email".into(), email.into());
                new.claims.insert("email_verified".into(), false.into());
            }
            None if self.settings.require_verified_email => {
                let why = "email: required, to be verified before the first login";
                return Err(GatewayError::InvalidRequest(why).into());
            }
            None => {}
        }
        let row = accounts.create(new).await?;
        let (subject, name) = (row.subject.clone(), row.username.clone());
        if row.claims.contains_key("email") {
            self.mail_verification(row);
        }
        Ok((subject, name))
    }

    /// `POST /auth/password`: a new token pair; every other session and token of the user
    /// ends. A wrong current password counts towards the lockout.
    pub(crate) async fn change_password(
        &self,
        me: &Me,
        current: String,
        new: String,
    ) -> Result<TokenPair, Refused> {
        let user = self.check_password(me, current).await?;
        self.accounts()?.set_password(&me.user, new).await?;
        // The new pair is bound as the token that asked (its proof or certificate was checked
        // when it was identified): a bound session stays bound.
        let kept = crate::auth::facts::Binding::of(&me.identity.claims).unwrap_or_default();
        let login = Login {
            sender: crate::caller::bound::Sender {
                proof_jkt: kept.jkt,
                cert: self.sender.cert.clone(),
                bind_cert: self.sender.bind_cert || kept.x5t.is_some(),
            },
            ..self.clone()
        };
        let (_, pair) = login
            .new_session(&Holder::from(&*user), &Authn::password(self.now, None))
            .await?;
        Ok(pair)
    }

    /// `GET /auth/sessions`.
    pub(crate) async fn sessions(&self, me: &Me) -> Result<Vec<SessionView>, Refused> {
        let live = self.live_sessions(&me.user.subject).await?;
        Ok(live
            .into_iter()
            .map(|info| SessionView {
                current: Some(info.sid.as_str()) == me.sid(),
                info,
            })
            .collect())
    }

    /// `DELETE /auth/sessions/{sid}`: 404 for a sid that is not the caller's.
    pub(crate) async fn end_own_session(&self, me: &Me, sid: &str) -> Result<(), Refused> {
        let mine = self
            .sessions(me)
            .await?
            .into_iter()
            .any(|s| s.info.sid == sid);
        if !mine {
            return Err(GatewayError::NotFound.into());
        }
        self.end_session(sid).await?;
        tracing::info!(target: "audit", event = "account", action = "session_ended", username = %me.user.username, by = "self", request_id = self.request_id);
        Ok(())
    }

    /// `POST /auth/api-keys`: the key (shown this once) and what was stored of it.
    pub(crate) async fn create_key(
        &self,
        me: &Me,
        req: NewKey,
    ) -> Result<(KeyRow, String), Refused> {
        self.recent_login(me)?;
        Ok(self.accounts()?.create_key(&me.user, req).await?)
    }

    /// `GET /auth/api-keys`: a page of the caller's keys, and where the next one starts.
    pub(crate) async fn keys(
        &self,
        me: &Me,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<KeyRow>, Option<String>), Refused> {
        Ok(self.accounts()?.keys(&me.user, after, limit).await?)
    }

    /// `DELETE /auth/api-keys/{id}`.
    pub(crate) async fn delete_key(&self, me: &Me, id: &str) -> Result<(), Refused> {
        Ok(self.accounts()?.delete_key(&me.user, id).await?)
    }

    /// `POST /auth/mfa/setup`: a new secret and its `otpauth://` URI.
    pub(crate) async fn mfa_setup(&self, me: &Me) -> Result<(String, String), Refused> {
        self.recent_login(me)?;
        Ok(self.accounts()?.mfa_setup(&me.user).await?)
    }

    /// `POST /auth/mfa/enable`: the backup codes, shown once.
    pub(crate) async fn mfa_enable(&self, me: &Me, code: &str) -> Result<Vec<String>, Refused> {
        self.recent_login(me)?;
        Ok(self.accounts()?.mfa_enable(&me.user, code).await?)
    }

    /// `POST /auth/mfa/disable`: with the password and a current code (or a backup code).
    pub(crate) async fn mfa_disable(
        &self,
        me: &Me,
        password: String,
        code: &str,
    ) -> Result<(), Refused> {
        let accounts = self.accounts()?;
        self.recent_login(me)?;
        let user = self.check_password(me, password).await?;
        if !user.has_mfa() {
            return Err(GatewayError::InvalidRequest("MFA is not on").into());
        }
        if self.accept_code(&user, code).await?.is_none() {
            self.failed(&user.username, "invalid_code").await?;
            return Err(GatewayError::InvalidCode.into());
        }
        Ok(accounts.remove_mfa(&user.username).await?)
    }

    /// A change a stolen token must not make (a key that outlives the session, a second factor
    /// of the thief's): the caller's login within `reauth_within`, else RFC 9470's 401.
    fn recent_login(&self, me: &Me) -> Result<(), Refused> {
        let within = self.settings.reauth_within;
        let login = Authn::of(&me.identity.claims).at;
        match self.now <= login.saturating_add(within) {
            true => Ok(()),
            false => Err(GatewayError::RecentLoginRequired(within).into()),
        }
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
        match self
            .passwords()
            .verify(user.password.clone(), password)
            .await
        {
            Ok(true) => {
                self.store().clear_failures(&username).await?;
                Ok(user)
            }
            Ok(false) => {
                self.failed(&username, "invalid_credentials").await?;
                Err(GatewayError::InvalidCredentials.into())
            }
            Err(busy) => Err(self.give_back(&username, busy.into()).await),
        }
    }
}
