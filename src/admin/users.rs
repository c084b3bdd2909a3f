//! The admin API over `users_db` (SPEC section 7): list, create, read, change and delete
//! users, and reset their MFA. A user disabled, deleted or given a new password loses every
//! session and token on every instance; every change is an audit event.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{json as respond, read_json, AdminApp};
use crate::accounts::db::users::{UserPatch, UserRow};
use crate::accounts::directory::Directory;
use crate::accounts::policy;
use crate::error::GatewayError;
use crate::login::account::{end_all, mfa_removed, new_row};
use crate::login::Refused;
use crate::response::{LocalResponse, Refusal};
use crate::store::Revocation;
use crate::units::rfc3339;

/// A page of the list is at most this long.
const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    subject: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    claims: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    roles: Option<Vec<String>>,
    claims: Option<Map<String, Value>>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// What the admin API shows of a user: never a hash or a secret.
fn view(u: &UserRow) -> Value {
    json!({
        "username": u.username,
        "subject": u.subject,
        "roles": u.roles,
        "claims": u.claims,
        "disabled": u.disabled,
        "mfa": u.totp_secret.is_some() || !u.backup_codes.is_empty(),
        "created_at": rfc3339(u.created_at),
    })
}

/// A login refusal as the admin listener answers it (the same codes).
fn refusal(r: Refused) -> Refusal {
    match r {
        Refused::Error(e) => e.into(),
        Refused::WeakPassword(rule) => weak(rule),
        Refused::MfaRequired(_) | Refused::Locked(_) => GatewayError::Unavailable.into(),
    }
}

/// 400 `weak_password`, saying which rule the password broke.
fn weak(rule: String) -> Refusal {
    Refusal {
        description: Some(rule),
        ..Refusal::new(GatewayError::WeakPassword)
    }
}

/// A username from the path, percent-decoded (`%40` for `@`); anything that is not a
/// username of the database names no user.
fn path_username(segment: &str) -> Result<String, GatewayError> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| GatewayError::NotFound)?;
    policy::username(&decoded).map_err(|_| GatewayError::NotFound)
}

/// A `prefix` or `after` of the list: characters a username may hold, lower-cased.
fn list_param(params: &BTreeMap<String, String>, name: &str) -> Result<String, GatewayError> {
    match params.get(name) {
        None => Ok(String::new()),
        Some(p) if p.is_empty() => Ok(String::new()),
        Some(p) => policy::username(p).map_err(|_| {
            GatewayError::InvalidRequest("prefix and after: characters of a username only")
        }),
    }
}

impl AdminApp {
    pub(super) async fn users(
        &self,
        session: &mut ServerSession,
        rid: &str,
    ) -> Result<LocalResponse, Refusal> {
        let runtime = self.runtime.load_full();
        let directory = runtime.accounts.clone().ok_or(GatewayError::NotFound)?;
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let query = session.req_header().uri.query().map(str::to_string);
        let rest = path.trim_start_matches("/admin/users");
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            (Method::GET | Method::HEAD, []) => self.list(&directory, query.as_deref()).await,
            (Method::POST, []) => {
                let body = body::<NewUser>(session).await?;
                self.create(&directory, body, rid).await
            }
            (Method::GET | Method::HEAD, [name]) => {
                let user = self.find(&directory, name).await?;
                Ok(respond(StatusCode::OK, view(&user)))
            }
            (Method::PATCH, [name]) => {
                let body = body::<Change>(session).await?;
                self.change(&directory, name, body, rid).await
            }
            (Method::DELETE, [name]) => self.delete(&directory, name, rid).await,
            (Method::POST, [name, "mfa", "reset"]) => {
                let user = self.find(&directory, name).await?;
                let now = self.clock.now();
                directory
                    .update(&user.username, mfa_removed(), now)
                    .await
                    .map_err(|e| refusal(e.into()))?;
                audit("mfa_reset", &user.username, rid);
                Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
            }
            (_, [] | [_] | [_, "mfa", "reset"]) => Err(GatewayError::MethodNotAllowed.into()),
            _ => Err(GatewayError::NotFound.into()),
        }
    }

    async fn list(&self, d: &Directory, query: Option<&str>) -> Result<LocalResponse, Refusal> {
        let params: BTreeMap<String, String> =
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let limit = match params.get("limit").map(|l| l.parse::<u32>()) {
            None => DEFAULT_PAGE,
            Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
            Some(_) => return Err(GatewayError::InvalidRequest("limit: 1 to 500").into()),
        };
        let prefix = list_param(&params, "prefix")?;
        let after = list_param(&params, "after")?;
        let users = d
            .list(&prefix, &after, limit)
            .await
            .map_err(|e| refusal(e.into()))?;
        let next =
            (users.len() == limit as usize).then(|| users.last().map(|u| u.username.clone()));
        Ok(respond(
            StatusCode::OK,
            json!({"users": users.iter().map(view).collect::<Vec<_>>(), "next": next.flatten()}),
        ))
    }

    async fn create(
        &self,
        d: &Directory,
        new: NewUser,
        rid: &str,
    ) -> Result<LocalResponse, Refusal> {
        let runtime = self.runtime.load();
        let username = policy::username(&new.username).map_err(GatewayError::InvalidRequest)?;
        self.check_roles_and_claims(&new.roles, &new.claims)?;
        let subject = new
            .subject
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if subject.is_empty() || !crate::auth::jwt::can_be_header_value(&subject) {
            return Err(
                GatewayError::InvalidRequest("subject: a non-empty header-safe string").into(),
            );
        }
        let policy = runtime
            .config
            .login
            .as_ref()
            .map(|l| l.password_policy.clone())
            .unwrap_or_default();
        policy.check(&username, &new.password).map_err(weak)?;
        let hash = self
            .passwords
            .hash(new.password)
            .await
            .map_err(|_| GatewayError::Unavailable)?;
        let mut row = new_row(&username, subject, hash, new.roles, self.clock.now());
        row.claims = new.claims;
        d.insert(row.clone())
            .await
            .map_err(|e| refusal(crate::login::account::taken(e)))?;
        audit("user_created", &username, rid);
        Ok(respond(StatusCode::CREATED, view(&row)))
    }

    async fn change(
        &self,
        d: &Directory,
        name: &str,
        c: Change,
        rid: &str,
    ) -> Result<LocalResponse, Refusal> {
        let user = self.find(d, name).await?;
        if let Some(roles) = &c.roles {
            self.check_roles_and_claims(roles, &Map::new())?;
        }
        if let Some(claims) = &c.claims {
            self.check_roles_and_claims(&[], claims)?;
        }
        let password_hash = match c.password {
            None => None,
            Some(p) => {
                let policy = self
                    .runtime
                    .load()
                    .config
                    .login
                    .as_ref()
                    .map(|l| l.password_policy.clone())
                    .unwrap_or_default();
                policy.check(&user.username, &p).map_err(weak)?;
                Some(
                    self.passwords
                        .hash(p)
                        .await
                        .map_err(|_| GatewayError::Unavailable)?,
                )
            }
        };
        let ends_sessions = c.disabled == Some(true) || password_hash.is_some();
        let what: Vec<&str> = [
            ("roles", c.roles.is_some()),
            ("claims", c.claims.is_some()),
            ("disabled", c.disabled == Some(true)),
            ("enabled", c.disabled == Some(false)),
            ("password", password_hash.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        let patch = UserPatch {
            password_hash,
            roles: c.roles,
            claims: c.claims,
            disabled: c.disabled,
            ..UserPatch::default()
        };
        let now = self.clock.now();
        let changed = d
            .update(&user.username, patch, now)
            .await
            .map_err(|e| refusal(e.into()))?
            .ok_or(GatewayError::NotFound)?;
        if ends_sessions {
            self.end_sessions(&user.subject, now).await?;
        }
        let changed_fields = what.join(",");
        tracing::info!(target: "audit", event = "account", action = "user_changed", username = %user.username, changed = %changed_fields, by = "admin", request_id = rid);
        Ok(respond(StatusCode::OK, view(&changed)))
    }

    async fn delete(&self, d: &Directory, name: &str, rid: &str) -> Result<LocalResponse, Refusal> {
        let user = self.find(d, name).await?;
        let keys = d
            .keys_of(&user.username)
            .await
            .map_err(|e| refusal(e.into()))?;
        let now = self.clock.now();
        // Revoked first, deleted last: a failure on the way leaves the user to delete again.
        self.end_sessions(&user.subject, now).await?;
        for k in keys {
            self.store
                .revoke(Revocation::ApiKey { id: k.id })
                .await
                .map_err(|_| GatewayError::Unavailable)?;
        }
        if !d
            .delete(&user.username, now)
            .await
            .map_err(|e| refusal(e.into()))?
        {
            return Err(GatewayError::NotFound.into());
        }
        audit("user_deleted", &user.username, rid);
        Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
    }

    async fn find(&self, d: &Directory, name: &str) -> Result<UserRow, Refusal> {
        let name = path_username(name)?;
        d.row(&name)
            .await
            .map_err(|e| refusal(e.into()))?
            .ok_or_else(|| GatewayError::NotFound.into())
    }

    /// Every session and token of `subject` until now, on every instance.
    async fn end_sessions(&self, subject: &str, now: u64) -> Result<(), GatewayError> {
        let until = self.runtime.load().config.revocation_until(now);
        end_all(self.store.as_ref(), until, subject, now, now)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "a user's sessions could not be ended");
                GatewayError::Unavailable
            })
    }

    fn check_roles_and_claims(
        &self,
        roles: &[String],
        claims: &Map<String, Value>,
    ) -> Result<(), GatewayError> {
        let runtime = self.runtime.load();
        if !roles.iter().all(|r| runtime.config.roles.is_known(r)) {
            return Err(GatewayError::InvalidRequest(
                "roles: every role must be in [roles]",
            ));
        }
        if claims
            .keys()
            .any(|k| crate::claims::RESERVED.contains(&k.as_str()))
        {
            return Err(GatewayError::InvalidRequest(
                "claims: iss, sub, exp, roles and the like are set by Portcullis",
            ));
        }
        Ok(())
    }
}

async fn body<T: serde::de::DeserializeOwned>(
    session: &mut ServerSession,
) -> Result<T, GatewayError> {
    let value = read_json(session)
        .await
        .map_err(GatewayError::InvalidRequest)?;
    serde_json::from_value(value).map_err(|_| {
        GatewayError::InvalidRequest("a field is missing, unknown or of the wrong type")
    })
}

fn audit(action: &'static str, username: &str, request_id: &str) {
    tracing::info!(target: "audit", event = "account", action, username, by = "admin", request_id);
}
