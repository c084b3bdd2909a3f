//! `[mail]` (reset and verification mails) and `[audit]` (the audit trail in the database),
//! both for users in `users_db` (docs/CONFIG.md, `[mail]`).

use std::time::Duration;

use super::{root, Validator};
use crate::config::raw::{RawAudit, RawMail};
use crate::config::{AuditSettings, MailSettings, Secret};

const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86400);

impl Validator<'_> {
    pub(super) fn mail(&self, users_db: bool) -> Option<MailSettings> {
        let p = root("mail");
        let raw: RawMail = self.section("mail")?;
        if !users_db {
            self.err(&p, "needs [login] users_db: the mails are for its users");
        }
        let url_at = p.key("smtp_url");
        let mut credentials_in_clear = false;
        match url::Url::parse(&raw.smtp_url) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => {
                if u.query().is_some() {
                    self.err(&url_at, "no query: TLS is `starttls` (smtp://) or smtps://");
                }
                credentials_in_clear = u.scheme() == "smtp" && !u.username().is_empty();
            }
            // Never echo the URL: it may hold a password.
            _ => self.err(&url_at, "must be smtp://host:port or smtps://host:port"),
        }
        let starttls_required = match raw.starttls.as_deref() {
            None | Some("opportunistic") => false,
            Some("required") => true,
            Some(_) => {
                self.err(
                    &p.key("starttls"),
                    "must be \"required\" or \"opportunistic\"",
                );
                false
            }
        };
        if credentials_in_clear && !starttls_required {
            self.err(
                &p.key("starttls"),
                "credentials travel only over TLS: starttls = \"required\", or smtps://",
            );
        }
        if raw.from.parse::<lettre::message::Mailbox>().is_err() {
            self.err(
                &p.key("from"),
                "must be a mailbox: \"Name <addr@example.com>\"",
            );
        }
        for (key, link) in [("link", &raw.link), ("verify_link", &raw.verify_link)] {
            let Some(link) = link else { continue };
            let url_ok = url::Url::parse(&link.replace("{token}", "t"))
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
            if !link.contains("{token}") || !url_ok || !link.is_ascii() || link.len() > 512 {
                self.err(
                    &p.key(key),
                    "must be an http(s) URL (ASCII, 512 characters at most) with `{token}` in it",
                );
            }
        }
        Some(MailSettings {
            url: Secret::new(raw.smtp_url),
            starttls_required,
            from: raw.from,
            link: raw.link,
            verify_link: raw.verify_link,
            ca_certs: match &raw.ca_file {
                Some(f) => Some(self.ca_file(f, &p.key("ca_file"))?),
                None => None,
            },
        })
    }

    pub(super) fn audit(&self, users_db: bool) -> AuditSettings {
        let p = root("audit");
        let Some(raw) = self.section::<RawAudit>("audit") else {
            return AuditSettings {
                database: false,
                retention: DEFAULT_RETENTION.as_secs(),
            };
        };
        let database = raw.database.unwrap_or(false);
        if database && !users_db {
            self.err(
                &p.key("database"),
                "needs [login] users_db: the rows are stored there",
            );
        }
        let retention = self.duration(
            &p.key("retention"),
            raw.retention.as_deref(),
            DEFAULT_RETENTION,
        );
        if retention.as_secs() < 3600 {
            self.err(&p.key("retention"), "at least \"1h\"");
        }
        AuditSettings {
            database,
            retention: retention.as_secs().max(1),
        }
    }
}
