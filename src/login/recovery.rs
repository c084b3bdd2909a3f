//! The flows of recovery and verification (docs/CONFIG.md, `[mail]`): a forgotten password,
//! its reset, an email verified, a verification mail sent again, and a user's own activity.
//! `forgot` and `resend` answer the same, at once, whoever is named: the lookup is the same
//! work for anyone, and what only a real user costs (a token, a mail) is done after the
//! answer.

use std::sync::Arc;

use super::{Login, Refused, TokenPair};
use crate::accounts::db::tokens::Purpose;
use crate::accounts::db::users::UserRow;
use crate::accounts::directory::Directory;
use crate::accounts::service::{email_of, RESET_TTL};
use crate::audit::AuditRow;
use crate::config::MailSettings;
use crate::error::GatewayError;
use crate::mail::{Kind, Mail, Mailer};
use crate::store::Store;

/// One mail of each kind per user per minute, at most.
const MAIL_EVERY: u64 = 60;
/// A user's activity: the last events.
const ACTIVITY: u32 = 50;

/// Whom a forgotten password or a resend names.
pub(crate) enum Named<'a> {
    Username(&'a str),
    Email(&'a str),
}

/// What a mail needs after the answer has gone.
struct Outgoing {
    directory: Arc<Directory>,
    store: Arc<dyn Store>,
    mailer: Mailer,
    settings: MailSettings,
    now: u64,
    request_id: String,
}

impl Login<'_> {
    /// `POST /auth/password/forgot`: a reset mail to each named user with a verified email.
    pub(crate) async fn forgot(&self, named: Named<'_>) -> Result<(), Refused> {
        let users = self.named(named).await?;
        let Some(out) = self.outgoing() else {
            return Ok(());
        };
        let users: Vec<UserRow> = users
            .into_iter()
            .filter(|u| !u.disabled && email_of(&u.claims).is_some_and(|(_, verified)| verified))
            .collect();
        tokio::spawn(async move {
            for user in users {
                out.send(&user, Kind::Reset).await;
            }
        });
        Ok(())
    }

    /// `POST /auth/email/resend`: a verification mail to each named user whose email is not
    /// verified yet.
    pub(crate) async fn resend(&self, named: Named<'_>) -> Result<(), Refused> {
        let users = self.named(named).await?;
        if let Some(out) = self.outgoing() {
            let users: Vec<UserRow> = users
                .into_iter()
                .filter(|u| email_of(&u.claims).is_some_and(|(_, verified)| !verified))
                .collect();
            tokio::spawn(async move {
                for user in users {
                    out.send(&user, Kind::Verify).await;
                }
            });
        }
        Ok(())
    }

    /// A verification mail to `user` (just registered), after the answer.
    pub(crate) fn mail_verification(&self, user: UserRow) {
        if let Some(out) = self.outgoing() {
            tokio::spawn(async move { out.send(&user, Kind::Verify).await });
        }
    }

    /// `POST /auth/password/reset`: the new password; then a login with it, as `/auth/login`
    /// makes one (a second factor asked for, a disabled user or an unverified email refused).
    pub(crate) async fn reset(&self, token: &str, new: String) -> Result<TokenPair, Refused> {
        let user = self.accounts()?.reset_password(token, new.clone()).await?;
        self.password(&user.username, new, None).await
    }

    /// `POST /auth/email/verify`.
    pub(crate) async fn verify(&self, token: &str) -> Result<(), Refused> {
        self.accounts()?.verify_email(token).await?;
        Ok(())
    }

    /// `GET /auth/activity`: the last events of `user` (by subject, or by name for the
    /// failures that knew only the name).
    pub(crate) async fn activity(&self, user: &UserRow) -> Result<Vec<AuditRow>, Refused> {
        if !self.runtime.config.audit.database {
            return Err(GatewayError::NotFound.into());
        }
        let accounts = self.accounts()?;
        Ok(accounts
            .directory
            .activity(&user.subject, &user.username, ACTIVITY)
            .await?)
    }

    /// The users `named` names: the same lookup for anyone.
    async fn named(&self, named: Named<'_>) -> Result<Vec<UserRow>, Refused> {
        let directory = self.accounts()?.directory;
        let found = match named {
            Named::Username(name) if name.len() <= super::MAX_USERNAME_BYTES => {
                let name = name.to_ascii_lowercase();
                directory.row(&name).await?.into_iter().collect()
            }
            Named::Email(email) if email.len() <= 320 => directory.rows_by_email(email).await?,
            _ => Vec::new(),
        };
        Ok(found)
    }

    fn outgoing(&self) -> Option<Outgoing> {
        let (Some(directory), Some(mailer), Some(settings)) = (
            self.services.directory.clone(),
            self.services.mailer.clone(),
            self.runtime.config.mail.clone(),
        ) else {
            return None;
        };
        Some(Outgoing {
            directory,
            store: self.services.store.clone(),
            mailer,
            settings,
            now: self.now,
            request_id: self.request_id.to_string(),
        })
    }
}

impl Outgoing {
    /// A token of `kind` for `user`, mailed; at most one mail of a kind per user a minute.
    async fn send(&self, user: &UserRow, kind: Kind) {
        let Some((to, _)) = email_of(&user.claims) else {
            return;
        };
        let (name, request_id) = (&user.username, self.request_id.as_str());
        let (purpose, event, ttl) = match kind {
            Kind::Reset => (Purpose::Reset, "password_reset_requested", RESET_TTL),
            Kind::Verify => (
                Purpose::Verify,
                "verification_requested",
                crate::accounts::service::VERIFY_TTL,
            ),
        };
        let marker = format!("mail:{event}:{name}");
        match self.store.spend(&marker, self.now + MAIL_EVERY).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(target: "audit", event, result = "throttled", username = %name, request_id);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no mail: the shared state does not answer");
                return;
            }
        }
        let token = match self
            .directory
            .issue_token(purpose, user, self.now, self.now + ttl)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "no mail: users_db does not answer");
                return;
            }
        };
        let mail = match kind {
            Kind::Reset => reset_mail(&self.settings, name, &token),
            Kind::Verify => verify_mail(&self.settings, name, &token),
        };
        self.mailer.send(Mail {
            kind,
            to: to.to_string(),
            subject: mail.0,
            body: mail.1,
        });
        tracing::info!(target: "audit", event, result = "mailed", username = %name, subject = %user.subject, request_id);
    }
}

/// `link` with the token in it, or the bare token.
fn with_token(link: Option<&str>, token: &str) -> String {
    match link {
        Some(link) => link.replace("{token}", token),
        None => token.to_string(),
    }
}

fn reset_mail(settings: &MailSettings, username: &str, token: &str) -> (&'static str, String) {
    let link = with_token(settings.link.as_deref(), token);
    let body = format!(
        "Someone asked to reset the password of {username}.\r\n\r\nIf it was you, use this \
         within 30 minutes:\r\n\r\n{link}\r\n\r\nIf it was not you, ignore this mail: the \
         password stays as it is.\r\n"
    );
    ("Reset your password", body)
}

fn verify_mail(settings: &MailSettings, username: &str, token: &str) -> (&'static str, String) {
    let link = with_token(settings.verify_link.as_deref(), token);
    let body = format!(
        "Please confirm the email address of {username}, within 24 hours:\r\n\r\n{link}\r\n"
    );
    ("Confirm your email address", body)
}
