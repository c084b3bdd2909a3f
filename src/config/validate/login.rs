//! `[login]`: Portcullis's own endpoints, and the users file they read.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use super::{root, Validator};
use crate::config::raw::{RawCookie, RawLogin};
use crate::config::source::KeyPath;
use crate::config::{CookieSettings, LoginSettings, SameSite};
use crate::ratelimit::{KeyPart, PolicyId, PolicySpec, Quota};
use crate::units::parse_rate;

const DEFAULT_RATE: &str = "10/min";
const DEFAULT_LOCKOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 5;

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
            None => DEFAULT_MAX_FAILED_ATTEMPTS,
            Some(0) => {
                self.err(&p.key("max_failed_attempts"), "must be at least 1");
                DEFAULT_MAX_FAILED_ATTEMPTS
            }
            Some(n) => n,
        };
        let lockout = self
            .duration(&p.key("lockout"), raw.lockout.as_deref(), DEFAULT_LOCKOUT)
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
        let at = if raw.users_file.is_some() {
            p.key("users_file")
        } else {
            p.clone()
        };
        let users = self.users_file(&users_file, &at, roles);
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
    fn login_rate_limit(&self, rate: Option<&str>, p: &KeyPath, shared: bool) -> Option<PolicyId> {
        let rate = parse_rate(rate.unwrap_or(DEFAULT_RATE))
            .map_err(|e| self.err(p, e))
            .ok()?;
        let quota = Quota::new(rate, NonZeroU32::new(rate.count));
        Some(self.add_policy(PolicySpec::new("login", vec![KeyPart::Ip], quota, shared)))
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
        let same_site = self.choice(&p.key("same_site"), &raw.same_site, SameSite::Lax);
        if same_site == SameSite::None && !secure {
            self.err(
                &p.key("same_site"),
                "SameSite=None needs secure = true (browsers refuse it otherwise)",
            );
        }
        CookieSettings {
            name,
            path,
            secure,
            same_site,
        }
    }
}
