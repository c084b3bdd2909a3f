//! The built-in endpoints under `[login].base_path` (docs/CONFIG.md, `[login]`): the HTTP side
//! of `login`. They take the request as a value and give back the response, the refusal to
//! log and the rate-limit tally; the proxy reads the body and writes the answer.

mod account;
pub(crate) mod body;
mod oidc;
mod paths;
mod recovery;

pub(crate) use account::NewKeyBody;

use std::net::IpAddr;

use http::header::{ALLOW, CACHE_CONTROL, PRAGMA, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::auth::Identity;
use crate::caller::bound::Sender;
use crate::caller::{self, Accept, Asked};
use crate::config::{LoginSettings, OnFailure};
use crate::error::GatewayError;
use crate::login::{Login, Refused, TokenPair};
use crate::policy::cors::Site;
use crate::policy::CredentialKind;
use crate::ratelimit::{KeyInput, Tally};
use crate::response::{LocalResponse, Refusal};
use crate::runtime::Runtime;
use crate::services::Services;
use body::Fields;
use paths::{Endpoint, OidcEndpoint, SessionEndpoint};

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
    /// The client IP itself (what a session records, what a key's `allowed_ips` check).
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a str,
    /// How the gateway's own origin is told, and the request's authority: the session
    /// cookie is taken on an unsafe method only from the own or an allowed origin.
    pub site: Site,
    pub authority: Option<&'a str>,
    /// The request's whole path, normalised (a DPoP proof's `htu` names it).
    pub path: &'a str,
    pub client_cert: Option<&'a crate::client_tls::ClientCert>,
}

impl EndpointRequest<'_> {
    fn asked(&self) -> Asked<'_> {
        Asked {
            headers: self.headers,
            method: self.method,
            upgrade: false,
            client_ip: self.client_ip,
            site: self.site,
            authority: self.authority,
            renewed: None,
            sets_cookies: false,
            path: Some(self.path),
            client_cert: self.client_cert,
        }
    }
}

/// An endpoint's answer, the refusal it logs (if it refused) and the login budget's tally.
pub(crate) struct Served {
    pub response: LocalResponse,
    pub refusal: Option<GatewayError>,
    pub limits: Tally,
}

/// Serves one request under the base path, on `runtime` (the request's).
pub(crate) async fn serve(
    req: &EndpointRequest<'_>,
    services: &Services,
    runtime: &Runtime,
    now: u64,
) -> Served {
    let endpoint = Endpoint::from_path(req.sub_path);
    // RFC 6749's form (a refused grant is 400): the token endpoint, and the tokens of
    // recovery and verification.
    let oauth = matches!(
        endpoint,
        Some(Endpoint::Session(SessionEndpoint::Token) | Endpoint::Recovery(_))
    );
    let mut limits = Tally::default();
    let answer = match endpoint {
        None => Err(Refused::Error(GatewayError::NotFound)),
        Some(e) => run(e, req, services, runtime, now, &mut limits).await,
    };
    let (mut response, refusal) = match answer {
        Ok(response) => (response, None),
        Err(refused) => {
            let mut refusal = refusal(refused, oauth);
            // RFC 9449 section 5: the token endpoints refuse a proof with 400.
            let proofs = matches!(
                refusal.error,
                GatewayError::InvalidDpopProof(_) | GatewayError::UseDpopNonce
            );
            if proofs && endpoint.is_some_and(Endpoint::issues_tokens) {
                refusal.oauth = true;
            }
            let mut response = refusal.render(req.request_id);
            if let (GatewayError::MethodNotAllowed, Some(e)) = (refusal.error, endpoint) {
                response = response.header(ALLOW, HeaderValue::from_static(e.allowed()));
            }
            (response, Some(refusal.logged_error()))
        }
    };
    // A callback, whatever its outcome, ends the sign-in it finished: its binding is spent.
    if let (Some(Endpoint::Oidc(OidcEndpoint::Callback)), Some(settings)) =
        (endpoint, runtime.config.login.as_ref())
    {
        if let Ok(clear) = oidc::binding_cookie(settings, "", 0) {
            response = response.header(SET_COOKIE, clear);
        }
    }
    if !response.has_header(&CACHE_CONTROL) {
        response = response.header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if oauth {
        response = response.header(PRAGMA, HeaderValue::from_static("no-cache"));
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
    services: &Services,
    runtime: &Runtime,
    now: u64,
    limits: &mut Tally,
) -> Result<LocalResponse, Refused> {
    let config = &runtime.config;
    let settings = config.login.as_ref().ok_or(GatewayError::NotFound)?;
    let signer = config.signer.as_ref().ok_or(GatewayError::NotFound)?;
    // Self-service exists with users_db only, registration while it is on: otherwise 404
    // whatever the method.
    let off = match endpoint {
        Endpoint::Session(_) => false,
        Endpoint::Register => services.directory.is_none() || settings.registration.is_none(),
        Endpoint::Account(_) => services.directory.is_none(),
        Endpoint::Oidc(_) => oidc::provider(req.sub_path, runtime).is_none(),
        Endpoint::Recovery(_) => services.directory.is_none(),
    };
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
    if endpoint.checks_origin() {
        caller::check_login_origin(runtime, &req.asked())?;
    }
    if let (true, Some(id)) = (endpoint.is_rate_limited(), settings.rate_limit) {
        let input = KeyInput {
            client_ip: req.limit_ip,
            route: "login",
            headers: req.headers,
            caller: None,
        };
        limits.check([(0, runtime.policy(id))], &input).await?;
    }
    // The token endpoints bind what they issue to the request's DPoP key; every endpoint
    // that issues binds to the client certificate when `bind_to_certificate`.
    let asked = req.asked();
    let sender = match endpoint.issues_tokens() {
        true => Sender::of_request(config, services.store.as_ref(), &asked, now).await?,
        false => Sender {
            proof_jkt: None,
            cert: req.client_cert.map(|c| c.thumbprint.clone()),
            bind_cert: config.bind_to_certificate,
        },
    };
    let login = Login {
        sender,
        services,
        runtime,
        settings,
        signer,
        now,
        request_id: req.request_id,
        client_ip: req.client_ip,
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    match endpoint {
        Endpoint::Session(e) => answer(e, req, &login).await,
        Endpoint::Register => account::register(req, &login).await,
        Endpoint::Account(e) => account::answer(e, req, &login).await,
        Endpoint::Oidc(e) => {
            let provider = oidc::provider(req.sub_path, runtime).ok_or(GatewayError::NotFound)?;
            oidc::answer(e, provider, req, &login).await
        }
        Endpoint::Recovery(e) => recovery::answer(e, req, &login).await,
    }
}

async fn answer(
    endpoint: SessionEndpoint,
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<LocalResponse, Refused> {
    let settings = login.settings;
    match endpoint {
        SessionEndpoint::Login => {
            let mut fields = fields(req)?;
            let username = fields.required("username")?.to_string();
            fields.required("password")?;
            let password = fields.take("password").unwrap_or_default();
            let code = fields.take("totp");
            let pair = login.password(&username, password, code.as_deref()).await?;
            Ok(pair_response(&pair, settings)?)
        }
        SessionEndpoint::Mfa => {
            let fields = fields(req)?;
            let pair = login
                .mfa(fields.required("mfa_token")?, fields.required("code")?)
                .await?;
            Ok(pair_response(&pair, settings)?)
        }
        SessionEndpoint::Refresh => {
            let fields = fields(req)?;
            let pair = login.refresh(fields.required("refresh_token")?).await?;
            Ok(pair_response(&pair, settings)?)
        }
        SessionEndpoint::Token => token_grant(req, login).await,
        SessionEndpoint::Logout => {
            let caller = token_caller(req, login).await?;
            login.logout(&caller, query_flag(req.query, "all")).await?;
            let mut resp = LocalResponse::empty(StatusCode::NO_CONTENT);
            if let Some(cookie) = &settings.cookie {
                for clear in cookie.set_pair("", 0, "", 0)? {
                    resp = resp.header(SET_COOKIE, clear);
                }
            }
            Ok(resp)
        }
        SessionEndpoint::UserInfo => {
            let caller = token_caller(req, login).await?;
            Ok(LocalResponse::json(StatusCode::OK, userinfo(&caller)))
        }
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

/// The caller of logout and userinfo: an access token, as Bearer or the session cookie.
async fn token_caller(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<Identity, GatewayError> {
    const KINDS: &[CredentialKind] = &[CredentialKind::Jwt, CredentialKind::Cookie];
    identify(req, login, KINDS).await
}

/// The one `identify`, as the built-in endpoints ask it: one of `kinds`, required.
async fn identify(
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
    kinds: &[CredentialKind],
) -> Result<Identity, GatewayError> {
    let services = login.services;
    let keys = services.directory.as_deref().map(|d| d.keys.as_ref());
    let store = services.store.as_ref();
    let asked = req.asked();
    let found = caller::identify(
        login.runtime,
        store,
        keys,
        &asked,
        Accept::required(kinds),
        login.now,
    )
    .await?;
    found.ok_or(GatewayError::MissingCredentials)
}

/// `{"sub", "roles" (effective), "permissions", "claims"}`.
fn userinfo(caller: &Identity) -> Vec<u8> {
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
        "auth_time",
        "amr",
    ];
    let claims: Map<String, Value> = caller
        .claims
        .iter()
        .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    to_json(&json!({
        "sub": caller.subject,
        "roles": caller.grants.roles,
        "permissions": caller.grants.permissions,
        "claims": claims,
    }))
}

/// `?name=true` (or `1`) in a query string.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == name && (v == "true" || v == "1"))
    })
}

/// A token pair, and with the session cookie configured both cookies: the access token's
/// and the refresh token's, which renews the first in passing.
fn pair_response(
    pair: &TokenPair,
    settings: &LoginSettings,
) -> Result<LocalResponse, GatewayError> {
    let mut resp = LocalResponse::json(StatusCode::OK, to_json(pair));
    if let Some(cookie) = &settings.cookie {
        let cookies = cookie.set_pair(
            &pair.access_token,
            pair.expires_in,
            &pair.refresh_token,
            pair.refresh_expires_in,
        )?;
        for c in cookies {
            resp = resp.header(SET_COOKIE, c);
        }
    }
    Ok(resp)
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
        Refused::ProviderError(said) => Refusal {
            description: Some(said),
            ..Refusal::new(GatewayError::ProviderDenied)
        },
    };
    r.oauth = oauth;
    r
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
