//! Sessions: one per login, its token pairs, its rotation on refresh (with reuse detection),
//! its lifetimes (idle, absolute, how many a user may hold) and its end at logout. Every
//! token of a session carries when and how its user proved who they are (`auth_time`, `amr`).

use serde_json::{Map, Value};

use super::{Login, Refused, TokenPair};
use crate::accounts::users::User;
use crate::auth::facts::TokenFacts;
use crate::auth::jwt::{new_jti, TokenUse};
use crate::auth::Identity;
use crate::error::GatewayError;
use crate::store::{Presented, Revocation, Rotation, SessionInfo};

/// How a user proved who they are, and when: the session's `auth_time` and `amr` (RFC 8176),
/// and the `[[oidc]]` provider they signed in with (`idp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authn {
    pub at: u64,
    pub amr: Vec<String>,
    pub idp: Option<String>,
}

/// Whom a session's tokens name: a user's subject, roles and claims.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holder {
    pub subject: String,
    pub roles: Vec<String>,
    pub claims: Map<String, Value>,
    /// No user keeps them (a provider's user without `users_db`): the refresh token carries
    /// the provider's own values of `roles_claim` (mapped again, under the config of the
    /// day, at each refresh) and the claims to the next pair.
    pub carried: Option<Vec<String>>,
}

impl From<&User> for Holder {
    fn from(user: &User) -> Self {
        Holder {
            subject: user.subject.clone(),
            roles: user.roles.clone(),
            claims: user.claims.clone(),
            carried: None,
        }
    }
}

/// Where a refresh token carries a provider user's values and claims.
const CARRIED_VALUES: &str = "fed_values";
const CARRIED_CLAIMS: &str = "fed_claims";

/// A second factor that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Factor {
    Totp,
    BackupCode,
}

impl Authn {
    /// A password, and the second factor given with it.
    pub(crate) fn password(at: u64, factor: Option<Factor>) -> Authn {
        let amr: &[&str] = match factor {
            None => &["pwd"],
            Some(Factor::Totp) => &["pwd", "otp", "mfa"],
            Some(Factor::BackupCode) => &["pwd", "mfa"],
        };
        Authn {
            at,
            amr: amr.iter().map(|s| s.to_string()).collect(),
            idp: None,
        }
    }

    /// A sign-in at the `[[oidc]]` provider `idp`, whose own `amr` showed a second factor
    /// or not.
    pub(crate) fn federated(at: u64, idp: &str, second_factor: bool) -> Authn {
        let amr: &[&str] = if second_factor {
            &["fed", "mfa"]
        } else {
            &["fed"]
        };
        Authn {
            at,
            amr: amr.iter().map(|s| s.to_string()).collect(),
            idp: Some(idp.to_string()),
        }
    }

    /// As a token of the session says (a token from before these claims: a password at its
    /// `iat`).
    pub(crate) fn of(claims: &Map<String, Value>) -> Authn {
        let facts = TokenFacts::of(claims);
        let at = claims
            .get("auth_time")
            .and_then(Value::as_u64)
            .or(facts.iat)
            .unwrap_or(0);
        let amr = match claims.get("amr").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            None => vec!["pwd".to_string()],
        };
        let idp = claims
            .get("idp")
            .and_then(Value::as_str)
            .map(str::to_string);
        Authn { at, amr, idp }
    }

    fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("auth_time".into(), self.at.into());
        claims.insert("amr".into(), self.amr.clone().into());
        if let Some(idp) = &self.idp {
            claims.insert("idp".into(), idp.clone().into());
        }
        claims
    }
}

impl Login<'_> {
    /// `POST /auth/refresh` (and the refresh_token grant, and a browser's renewal in passing):
    /// rotates the refresh token. A spent one presented again revokes its whole session, as
    /// does one presented after `session_idle_timeout` without a refresh.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Refused> {
        let token = self
            .runtime
            .verifier
            .verify_as(refresh_token, self.now, TokenUse::Refresh)
            .map_err(|e| GatewayError::InvalidGrant(e.description()))?;
        // A bound refresh token is refused, not spent, without its key or certificate.
        let bound = crate::auth::facts::Binding::of(&token.claims)
            .map_err(|e| GatewayError::InvalidGrant(e.description()))?;
        self.sender.holds(&bound)?;
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
        let authn = Authn::of(&token.claims);
        self.check_lifetimes(sid, &authn, facts.iat.unwrap_or(0))
            .await?;
        let user = self
            .holder_of(&token.subject, &token.claims, &authn)
            .await?;
        let next = new_jti();
        let until = self.refresh_until(&authn);
        let rotation = self
            .store()
            .rotate_refresh(
                sid,
                jti,
                &next,
                until,
                self.now,
                self.settings.refresh_reuse_grace,
            )
            .await?;
        let subject = &user.subject;
        let request_id = self.request_id;
        match rotation {
            Rotation::Rotated => {
                tracing::info!(target: "audit", event = "refresh", %subject, sid, request_id);
                Ok(self.pair(&user, sid, &next, &authn)?)
            }
            Rotation::Successor(successor) => {
                // Within refresh_reuse_grace: the same successor again, not a theft.
                tracing::info!(target: "audit", event = "refresh", grace = true, %subject, sid, request_id);
                Ok(self.pair(&user, sid, &successor, &authn)?)
            }
            Rotation::Reused => {
                self.end_session(sid).await?;
                tracing::warn!(
                    target: "audit",
                    event = "refresh_reuse",
                    %subject,
                    sid,
                    request_id,
                    "a spent refresh token was presented again: session revoked"
                );
                Err(GatewayError::InvalidGrant("refresh token reused: session revoked").into())
            }
            Rotation::Unknown => Err(GatewayError::InvalidGrant("session ended").into()),
        }
    }

    /// Whom a refresh token's next pair names: the user of its subject, enabled; or, for a
    /// provider's user without `users_db`, the roles and claims it carries while its
    /// provider is configured.
    async fn holder_of(
        &self,
        subject: &str,
        claims: &Map<String, Value>,
        authn: &Authn,
    ) -> Result<Holder, Refused> {
        let gone = GatewayError::InvalidGrant("the user is no longer allowed");
        if let (Some(idp), None) = (&authn.idp, self.users().directory()) {
            // Its provider may have left the config, or its roles_map changed.
            let provider = self.runtime.provider(idp).ok_or(gone)?;
            let values: Vec<String> = match claims.get(CARRIED_VALUES) {
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => return Err(gone.into()),
            };
            let carried = claims.get(CARRIED_CLAIMS).and_then(Value::as_object);
            return Ok(Holder {
                subject: subject.to_string(),
                roles: super::federated::map_roles(&provider.settings, &values),
                claims: carried.cloned().unwrap_or_default(),
                carried: Some(values),
            });
        }
        match self.find_by_subject(subject).await? {
            Some(u) if !u.disabled => Ok(Holder::from(&*u)),
            _ => Err(gone.into()),
        }
    }

    /// `session_max_lifetime` after the login, no refresh; `session_idle_timeout` after the
    /// last refresh (the presented token's `iat`), the session ends.
    async fn check_lifetimes(&self, sid: &str, authn: &Authn, iat: u64) -> Result<(), Refused> {
        let s = self.settings;
        if self.now >= authn.at.saturating_add(s.session_max_lifetime) {
            return Err(GatewayError::InvalidGrant("the session is over its lifetime").into());
        }
        let idle = s.session_idle_timeout;
        if idle > 0 && self.now > iat.saturating_add(idle) {
            self.end_session(sid).await?;
            tracing::info!(target: "audit", event = "session_idle", sid, request_id = self.request_id);
            return Err(GatewayError::InvalidGrant("the session was idle too long: ended").into());
        }
        Ok(())
    }

    /// Until when a refresh token made now may be used: `refresh_ttl`, never past the
    /// session's absolute lifetime.
    fn refresh_until(&self, authn: &Authn) -> u64 {
        let by_ttl = self.now + self.signer.refresh_ttl;
        by_ttl.min(authn.at.saturating_add(self.settings.session_max_lifetime))
    }

    /// Revokes session `sid`: its refresh token and every access token of it.
    pub(crate) async fn end_session(&self, sid: &str) -> Result<(), Refused> {
        self.store()
            .revoke(Revocation::Session {
                sid: sid.to_string(),
                until: self.session_memory(),
            })
            .await?;
        Ok(())
    }

    /// `POST /auth/logout`: the caller's session (or, with `all`, every token of its subject).
    pub(crate) async fn logout(&self, token: &Identity, all: bool) -> Result<(), Refused> {
        let facts = TokenFacts::of(&token.claims);
        let until = self.session_memory();
        let subject = token.subject.clone();
        let revocation = match (all, facts.sid, facts.jti) {
            (false, Some(sid), _) => Revocation::Session {
                sid: sid.to_string(),
                until,
            },
            (false, None, Some(jti)) => Revocation::Jti {
                jti: jti.to_string(),
                until,
            },
            // `all`, or nothing names this token alone: everything of its subject.
            _ => Revocation::Subject {
                subject,
                at: self.now,
                until,
            },
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

    /// A new session of `user` and its first token pair. With `max_sessions_per_user`, the
    /// user's least recently used session ends to make room.
    pub(super) async fn new_session(
        &self,
        user: &Holder,
        authn: &Authn,
    ) -> Result<(String, TokenPair), Refused> {
        self.make_room(&user.subject).await?;
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
            .start_session(&refresh_jti, self.refresh_until(authn), &info)
            .await?;
        let pair = self.pair(user, &sid, &refresh_jti, authn)?;
        Ok((sid, pair))
    }

    /// Ends the least recently used sessions of `subject` until a new one fits the cap.
    async fn make_room(&self, subject: &str) -> Result<(), Refused> {
        let cap = self.settings.max_sessions_per_user;
        if cap == 0 {
            return Ok(());
        }
        let mut live = self.live_sessions(subject).await?;
        live.sort_by_key(|s| (s.last_used_at, s.created_at));
        let excess = (live.len() + 1).saturating_sub(cap);
        for s in live.into_iter().take(excess) {
            self.end_session(&s.sid).await?;
            tracing::info!(target: "audit", event = "session_ended", reason = "max_sessions_per_user", subject, sid = %s.sid, request_id = self.request_id);
        }
        Ok(())
    }

    /// The sessions of `subject` that can still refresh and are not revoked.
    pub(crate) async fn live_sessions(&self, subject: &str) -> Result<Vec<SessionInfo>, Refused> {
        let store = self.store();
        let all = store.sessions(subject, self.now).await?;
        Ok(all
            .into_iter()
            .filter(|s| {
                let p = Presented {
                    sid: Some(&s.sid),
                    subject: &s.subject,
                    iat: Some(s.last_used_at),
                    ..Presented::default()
                };
                !store.is_revoked(&p, self.now)
            })
            .collect())
    }

    /// A new access token and the refresh token `refresh_jti` of session `sid`.
    fn pair(
        &self,
        user: &Holder,
        sid: &str,
        refresh_jti: &str,
        authn: &Authn,
    ) -> Result<TokenPair, GatewayError> {
        let grants = self.runtime.config.roles.grants(&user.roles, &[]);
        let permissions: Vec<String> = grants.permissions.iter().cloned().collect();
        let signing_failed = |e: jsonwebtoken::errors::Error| {
            tracing::error!(error = %e, "could not sign a token");
            GatewayError::Unavailable
        };
        // The session's own claims win over a user's claims of the same name.
        let mut claims = user.claims.clone();
        // A user with an email: whether it is verified, always.
        if claims.contains_key("email") {
            let verified = claims.get("email_verified") == Some(&Value::Bool(true));
            claims.insert("email_verified".into(), Value::Bool(verified));
        }
        claims.extend(authn.claims());
        let binding = self.sender.binding();
        if let Some(cnf) = binding.claim() {
            claims.insert("cnf".into(), cnf);
        }
        let access_token = self
            .signer
            .access_token_with(
                &user.subject,
                &user.roles,
                &permissions,
                &claims,
                self.signer.access_ttl,
                self.now,
                Some(sid),
            )
            .map_err(signing_failed)?;
        let ttl = self.refresh_until(authn).saturating_sub(self.now);
        let mut carried = authn.claims();
        if let Some(cnf) = binding.claim() {
            carried.insert("cnf".into(), cnf);
        }
        if let Some(values) = &user.carried {
            carried.insert(CARRIED_VALUES.into(), values.clone().into());
            carried.insert(CARRIED_CLAIMS.into(), user.claims.clone().into());
        }
        let refresh_token = self
            .signer
            .refresh_token(&user.subject, sid, refresh_jti, ttl, self.now, &carried)
            .map_err(signing_failed)?;
        Ok(TokenPair {
            access_token,
            token_type: match binding.jkt {
                Some(_) => "DPoP",
                None => "Bearer",
            },
            expires_in: self.signer.access_ttl,
            refresh_token,
            refresh_expires_in: ttl,
        })
    }

    /// Until when a revocation made now must be remembered: past it, every token it could
    /// refuse has expired (no accepted token lives longer than `max_ttl`).
    pub(super) fn session_memory(&self) -> u64 {
        self.runtime.config.revocation_until(self.now)
    }
}
