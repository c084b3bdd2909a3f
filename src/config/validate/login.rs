//! `[login]`: Portcullis's own endpoints, and the users file they read.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;

use super::{root, Validator};
use crate::config::duration::parse_rate;
use crate::config::raw::{RawCookie, RawLogin};
use crate::config::source::KeyPath;
use crate::login::{CookieSettings, LoginSettings, SameSite};
use crate::ratelimit::{KeyPart, Policy, Quota};

const DEFAULT_RATE: &str = "10/min";

impl Validator<'_> {
    /// `None` without `[login]` or with `enabled = false`.
    /// `shared`: with the Redis store, the login budget is one for all instances.
    pub(super) fn login(
        &self,
        roles: &HashSet<String>,
        can_sign: bool,
        shared: bool,
    ) -> Option<LoginSettings> {
        let raw = self.section::<RawLogin>("login")?;
        let p = root("login");
        if raw.enabled == Some(false) {
            return None;
        }
        if !can_sign {
            self.err(
                &p,
                "the login endpoints issue tokens: they need a valid [tokens] section",
            );
        }
        let base_path = raw.base_path.clone().unwrap_or_else(|| "/auth".into());
        let segments_ok = base_path
            .split('/')
            .skip(1)
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['{', '}', '*', '%']));
        if !base_path.starts_with('/') || base_path.len() < 2 || !segments_ok {
            self.err(
                &p.key("base_path"),
                "must be a path such as \"/auth\": no trailing slash, no patterns or escapes",
            );
        }
        let max_failed_attempts = match raw.max_failed_attempts {
            None => 5,
            Some(0) => {
                self.err(&p.key("max_failed_attempts"), "must be at least 1");
                5
            }
            Some(n) => n,
        };
        let lockout = self
            .duration(&p.key("lockout"), raw.lockout.as_deref(), "30m")
            .as_secs();
        if lockout == 0 {
            self.err(&p.key("lockout"), "must be at least one second");
        }
        let rate_limit =
            self.login_rate_limit(raw.rate_limit.as_deref(), &p.key("rate_limit"), shared);
        let cookie = raw
            .cookie
            .as_ref()
            .map(|c| self.cookie(c, &p.key("cookie")));

        let users_file = self.resolve(raw.users_file.as_deref().unwrap_or("users.toml"));
        let users = match crate::config::users::load(&users_file, roles) {
            Ok(users) => users,
            Err(errors) => {
                if errors.0.iter().all(|e| e.line == 0) {
                    // The file itself could not be read: say so at the key naming it.
                    let at = if raw.users_file.is_some() {
                        p.key("users_file")
                    } else {
                        p.clone()
                    };
                    for e in &errors.0 {
                        self.err(&at, format!("{}: {}", users_file.display(), e.message));
                    }
                } else {
                    self.src.absorb(errors);
                }
                Default::default()
            }
        };
        Some(LoginSettings {
            base_path,
            users_file,
            users,
            max_failed_attempts,
            lockout,
            rate_limit,
            cookie,
        })
    }

    /// One budget per client IP over login, token and mfa.
    fn login_rate_limit(
        &self,
        rate: Option<&str>,
        p: &KeyPath,
        shared: bool,
    ) -> Option<Arc<Policy>> {
        let rate = parse_rate(rate.unwrap_or(DEFAULT_RATE))
            .map_err(|e| self.err(p, e))
            .ok()?;
        let quota = Quota::new(rate, NonZeroU32::new(rate.count));
        let limiter = self.limiter("login", &[KeyPart::Ip], quota, shared);
        Some(Arc::new(Policy::new("login", vec![KeyPart::Ip], limiter)))
    }

    fn cookie(&self, raw: &RawCookie, p: &KeyPath) -> CookieSettings {
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| "portcullis_session".into());
        // RFC 6265 token characters only.
        let token_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token_ok {
            self.err(&p.key("name"), format!("`{name}` is not a cookie name"));
        }
        let path = raw.path.clone().unwrap_or_else(|| "/".into());
        if !path.starts_with('/') || path.bytes().any(|b| b == b';' || b.is_ascii_control()) {
            self.err(&p.key("path"), "must be a path starting with /");
        }
        let secure = raw.secure.unwrap_or(true);
        let same_site = match raw.same_site.as_deref().unwrap_or("Lax") {
            "Strict" => SameSite::Strict,
            "Lax" => SameSite::Lax,
            "None" => {
                if !secure {
                    self.err(
                        &p.key("same_site"),
                        "SameSite=None needs secure = true (browsers refuse it otherwise)",
                    );
                }
                SameSite::None
            }
            other => {
                self.err(
                    &p.key("same_site"),
                    format!("`{other}` is not one of Strict, Lax, None"),
                );
                SameSite::Lax
            }
        };
        CookieSettings {
            name,
            path,
            secure,
            same_site,
        }
    }
}
