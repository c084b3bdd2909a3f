//! `/auth/oidc/{name}/...` (docs/CONFIG.md, `[[oidc]]`): the HTTP side of signing in with an
//! OpenID Provider. Redirects, the browser's binding cookie and the session cookies here;
//! the protocol in `login::federated`.

use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};

use super::paths::{oidc_path, OidcEndpoint};
use super::{fields, identify, EndpointRequest};
use crate::auth::facts::TokenFacts;
use crate::auth::jwt::TokenUse;
use crate::config::LoginSettings;
use crate::error::GatewayError;
use crate::login::federated::{Callback, LOGIN_STATE_TTL};
use crate::login::{Login, Refused};
use crate::policy::CredentialKind;
use crate::response::LocalResponse;
use crate::runtime::Provider;

/// The cookie that binds a started sign-in to the browser that started it.
pub(super) const BINDING_COOKIE: &str = "portcullis_oidc";

/// The `[[oidc]]` provider a path under `/oidc/` names, if configured.
pub(super) fn provider<'r>(
    sub_path: &str,
    runtime: &'r crate::runtime::Runtime,
) -> Option<&'r Provider> {
    runtime.provider(oidc_path(sub_path)?.0)
}

pub(super) async fn answer(
    endpoint: OidcEndpoint,
    provider: &Provider,
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<LocalResponse, Refused> {
    let settings = login.settings;
    let query = |name: &str| query_value(req.query, name);
    match endpoint {
        OidcEndpoint::Start => {
            let rd = query("rd");
            let started = login.oidc_start(provider, rd.as_deref()).await?;
            let binding = binding_cookie(settings, &started.binding, LOGIN_STATE_TTL)?;
            Ok(found(&started.location)?.header(SET_COOKIE, binding))
        }
        OidcEndpoint::Callback => {
            let (state, code, iss) = (query("state"), query("code"), query("iss"));
            let (error, error_description) = (query("error"), query("error_description"));
            let answer = Callback {
                state: state.as_deref(),
                code: code.as_deref(),
                iss: iss.as_deref(),
                error: error.as_deref(),
                error_description: error_description.as_deref(),
            };
            let binding = cookie_value(req, BINDING_COOKIE);
            let signed_in = login.oidc_callback(provider, &answer, binding).await?;
            let pair = &signed_in.pair;
            let mut resp = found(&signed_in.rd)?;
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
        OidcEndpoint::Logout => {
            // A navigation from another site (a link, a form, an image) signs nobody out:
            // browsers send no `Origin` on a GET, but they say where it came from.
            let cross_site = req
                .headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
            if cross_site {
                return Err(GatewayError::InvalidOrigin.into());
            }
            let sid = session_of(req, login).await;
            let rd = query("rd");
            let location = login
                .oidc_logout(provider, sid.as_deref(), rd.as_deref())
                .await?;
            let mut resp = found(&location)?;
            if let Some(cookie) = &settings.cookie {
                for clear in cookie.set_pair("", 0, "", 0)? {
                    resp = resp.header(SET_COOKIE, clear);
                }
            }
            Ok(resp)
        }
        OidcEndpoint::BackchannelLogout => {
            let fields = fields(req)?;
            let token = fields.required("logout_token")?;
            login.oidc_backchannel(provider, token).await?;
            Ok(LocalResponse::empty(StatusCode::OK))
        }
    }
}

/// The session the request is signed in with: its access token's (a Bearer or the cookie),
/// else its refresh cookie's (the access cookie is gone once `access_ttl` has passed).
async fn session_of(req: &EndpointRequest<'_>, login: &Login<'_>) -> Option<String> {
    const KINDS: &[CredentialKind] = &[CredentialKind::Jwt, CredentialKind::Cookie];
    if let Ok(caller) = identify(req, login, KINDS).await {
        return TokenFacts::of(&caller.claims).sid.map(str::to_string);
    }
    let cookie = login.settings.cookie.as_ref()?;
    let refresh = cookie_value(req, &cookie.refresh_name())?;
    let verifier = &login.runtime.verifier;
    let token = verifier
        .verify_as(refresh, login.now, TokenUse::Refresh)
        .ok()?;
    TokenFacts::of(&token.claims).sid.map(str::to_string)
}

/// 302 to `location` (made here: a header value unless it is broken).
fn found(location: &str) -> Result<LocalResponse, GatewayError> {
    let value = HeaderValue::try_from(location).map_err(|_| GatewayError::Unavailable)?;
    Ok(LocalResponse::empty(StatusCode::FOUND).header(LOCATION, value))
}

/// `portcullis_oidc=value`: HttpOnly, under the base path, `SameSite=Lax` (the provider's
/// redirect back is a cross-site navigation), `Secure` as the session cookie is.
pub(super) fn binding_cookie(
    settings: &LoginSettings,
    value: &str,
    max_age: u64,
) -> Result<HeaderValue, GatewayError> {
    let secure = settings.cookie.as_ref().is_none_or(|c| c.secure);
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{BINDING_COOKIE}={value}; Path={}; Max-Age={max_age}; HttpOnly{secure}; SameSite=Lax",
        settings.base_path
    );
    HeaderValue::try_from(text).map_err(|_| GatewayError::Unavailable)
}

/// The first value of `name` in a query string, decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of the cookie `name`, when the request carries it once.
fn cookie_value<'h>(req: &EndpointRequest<'h>, name: &str) -> Option<&'h str> {
    let mut found = req
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        });
    let value = found.next()?;
    found.next().is_none().then_some(value)
}
