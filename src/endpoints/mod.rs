//! The built-in endpoints under `[login].base_path` (SPEC section 4): the HTTP side of
//! `login`. They take the request as a value and give back the response, the refusal to log
//! and the rate-limit tally; the proxy reads the body and writes the answer.

mod account;
pub(crate) mod body;

use std::net::IpAddr;

use http::header::{ALLOW, CACHE_CONTROL, PRAGMA, SET_COOKIE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::accounts::password::PasswordPool;
use crate::auth::credentials::{self, Credential};
use crate::auth::jwt::VerifiedToken;
use crate::config::{LoginSettings, OnFailure};
use crate::error::{GatewayError, TokenError};
use crate::login::{Login, Refused, TokenFacts, TokenPair};
use crate::policy::cors;
use crate::policy::CredentialKind;
use crate::ratelimit::{KeyInput, Tally};
use crate::response::{LocalResponse, Refusal};
use crate::runtime::Runtime;
use crate::store::Store;
use body::Fields;

/// A request to a built-in endpoint, as the proxy read it.
pub(crate) struct EndpointRequest<'a> {
    pub method: &'a Method,
    /// What follows the base path.
    pub sub_path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The whole body (the proxy refused one over [`body::MAX_BODY`]).
    pub body: &'a [u8],
    /// The client IP as `ip` rate-limit keys count it.
    pub limit_ip: Option<IpAddr>,
    /// The client IP itself (what a session records).
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a str,
    /// The origin the request was sent to (scheme and host): the session cookie is taken on
    /// an unsafe method only from it or an allowed origin.
    pub own_origin: Option<String>,
}

/// What the endpoints need besides the request.
pub(crate) struct Services<'a> {
    pub runtime: &'a Runtime,
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordPool,
    pub now: u64,
}

/// An endpoint's answer, the refusal it logs (if it refused) and the login budget's tally.
pub(crate) struct Served {
    pub response: LocalResponse,
    pub refusal: Option<GatewayError>,
    pub limits: Tally,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Login,
    Mfa,
    Refresh,
    Token,
    Logout,
    UserInfo,
    // Self-service over users_db (SPEC section 7).
    Register,
    Password,
    Sessions,
    /// `/sessions/{sid}`.
    Session,
    ApiKeys,
    /// `/api-keys/{id}`.
    ApiKey,
    MfaSetup,
    MfaEnable,
    MfaDisable,
}

impl Endpoint {
    fn from_path(sub_path: &str) -> Option<Self> {
        let one_below = |prefix: &str| {
            sub_path
                .strip_prefix(prefix)
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        };
        Some(match sub_path {
            "/login" => Endpoint::Login,
            "/mfa" => Endpoint::Mfa,
            "/refresh" => Endpoint::Refresh,
            "/token" => Endpoint::Token,
            "/logout" => Endpoint::Logout,
            "/userinfo" => Endpoint::UserInfo,
            "/register" => Endpoint::Register,
            "/password" => Endpoint::Password,
            "/sessions" => Endpoint::Sessions,
            "/api-keys" => Endpoint::ApiKeys,
            "/mfa/setup" => Endpoint::MfaSetup,
            "/mfa/enable" => Endpoint::MfaEnable,
            "/mfa/disable" => Endpoint::MfaDisable,
            _ if one_below("/sessions/") => Endpoint::Session,
            _ if one_below("/api-keys/") => Endpoint::ApiKey,
            _ => return None,
        })
    }

    fn allowed(self) -> &'static str {
        match self {
            Endpoint::UserInfo | Endpoint::Sessions => "GET, HEAD",
            Endpoint::ApiKeys => "GET, HEAD, POST",
            Endpoint::Session | Endpoint::ApiKey => "DELETE",
            _ => "POST",
        }
    }

    fn allows(self, method: &Method) -> bool {
        self.allowed().split(", ").any(|m| m == method.as_str())
    }

    /// Login, token, mfa and register share the `[login].rate_limit` budget.
    fn is_rate_limited(self) -> bool {
        matches!(
            self,
            Endpoint::Login | Endpoint::Token | Endpoint::Mfa | Endpoint::Register
        )
    }

    fn is_self_service(self) -> bool {
        matches!(
            self,
            Endpoint::Register
                | Endpoint::Password
                | Endpoint::Sessions
                | Endpoint::Session
                | Endpoint::ApiKeys
                | Endpoint::ApiKey
                | Endpoint::MfaSetup
                | Endpoint::MfaEnable
                | Endpoint::MfaDisable
        )
    }
}

/// Serves one request under the base path.
pub(crate) async fn serve(req: &EndpointRequest<'_>, services: &Services<'_>) -> Served {
    let endpoint = Endpoint::from_path(req.sub_path);
    let oauth = endpoint == Some(Endpoint::Token);
    let mut limits = Tally::default();
    let answer = match endpoint {
        None => Err(Refused::Error(GatewayError::NotFound)),
        Some(e) => run(e, req, services, &mut limits).await,
    };
    let (mut response, refusal) = match answer {
        Ok(response) => (response, None),
        Err(refused) => {
            let refusal = refusal(refused, oauth);
            let mut response = refusal.render(req.request_id);
            if refusal.error == GatewayError::MethodNotAllowed {
                response = response.header(ALLOW, allowed_methods(req.sub_path));
            }
            (response, Some(refusal.logged_error()))
        }
    };
    if !response.has_header(&CACHE_CONTROL) {
        response = response.header(CACHE_CONTROL, "no-store");
    }
    if oauth {
        response = response.header(PRAGMA, "no-cache");
    }
    Served {
        response,
        refusal,
        limits,
    }
}

async fn run(
    endpoint: Endpoint,
    req: &EndpointRequest<'_>,
    services: &Services<'_>,
    limits: &mut Tally,
) -> Result<LocalResponse, Refused> {
    let runtime = services.runtime;
    let config = &runtime.config;
    let settings = config.login.as_ref().ok_or(GatewayError::NotFound)?;
    let signer = config.signer.as_ref().ok_or(GatewayError::NotFound)?;
    // Self-service exists with users_db only, registration while it is on: otherwise 404
    // whatever the method.
    let off = (endpoint.is_self_service() && runtime.accounts.is_none())
        || (endpoint == Endpoint::Register && settings.registration.is_none());
    if off {
        return Err(GatewayError::NotFound.into());
    }
    let stale = !services.store.is_fresh(config.store.max_staleness);
    if stale && config.store.on_failure == OnFailure::Closed {
        return Err(GatewayError::Unavailable.into());
    }
    if !endpoint.allows(req.method) {
        return Err(GatewayError::MethodNotAllowed.into());
    }
    if endpoint.is_rate_limited() {
        if let Some(id) = settings.rate_limit {
            let input = KeyInput {
                client_ip: req.limit_ip,
                route: "login",
                headers: req.headers,
                caller: None,
            };
            limits.check([(0, runtime.policy(id))], &input).await?;
        }
    }
    let login = Login {
        runtime,
        settings,
        signer,
        store: services.store,
        passwords: services.passwords,
        now: services.now,
        request_id: req.request_id,
        client_ip: req.client_ip,
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    answer(endpoint, req, &login).await
}

async fn answer(
    endpoint: Endpoint,
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<LocalResponse, Refused> {
    let settings = login.settings;
    if endpoint.is_self_service() {
        return account::answer(endpoint, req, login).await;
    }
    match endpoint {
        Endpoint::Login => {
            let mut fields = fields(req)?;
            let username = fields.required("username")?.to_string();
            fields.required("password")?;
            let password = fields.take("password").unwrap_or_default();
            let code = fields.take("totp");
            let pair = login.password(&username, password, code.as_deref()).await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Mfa => {
            let fields = fields(req)?;
            let pair = login
                .mfa(fields.required("mfa_token")?, fields.required("code")?)
                .await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Refresh => {
            let fields = fields(req)?;
            let pair = login.refresh(fields.required("refresh_token")?).await?;
            Ok(pair_response(&pair, settings))
        }
        Endpoint::Token => token_grant(req, login).await,
        Endpoint::Logout => {
            let token = access_token(req, login, true)?;
            login.logout(&token, query_flag(req.query, "all")).await?;
            let mut resp = LocalResponse::empty(StatusCode::NO_CONTENT);
            if let Some(cookie) = &settings.cookie {
                resp = resp.header(SET_COOKIE, cookie.set_cookie("", 0));
            }
            Ok(resp)
        }
        Endpoint::UserInfo => {
            let token = access_token(req, login, true)?;
            Ok(LocalResponse::json(StatusCode::OK, userinfo(login, &token)))
        }
        _ => Err(GatewayError::NotFound.into()),
    }
}

/// `POST /auth/token`: RFC 6749's password and refresh_token grants.
async fn token_grant(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<LocalResponse, Refused> {
    let mut fields = fields(req)?;
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

fn fields(req: &EndpointRequest<'_>) -> Result<Fields, GatewayError> {
    Fields::parse(body::content_type(req.headers), req.body)
}

/// The caller's access token (Bearer, or with `cookie` the session cookie), verified and
/// not revoked.
fn access_token(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
    cookie: bool,
) -> Result<VerifiedToken, GatewayError> {
    let cookie = cookie
        .then(|| login.settings.cookie.as_ref().map(|c| c.name.as_str()))
        .flatten();
    let accepts = |k| matches!(k, CredentialKind::Jwt | CredentialKind::Cookie);
    let token = match credentials::find(req.headers, accepts, cookie)? {
        Some(Credential::Bearer(t)) => t,
        Some(Credential::Cookie(t)) => {
            let cors = login.runtime.config.cors.as_ref();
            let own = req.own_origin.as_deref();
            if !cors::is_safe(req.method) && !cors::cross_site_allowed(req.headers, own, cors) {
                return Err(GatewayError::InvalidOrigin);
            }
            t
        }
        Some(Credential::ApiKey(_)) | None => return Err(GatewayError::MissingCredentials),
    };
    let verified = login
        .runtime
        .verifier
        .verify(token, login.now)
        .map_err(GatewayError::InvalidToken)?;
    let presented = TokenFacts::of(&verified).presented(&verified.subject);
    if login.store.is_revoked(&presented, login.now) {
        return Err(GatewayError::InvalidToken(TokenError::Revoked));
    }
    Ok(verified)
}

/// `{"sub", "roles" (effective), "permissions", "claims"}`.
fn userinfo(login: &Login<'_>, token: &VerifiedToken) -> Vec<u8> {
    let grants = login
        .runtime
        .config
        .roles
        .grants(&token.roles, &token.permissions);
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

/// How a login step's refusal is rendered.
fn refusal(refused: Refused, oauth: bool) -> Refusal {
    let mut r = match refused {
        Refused::Error(e) => Refusal::new(e),
        Refused::MfaRequired(token) => Refusal {
            mfa_token: Some(token),
            ..Refusal::new(GatewayError::MfaRequired)
        },
        Refused::Locked(secs) => Refusal {
            retry_after: Some(secs),
            ..Refusal::new(GatewayError::AccountLocked)
        },
        Refused::WeakPassword(rule) => Refusal {
            description: Some(rule),
            ..Refusal::new(GatewayError::WeakPassword)
        },
    };
    r.oauth = oauth;
    r
}

/// The `Allow` header of a 405 from this endpoint.
fn allowed_methods(sub_path: &str) -> &'static str {
    Endpoint::from_path(sub_path).map_or("POST", Endpoint::allowed)
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
