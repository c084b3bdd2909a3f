//! `[login]`: Portcullis's own endpoints, and the users file they read.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::{root, Validator};
use crate::accounts::db::DbKind;
use crate::accounts::policy::PasswordPolicy;
use crate::accounts::users::Users;
use crate::config::raw::{RawCookie, RawLogin, RawPasswordPolicy, RawRegistration};
use crate::config::source::KeyPath;
use crate::config::{CookieSettings, LoginSettings, SameSite, Secret, UsersDb};
use crate::ratelimit::{KeyPart, PolicyId, PolicySpec, Quota};
use crate::units::parse_rate;

const DEFAULT_RATE: &str = "10/min";
const DEFAULT_LOCKOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 5;
const DEFAULT_COOKIE_REUSE_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_REAUTH: Duration = Duration::from_secs(5 * 60);
const DEFAULT_MAX_API_KEYS: usize = 25;
const DEFAULT_API_KEY_TTL: Duration = Duration::from_secs(90 * 86400);
const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(30 * 86400);

/// `[login]`'s session and key lifetimes, in seconds.
struct Lifetimes {
    reauth_within: u64,
    max_api_keys_per_user: usize,
    api_key_ttl: u64,
    session_idle_timeout: u64,
    session_max_lifetime: u64,
    max_sessions_per_user: usize,
}

/// A longer grace would let a stolen refresh token be used beside its owner's.
const MAX_REFRESH_REUSE_GRACE: u64 = 60;

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
        let base_path = self.base_path(&raw, &p);
        let (max_failed_attempts, lockout) = self.attempts(&raw, &p);
        let rate_limit =
            self.login_rate_limit(raw.rate_limit.as_deref(), &p.key("rate_limit"), shared);
        let cookie = raw
            .cookie
            .as_ref()
            .map(|c| self.cookie(c, &p.key("cookie")));
        let (users_file, users, users_db) = self.user_store(&raw, &p, roles);
        let registration = raw
            .registration
            .as_ref()
            .and_then(|r| self.registration(r, &p.key("registration"), roles));
        let password_policy = raw
            .password_policy
            .as_ref()
            .map(|pp| self.password_policy(pp, &p.key("password_policy")))
            .unwrap_or_default();
        // With the cookie, a page's concurrent requests renew one session at once.
        let default_grace = match cookie {
            Some(_) => DEFAULT_COOKIE_REUSE_GRACE,
            None => Duration::ZERO,
        };
        let refresh_reuse_grace = self
            .duration(
                &p.key("refresh_reuse_grace"),
                raw.refresh_reuse_grace.as_deref(),
                default_grace,
            )
            .as_secs();
        if refresh_reuse_grace > MAX_REFRESH_REUSE_GRACE {
            self.err(&p.key("refresh_reuse_grace"), "at most 60s");
        }
        let sessions = self.sessions(&raw, &p);
        Some(LoginSettings {
            refresh_reuse_grace,
            reauth_within: sessions.reauth_within,
            max_api_keys_per_user: sessions.max_api_keys_per_user,
            api_key_ttl: sessions.api_key_ttl,
            session_idle_timeout: sessions.session_idle_timeout,
            session_max_lifetime: sessions.session_max_lifetime,
            max_sessions_per_user: sessions.max_sessions_per_user,
            base_path,
            users_file,
            users,
            users_db,
            registration,
            require_verified_email: raw
                .registration
                .as_ref()
                .and_then(|r| r.require_verified_email)
                .unwrap_or(false),
            password_policy,
            max_failed_attempts,
            lockout,
            rate_limit,
            cookie,
        })
    }

    /// The lifetimes of sessions and keys, and how recent a login must be.
    fn sessions(&self, raw: &RawLogin, p: &KeyPath) -> Lifetimes {
        let secs = |key: &str, value: &Option<String>, default: Duration, min: u64| {
            let v = self
                .duration(&p.key(key), value.as_deref(), default)
                .as_secs();
            if v < min {
                self.err(&p.key(key), "must be at least one second");
            }
            v
        };
        let max_api_keys_per_user = match raw.max_api_keys_per_user {
            Some(0) => {
                self.err(&p.key("max_api_keys_per_user"), "must be at least 1");
                DEFAULT_MAX_API_KEYS
            }
            Some(n) => n,
            None => DEFAULT_MAX_API_KEYS,
        };
        Lifetimes {
            reauth_within: secs("reauth_within", &raw.reauth_within, DEFAULT_REAUTH, 1),
            max_api_keys_per_user,
            api_key_ttl: secs("api_key_ttl", &raw.api_key_ttl, DEFAULT_API_KEY_TTL, 1),
            session_idle_timeout: secs(
                "session_idle_timeout",
                &raw.session_idle_timeout,
                Duration::ZERO,
                0,
            ),
            session_max_lifetime: secs(
                "session_max_lifetime",
                &raw.session_max_lifetime,
                DEFAULT_SESSION_MAX_LIFETIME,
                1,
            ),
            max_sessions_per_user: raw.max_sessions_per_user.unwrap_or(0),
        }
    }

    /// `base_path`: a literal path of its own, `/auth` by default.
    fn base_path(&self, raw: &RawLogin, p: &KeyPath) -> String {
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
        base_path
    }

    /// `max_failed_attempts` and `lockout` (seconds).
    fn attempts(&self, raw: &RawLogin, p: &KeyPath) -> (u32, u64) {
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
        (max_failed_attempts, lockout)
    }

    /// The one user store: `users_db`, or the users file (and what only `users_db` takes).
    fn user_store(
        &self,
        raw: &RawLogin,
        p: &KeyPath,
        roles: &HashSet<String>,
    ) -> (Option<PathBuf>, Users, Option<UsersDb>) {
        let users_db = raw
            .users_db
            .as_deref()
            .and_then(|url| self.users_db(url, raw.db_key.as_deref(), p));
        if raw.users_db.is_some() && raw.users_file.is_some() {
            self.err(
                &p.key("users_db"),
                "users_db and users_file exclude each other: one user store",
            );
        }
        if raw.users_db.is_some() {
            return (None, Users::default(), users_db);
        }
        for (key, given) in [
            ("db_key", raw.db_key.is_some()),
            ("registration", raw.registration.is_some()),
            ("password_policy", raw.password_policy.is_some()),
            ("reauth_within", raw.reauth_within.is_some()),
            ("max_api_keys_per_user", raw.max_api_keys_per_user.is_some()),
            ("api_key_ttl", raw.api_key_ttl.is_some()),
        ] {
            if given {
                self.err(&p.key(key), "needs users_db (a writable user store)");
            }
        }
        // Users who all sign in with a provider need no file of their own.
        if raw.users_file.is_none() && self.table.contains_key("oidc") {
            return (None, Users::default(), None);
        }
        let file = self.resolve(raw.users_file.as_deref().unwrap_or("users.toml"));
        let at = match raw.users_file.is_some() {
            true => p.key("users_file"),
            false => p.clone(),
        };
        let users = self.users_file(&file, &at, roles);
        (Some(file), users, users_db)
    }

    /// `users_db` and its `db_key`: a relative SQLite path is read from the config's
    /// directory, and the file is made when missing.
    fn users_db(&self, url: &str, db_key: Option<&str>, p: &KeyPath) -> Option<UsersDb> {
        let at = p.key("users_db");
        let Some(kind) = DbKind::of(url) else {
            self.err(
                &at,
                "must be sqlite://PATH or postgres://USER@HOST/DATABASE",
            );
            return None;
        };
        let url = match kind {
            DbKind::Sqlite => {
                let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                if path.is_empty() || path == ":memory:" {
                    self.err(&at, "needs a file: sqlite://PATH (relative to this file)");
                    return None;
                }
                let path = self.resolve(path);
                let query = if query.is_empty() { "mode=rwc" } else { query };
                format!("sqlite://{}?{query}", path.display())
            }
            DbKind::Postgres => match url::Url::parse(url) {
                Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => url.to_string(),
                _ => {
                    self.err(&at, "not a postgres:// URL with a host");
                    return None;
                }
            },
        };
        let key_at = p.key("db_key");
        let db_key = match db_key {
            None => {
                self.err(
                    p,
                    "users_db needs db_key (32 bytes or more) to seal TOTP secrets",
                );
                return None;
            }
            Some(k) if k.len() < 32 => {
                self.err(
                    &key_at,
                    format!("needs at least 32 bytes (this one has {})", k.len()),
                );
                return None;
            }
            Some(k) => Secret::new(k.to_string()),
        };
        Some(UsersDb {
            url: Secret::new(url),
            db_key,
        })
    }

    /// The roles registration gives, when it is on.
    fn registration(
        &self,
        raw: &RawRegistration,
        p: &KeyPath,
        roles: &HashSet<String>,
    ) -> Option<Vec<String>> {
        let given = raw.roles.clone().unwrap_or_else(|| vec!["user".into()]);
        for (i, r) in given.iter().enumerate() {
            if !roles.contains(r) {
                let at = if raw.roles.is_some() {
                    p.key("roles").index(i)
                } else {
                    p.clone()
                };
                self.err(&at, format!("unknown role `{r}` (define it in [roles])"));
            }
        }
        raw.enabled.unwrap_or(false).then_some(given)
    }

    fn password_policy(&self, raw: &RawPasswordPolicy, p: &KeyPath) -> PasswordPolicy {
        let d = PasswordPolicy::default();
        let policy = PasswordPolicy {
            min_length: raw.min_length.unwrap_or(d.min_length),
            max_length: raw.max_length.unwrap_or(d.max_length),
            reject_common: raw.reject_common.unwrap_or(d.reject_common),
        };
        if policy.min_length < 8 {
            self.err(&p.key("min_length"), "must be at least 8");
        }
        if policy.max_length < policy.min_length || policy.max_length > 1024 {
            self.err(
                &p.key("max_length"),
                "must be at least min_length and at most 1024",
            );
        }
        policy
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
