//! The self-service endpoints on the wire (docs/CONFIG.md, "Users in a database"): the
//! caller's Bearer access token (a login's; an API key or another issuer's token is 403),
//! the body read, the answer as JSON.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::paths::AccountEndpoint;
use super::{fields, identify, pair_response, to_json, EndpointRequest};
use crate::accounts::db::keys::KeyRow;
use crate::accounts::service::NewKey;
use crate::auth::AuthMethod;
use crate::error::GatewayError;
use crate::login::account::{Me, SessionView};
use crate::login::{Login, Refused};
use crate::policy::CredentialKind;
use crate::units::rfc3339;

/// `POST /auth/register`.
pub(super) async fn register(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<super::LocalResponse, Refused> {
    let mut f = fields(req)?;
    let username = f.required("username")?.to_string();
    f.required("password")?;
    let password = f.take("password").unwrap_or_default();
    let email = f.take("email");
    let (sub, username) = login.register(&username, password, email).await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({"sub": sub, "username": username}),
    ))
}

pub(super) async fn answer(
    endpoint: AccountEndpoint,
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<super::LocalResponse, Refused> {
    let me = login.me(bearer_only(req, login).await?).await?;
    match endpoint {
        AccountEndpoint::Password => {
            let mut f = fields(req)?;
            f.required("current_password")?;
            f.required("new_password")?;
            let current = f.take("current_password").unwrap_or_default();
            let new = f.take("new_password").unwrap_or_default();
            let pair = login.change_password(&me, current, new).await?;
            Ok(pair_response(&pair, login.settings)?)
        }
        AccountEndpoint::Sessions => {
            let sessions: Vec<Value> = login.sessions(&me).await?.iter().map(session).collect();
            Ok(json_response(
                StatusCode::OK,
                json!({ "sessions": sessions }),
            ))
        }
        AccountEndpoint::Session => {
            login
                .end_own_session(&me, last_segment(req.sub_path))
                .await?;
            Ok(super::LocalResponse::empty(StatusCode::NO_CONTENT))
        }
        AccountEndpoint::ApiKeys if req.method == Method::POST => create_key(req, login, &me).await,
        AccountEndpoint::ApiKeys => {
            let (limit, after) = page(req.query)?;
            let (keys, next) = login.keys(&me, after.as_deref(), limit).await?;
            let keys: Vec<Value> = keys.iter().map(key).collect();
            Ok(json_response(
                StatusCode::OK,
                json!({ "api_keys": keys, "next": next }),
            ))
        }
        AccountEndpoint::ApiKey => {
            login.delete_key(&me, last_segment(req.sub_path)).await?;
            Ok(super::LocalResponse::empty(StatusCode::NO_CONTENT))
        }
        AccountEndpoint::MfaSetup => {
            let (secret, uri) = login.mfa_setup(&me).await?;
            Ok(json_response(
                StatusCode::OK,
                json!({"secret": secret, "otpauth_uri": uri}),
            ))
        }
        AccountEndpoint::MfaEnable => {
            let f = fields(req)?;
            let codes = login.mfa_enable(&me, f.required("code")?).await?;
            Ok(json_response(
                StatusCode::OK,
                json!({ "backup_codes": codes }),
            ))
        }
        AccountEndpoint::MfaDisable => {
            let mut f = fields(req)?;
            f.required("password")?;
            let code = f.required("code")?.to_string();
            let password = f.take("password").unwrap_or_default();
            login.mfa_disable(&me, password, &code).await?;
            Ok(super::LocalResponse::empty(StatusCode::NO_CONTENT))
        }
        AccountEndpoint::Activity => {
            let events: Vec<Value> = login
                .activity(&me.user)
                .await?
                .into_iter()
                .map(|e| {
                    json!({"at": rfc3339(e.at), "event": e.event, "result": e.result,
                           "client_ip": e.client_ip, "user_agent": e.user_agent})
                })
                .collect();
            Ok(json_response(StatusCode::OK, json!({ "events": events })))
        }
    }
}

/// The most keys a page lists.
const MAX_PAGE: u32 = 100;

/// `?limit=&after=` of a list: at most [`MAX_PAGE`] (the default), after an id.
fn page(query: Option<&str>) -> Result<(u32, Option<String>), GatewayError> {
    let mut limit = MAX_PAGE;
    let mut after = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(GatewayError::InvalidRequest("limit: 1 to 100"))?;
            }
            "after" if !v.is_empty() => after = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok((limit, after))
}

/// A session as its owner's list shows it.
fn session(s: &SessionView) -> Value {
    json!({
        "sid": s.info.sid,
        "created_at": rfc3339(s.info.created_at),
        "last_used_at": rfc3339(s.info.last_used_at),
        "client_ip": s.info.client_ip,
        "user_agent": s.info.user_agent,
        "current": s.current,
    })
}

/// A key as its owner's list shows it: never the key or its digest.
fn key(k: &KeyRow) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "roles": k.roles,
        "created_at": rfc3339(k.created_at),
        "expires_at": k.expires_at.map(rfc3339),
        "last_used_at": k.last_used_at.map(rfc3339),
    })
}

#[derive(Deserialize)]
pub(crate) struct NewKeyBody {
    name: Option<String>,
    roles: Option<Vec<String>>,
    expires_at: Option<String>,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

async fn create_key(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
    me: &Me,
) -> Result<super::LocalResponse, Refused> {
    let body: NewKeyBody = super::body::json(super::body::content_type(req.headers), req.body)?;
    let name = body
        .name
        .ok_or(GatewayError::InvalidRequest("missing field: name"))?;
    let new = NewKey {
        name,
        roles: body.roles,
        expires_at: body.expires_at,
        allowed_ips: body.allowed_ips,
    };
    let (row, key) = login.create_key(me, new).await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({
            "id": row.id,
            "key": key,
            "name": row.name,
            "roles": row.roles,
            "expires_at": row.expires_at.map(rfc3339),
        }),
    ))
}

/// A Bearer token only: a cookie would let another site's page change the account, and an
/// API key is refused (403) rather than ignored.
pub(super) async fn bearer_only(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<crate::auth::Identity, Refused> {
    const KINDS: &[CredentialKind] = &[CredentialKind::Jwt, CredentialKind::ApiKey];
    let caller = identify(req, login, KINDS).await?;
    if caller.method == AuthMethod::ApiKey {
        return Err(GatewayError::InsufficientScope(
            "needs an access token of a login here, not an API key",
        )
        .into());
    }
    Ok(caller)
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

fn json_response(status: StatusCode, v: Value) -> super::LocalResponse {
    super::LocalResponse::json(status, to_json(&v))
}
