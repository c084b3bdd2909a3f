//! The built-in endpoints under `[login].base_path` (SPEC section 4): the HTTP side of
//! `login`. Every answer is JSON with `Cache-Control: no-store`.

pub mod body;

use http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER, SET_COOKIE};
use http::{Method, StatusCode};
use pingora::proxy::Session;
use serde_json::{json, Map, Value};

use crate::auth::credentials::{self, Credential};
use crate::auth::jwt::VerifiedToken;
use crate::config::OnFailure;
use crate::error::GatewayError;
use crate::login::password::PasswordPool;
use crate::login::{Login, LoginSettings, Refused, TokenFacts, TokenPair};
use crate::policy::CredentialKind;
use crate::proxy::respond::LocalResponse;
use crate::proxy::RequestCtx;
use crate::ratelimit::KeyInput;
use crate::store::Store;
use body::Fields;

/// What the endpoints need besides the request.
pub struct Services<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordPool,
    pub now: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Login,
    Mfa,
    Refresh,
    Token,
    Logout,
    UserInfo,
}

impl Endpoint {
    fn from_path(sub_path: &str) -> Option<Self> {
        Some(match sub_path {
            "/login" => Endpoint::Login,
            "/mfa" => Endpoint::Mfa,
            "/refresh" => Endpoint::Refresh,
            "/token" => Endpoint::Token,
            "/logout" => Endpoint::Logout,
            "/userinfo" => Endpoint::UserInfo,
            _ => return None,
        })
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Endpoint::UserInfo => method == Method::GET || method == Method::HEAD,
            _ => method == Method::POST,
        }
    }

    /// Login, token and mfa share the `[login].rate_limit` budget.
    fn is_rate_limited(self) -> bool {
        matches!(self, Endpoint::Login | Endpoint::Token | Endpoint::Mfa)
    }
}

/// Serves `sub_path` (what follows the base path). Refusals are recorded in `ctx.refusal`.
pub async fn serve(
    session: &mut Session,
    ctx: &mut RequestCtx,
    services: Services<'_>,
    sub_path: &str,
) -> LocalResponse {
    let endpoint = Endpoint::from_path(sub_path);
    let oauth = endpoint == Some(Endpoint::Token);
    let response = match endpoint {
        None => Err(Refused::Error(GatewayError::NotFound)),
        Some(e) => run(e, session, ctx, &services).await,
    };
    let mut response = response.unwrap_or_else(|refused| refusal(ctx, refused, oauth));
    if !response.headers.iter().any(|(k, _)| k == CACHE_CONTROL) {
        response = response.header(CACHE_CONTROL, "no-store");
    }
    if oauth {
        response.header(PRAGMA, "no-cache")
    } else {
        response
    }
}

async fn run(
    endpoint: Endpoint,
    session: &mut Session,
    ctx: &mut RequestCtx,
    services: &Services<'_>,
) -> Result<LocalResponse, Refused> {
    let config = ctx.config.clone();
    let settings = config.login.as_ref().ok_or(GatewayError::NotFound)?;
    let signer = config.signer.as_ref().ok_or(GatewayError::NotFound)?;
    let stale = !services.store.is_fresh(config.store.max_staleness);
    if stale && config.store.on_failure == OnFailure::Closed {
        return Err(GatewayError::Unavailable.into());
    }
    if !endpoint.allows(&session.req_header().method) {
        let allow = if endpoint == Endpoint::UserInfo {
            "GET, HEAD"
        } else {
            "POST"
        };
        ctx.refusal = Some(GatewayError::MethodNotAllowed);
        return Ok(
            LocalResponse::refusal(&GatewayError::MethodNotAllowed, &ctx.request_id)
                .header(http::header::ALLOW, allow),
        );
    }
    if endpoint.is_rate_limited() {
        if let Some(policy) = &settings.rate_limit {
            let input = KeyInput {
                client_ip: ctx.client_ip.map(|ip| config.server.limit_ip(ip)),
                route: "login",
                headers: &session.req_header().headers,
                identity: None,
            };
            ctx.rate_limit.check([(0, &**policy)], &input).await?;
        }
    }
    let login = Login {
        config: &config,
        settings,
        signer,
        store: services.store,
        passwords: services.passwords,
        now: services.now,
        request_id: &ctx.request_id,
    };
    match endpoint {
        Endpoint::Login => {
            let mut fields = fields(session).await?;
            let username = fields.required("username")?.to_string();
            fields.required("password")?;
            let password = fields.take("password").unwrap_or_default();
            let code = fields.take("totp");
            let pair = login.password(&username, password, code.as_deref()).await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Mfa => {
            let fields = fields(session).await?;
            let pair = login
                .mfa(fields.required("mfa_token")?, fields.required("code")?)
                .await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Refresh => {
            let fields = fields(session).await?;
            let pair = login.refresh(fields.required("refresh_token")?).await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Token => {
            let mut fields = fields(session).await?;
            let pair = match fields.required("grant_type")? {
                "password" => {
                    let username = fields.required("username")?.to_string();
                    fields.required("password")?;
                    let password = fields.take("password").unwrap_or_default();
                    login.password(&username, password, None).await?
                }
                "refresh_token" => login.refresh(fields.required("refresh_token")?).await?,
                _ => return Err(GatewayError::UnsupportedGrantType.into()),
            };
            Ok(LocalResponse::json(StatusCode::OK, to_json(&pair)))
        }
        Endpoint::Logout => {
            let token = access_token(session, &login)?;
            let all = query_flag(session.req_header().uri.query(), "all");
            login.logout(&token, all).await?;
            let mut resp = LocalResponse::empty(StatusCode::NO_CONTENT);
            if let Some(cookie) = &settings.cookie {
                resp = resp.header(SET_COOKIE, cookie.set_cookie("", 0));
            }
            Ok(resp)
        }
        Endpoint::UserInfo => {
            let token = access_token(session, &login)?;
            Ok(LocalResponse::json(
                StatusCode::OK,
                userinfo(&login, &token),
            ))
        }
    }
}

async fn fields(session: &mut Session) -> Result<Fields, GatewayError> {
    let bytes = body::read(session).await?;
    Fields::parse(body::content_type(session), &bytes)
}

/// The caller's access token (Bearer, or the session cookie), verified and not revoked.
fn access_token(session: &Session, login: &Login<'_>) -> Result<VerifiedToken, GatewayError> {
    let cookie = login.settings.cookie.as_ref().map(|c| c.name.as_str());
    let accepts = |k| matches!(k, CredentialKind::Jwt | CredentialKind::Cookie);
    let token = match credentials::find(&session.req_header().headers, accepts, cookie)? {
        Some(Credential::Bearer(t) | Credential::Cookie(t)) => t,
        Some(Credential::ApiKey(_)) | None => return Err(GatewayError::MissingCredentials),
    };
    let verified = login
        .config
        .verifier
        .verify(token, login.now)
        .map_err(GatewayError::InvalidToken)?;
    if login.store.is_revoked(
        &TokenFacts::of(&verified).presented(&verified.subject),
        login.now,
    ) {
        return Err(GatewayError::InvalidToken("token revoked"));
    }
    Ok(verified)
}

/// `{"sub", "roles" (effective), "permissions", "claims"}`.
fn userinfo(login: &Login<'_>, token: &VerifiedToken) -> Vec<u8> {
    let grants = login.config.roles.grants(&token.roles, &token.permissions);
    const REGISTERED: &[&str] = &[
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "sid",
        "typ",
        "roles",
        "permissions",
    ];
    let claims: Map<String, Value> = token
        .claims
        .iter()
        .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    to_json(&json!({
        "sub": token.subject,
        "roles": grants.roles,
        "permissions": grants.permissions,
        "claims": claims,
    }))
}

/// `?name=true` (or `1`) in a query string.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == name && (v == "true" || v == "1"))
    })
}

fn pair_response(pair: &TokenPair, settings: &LoginSettings) -> LocalResponse {
    let resp = LocalResponse::json(StatusCode::OK, to_json(pair));
    match &settings.cookie {
        Some(cookie) => resp.header(
            SET_COOKIE,
            cookie.set_cookie(&pair.access_token, pair.expires_in),
        ),
        None => resp,
    }
}

/// The refusal's response. On the RFC 6749 token endpoint, errors are 400 with its codes
/// (a wrong password is `invalid_grant`), except 413, 429 and 503.
fn refusal(ctx: &mut RequestCtx, refused: Refused, oauth: bool) -> LocalResponse {
    let (err, extra, retry_after) = match refused {
        Refused::Error(e) => (e, None, None),
        Refused::MfaRequired(token) => (GatewayError::MfaRequired, Some(token), None),
        Refused::Locked(secs) => (GatewayError::AccountLocked, None, Some(secs)),
    };
    let err = match err {
        GatewayError::InvalidCredentials if oauth => {
            GatewayError::InvalidGrant("invalid username or password")
        }
        other => other,
    };
    ctx.refusal = Some(err);
    let status = match err.status().as_u16() {
        413 | 429 | 503 => err.status(),
        _ if oauth => StatusCode::BAD_REQUEST,
        _ => err.status(),
    };
    let mut body = json!({
        "error": err.code(),
        "error_description": err.description(),
        "request_id": ctx.request_id,
    });
    if let Some(token) = extra {
        body["mfa_token"] = token.into();
    }
    let mut resp = LocalResponse::json(status, to_json(&body));
    if let Some(challenge) = err.www_authenticate() {
        resp = resp.header(http::header::WWW_AUTHENTICATE, challenge);
    }
    if let Some(secs) = retry_after {
        resp = resp.header(RETRY_AFTER, secs.to_string());
    }
    resp
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flags() {
        assert!(query_flag(Some("all=true"), "all"));
        assert!(query_flag(Some("x=1&all=1"), "all"));
        assert!(!query_flag(Some("all=false"), "all"));
        assert!(!query_flag(None, "all"));
    }
}
