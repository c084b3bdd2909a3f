//! Recovery and verification on the wire (docs/CONFIG.md, `[mail]`): `forgot` and `resend`
//! answer 202 whoever is named; `reset` answers a token pair (and the session cookies).

use http::StatusCode;

use super::paths::RecoveryEndpoint;
use super::{fields, pair_response, EndpointRequest};
use crate::error::GatewayError;
use crate::login::recovery::Named;
use crate::login::{Login, Refused};
use crate::response::LocalResponse;

pub(super) async fn answer(
    endpoint: RecoveryEndpoint,
    req: &EndpointRequest<'_>,
    login: &Login<'_>,
) -> Result<LocalResponse, Refused> {
    // Another site's page could spend a visitor's login budget, or start mails, through
    // their browser: browsers say where a request comes from.
    let cross_site = req
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return Err(GatewayError::InvalidOrigin.into());
    }
    match endpoint {
        RecoveryEndpoint::Forgot => {
            let f = fields(req)?;
            login.forgot(named(&f)?).await?;
            Ok(LocalResponse::empty(StatusCode::ACCEPTED))
        }
        RecoveryEndpoint::Reset => {
            let mut f = fields(req)?;
            let token = f.required("token")?.to_string();
            f.required("new_password")?;
            let new = f.take("new_password").unwrap_or_default();
            let pair = login.reset(&token, new).await?;
            Ok(pair_response(&pair, login.settings)?)
        }
        RecoveryEndpoint::Verify => {
            let f = fields(req)?;
            login.verify(f.required("token")?).await?;
            Ok(LocalResponse::empty(StatusCode::NO_CONTENT))
        }
        RecoveryEndpoint::Resend => {
            if req.headers.contains_key(http::header::AUTHORIZATION) {
                let me = login
                    .me(super::account::bearer_only(req, login).await?)
                    .await?;
                login.resend(Named::Username(&me.user.username)).await?;
            } else {
                let f = fields(req)?;
                login.resend(named(&f)?).await?;
            }
            Ok(LocalResponse::empty(StatusCode::ACCEPTED))
        }
    }
}

/// `username` or `email`, one of them.
fn named<'f>(f: &'f super::body::Fields) -> Result<Named<'f>, GatewayError> {
    match (f.get("username"), f.get("email")) {
        (Some(u), None) => Ok(Named::Username(u)),
        (None, Some(e)) => Ok(Named::Email(e)),
        _ => Err(GatewayError::InvalidRequest(
            "username or email, one of them",
        )),
    }
}
