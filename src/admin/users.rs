//! The admin API over `users_db` (docs/CONFIG.md, "Users in a database"): list, create,
//! read, change and delete users, and reset their MFA, through the accounts service (which
//! decides what each change revokes and audits it).

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{json as respond, read_json, AdminApp};
use crate::accounts::db::users::UserRow;
use crate::accounts::policy;
use crate::accounts::service::{Accounts, Actor, Change, Denied, NewUser};
use crate::error::GatewayError;
use crate::response::{LocalResponse, Refusal};
use crate::units::rfc3339;

/// A page of the list is at most this long.
const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
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
pub(crate) struct ChangeBody {
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

/// A refused change as the admin listener answers it.
fn refusal(d: Denied) -> Refusal {
    match d {
        Denied::Error(e) => e.into(),
        Denied::WeakPassword(rule) => Refusal {
            description: Some(rule),
            ..Refusal::new(GatewayError::WeakPassword)
        },
        Denied::UnknownRole(_) => {
            GatewayError::InvalidRequest("roles: every role must be in [roles]").into()
        }
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
        let services = &self.services;
        let runtime = services.runtime.load_full();
        let now = services.clock.now();
        let accounts = services
            .accounts(&runtime, Actor::Admin, now, rid)
            .ok_or(GatewayError::NotFound)?;
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let query = session.req_header().uri.query().map(str::to_string);
        let rest = path.trim_start_matches("/admin/users");
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            (Method::GET | Method::HEAD, []) => list(&accounts, query.as_deref()).await,
            (Method::POST, []) => {
                let body = body::<NewUserBody>(session).await?;
                create(&accounts, body).await
            }
            (Method::GET | Method::HEAD, [name]) => {
                let user = find(&accounts, name).await?;
                Ok(respond(StatusCode::OK, view(&user)))
            }
            (Method::PATCH, [name]) => {
                let body = body::<ChangeBody>(session).await?;
                let user = find(&accounts, name).await?;
                let change = Change {
                    roles: body.roles,
                    claims: body.claims,
                    disabled: body.disabled,
                    password: body.password,
                };
                let changed = accounts.change(&user, change).await.map_err(refusal)?;
                Ok(respond(StatusCode::OK, view(&changed)))
            }
            (Method::DELETE, [name]) => {
                let user = find(&accounts, name).await?;
                accounts.delete(&user).await.map_err(refusal)?;
                Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
            }
            (Method::POST, [name, "mfa", "reset"]) => {
                let user = find(&accounts, name).await?;
                accounts.remove_mfa(&user.username).await.map_err(refusal)?;
                Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
            }
            (Method::POST, [name, "password-reset"]) => {
                let user = find(&accounts, name).await?;
                let (token, expires_at) = accounts.reset_token(&user).await.map_err(refusal)?;
                let link = runtime.config.mail.as_ref().and_then(|m| m.link.as_deref());
                let link = link.map(|l| l.replace("{token}", &token));
                let body = json!({"token": token, "link": link, "expires_at": rfc3339(expires_at)});
                Ok(respond(StatusCode::CREATED, body))
            }
            (_, [] | [_] | [_, "mfa", "reset"] | [_, "password-reset"]) => {
                Err(GatewayError::MethodNotAllowed.into())
            }
            _ => Err(GatewayError::NotFound.into()),
        }
    }
}

async fn list(accounts: &Accounts<'_>, query: Option<&str>) -> Result<LocalResponse, Refusal> {
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let limit = match params.get("limit").map(|l| l.parse::<u32>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => return Err(GatewayError::InvalidRequest("limit: 1 to 500").into()),
    };
    let prefix = list_param(&params, "prefix")?;
    let after = list_param(&params, "after")?;
    let users = accounts
        .list(&prefix, &after, limit)
        .await
        .map_err(refusal)?;
    let next = (users.len() == limit as usize).then(|| users.last().map(|u| u.username.clone()));
    Ok(respond(
        StatusCode::OK,
        json!({"users": users.iter().map(view).collect::<Vec<_>>(), "next": next.flatten()}),
    ))
}

async fn create(accounts: &Accounts<'_>, new: NewUserBody) -> Result<LocalResponse, Refusal> {
    let user = NewUser {
        subject: new.subject,
        claims: new.claims,
        ..NewUser::with_password(&new.username, new.password, new.roles)
    };
    let row = accounts.create(user).await.map_err(refusal)?;
    Ok(respond(StatusCode::CREATED, view(&row)))
}

async fn find(accounts: &Accounts<'_>, name: &str) -> Result<UserRow, Refusal> {
    let name = path_username(name)?;
    accounts
        .find(&name)
        .await
        .map_err(refusal)?
        .ok_or_else(|| GatewayError::NotFound.into())
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
