//! A browser session renewed in passing (docs/CONFIG.md, `[login] cookie`): a request whose
//! access cookie has expired, is gone, or expires within a fifth of `access_ttl`, but whose
//! refresh cookie is good, is served with a new pair, rotated as `/auth/refresh` rotates it
//! (concurrent requests of one page share the successor through `refresh_reuse_grace`); both
//! cookies are set on the answer. A server-rendered app behind the gateway keeps its users
//! signed in for as long as their session lives.

use http::header::{COOKIE, USER_AGENT};
use http::HeaderMap;

use super::ctx::RequestCtx;
use crate::auth::{AuthMethod, Identity};
use crate::caller::bound::Sender;
use crate::caller::{Accept, Asked, Unidentified};
use crate::error::{GatewayError, TokenError};
use crate::login::Login;
use crate::policy::CredentialKind;
use crate::runtime::Runtime;
use crate::services::Services;

/// The renewed access token, its cookies kept in `ctx` for the answer; `None` when the
/// session cookie needs no renewal or cannot be renewed (the refusal then stands).
pub(super) async fn renewed(
    services: &Services,
    runtime: &Runtime,
    ctx: &mut RequestCtx,
    asked: &Asked<'_>,
    outcome: &Result<Option<Identity>, Unidentified>,
    accept: Accept<'_>,
    now: u64,
) -> Option<String> {
    let config = &runtime.config;
    let settings = config.login.as_ref()?;
    let cookie = settings.cookie.as_ref()?;
    let signer = config.signer.as_ref()?;
    if !accept.counts(CredentialKind::Cookie) || !due(outcome, signer.access_ttl, now) {
        return None;
    }
    let headers = asked.headers;
    let refresh_token = cookie_value(headers, &cookie.refresh_name())?;
    let login = Login {
        services,
        runtime,
        settings,
        signer,
        now,
        request_id: &ctx.id.text,
        client_ip: ctx.client.ip,
        user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()),
        // A certificate-bound session renews on its certificate only (a browser has no
        // DPoP key).
        sender: Sender {
            proof_jkt: None,
            cert: asked.client_cert.map(|c| c.thumbprint.clone()),
            bind_cert: config.bind_to_certificate,
        },
    };
    let pair = match login.refresh(refresh_token).await {
        Ok(pair) => pair,
        Err(refused) => {
            tracing::debug!(?refused, "the session cookie could not be renewed");
            return None;
        }
    };
    let cookies = cookie
        .set_pair(
            &pair.access_token,
            pair.expires_in,
            &pair.refresh_token,
            pair.refresh_expires_in,
        )
        .ok()?;
    ctx.browser.set_cookies = cookies.to_vec();
    // The rotation's own `refresh` event, of the same request id, names the subject and sid.
    tracing::info!(target: "audit", event = "session_renewed", request_id = %ctx.id.text);
    Some(pair.access_token)
}

/// Whether identifying calls for a renewal: the session cookie expired or expiring within
/// `access_ttl`/5 (by its `exp`, leeway aside), or no credential at all (the browser drops an
/// expired cookie). A bearer token or an API key is never renewed.
fn due(outcome: &Result<Option<Identity>, Unidentified>, access_ttl: u64, now: u64) -> bool {
    match outcome {
        Ok(Some(id)) if id.method == AuthMethod::Cookie => {
            let exp = id.claims.get("exp").and_then(|v| v.as_u64()).unwrap_or(0);
            exp <= now + access_ttl / 5
        }
        Ok(Some(_)) => false,
        Ok(None) => true,
        Err(u) => match u.error {
            GatewayError::MissingCredentials => true,
            GatewayError::InvalidToken(TokenError::Expired) => u.by_cookie,
            _ => false,
        },
    }
}

/// The value of the cookie `name`, if the request carries it once.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = headers
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
