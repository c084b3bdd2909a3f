//! The one refusal type of the request pipeline and its exact wire form (SPEC section 3).
//!
//! Every variant maps to a status, an `error` code and a public description. Internal error
//! text never reaches a response body: descriptions are fixed strings chosen here.

use http::StatusCode;

/// Why a request was refused. `&'static str` descriptions keep refusals allocation-free and
/// guarantee that nothing a client sent, and no internal error chain, is echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// 400: a refused path, two credentials, malformed input.
    InvalidRequest(&'static str),
    /// 401: no credential on a `required` route.
    MissingCredentials,
    /// 401: a credential that is unparseable, invalid, expired, revoked or of the wrong kind.
    InvalidToken(&'static str),
    /// 403: authenticated, but roles, permissions or ownership refuse it.
    InsufficientScope(&'static str),
    /// 404: no route, or an unknown path under the login base path.
    NotFound,
    /// 413: a body over 64 KiB on a built-in endpoint.
    PayloadTooLarge,
    /// 431: request headers over the limit.
    HeadersTooLarge,
    /// 429: a rate-limit policy refused it; the headers come from the policy's decision.
    RateLimited,
    /// 502: the upstream could not be reached or answered badly.
    BadGateway,
    /// 504: the upstream was too slow.
    GatewayTimeout,
    /// 503: shared state is needed but unreachable.
    Unavailable,
    /// 405: a built-in endpoint called with the wrong method.
    MethodNotAllowed,
    /// 401: login with an unknown user, a wrong password or a disabled user (one body for all).
    InvalidCredentials,
    /// 401: the password was right; a second factor is needed (the body adds `mfa_token`).
    MfaRequired,
    /// 401: a wrong TOTP or backup code.
    InvalidCode,
    /// 401: a refresh token or `mfa_token` that is invalid, expired, spent or revoked
    /// (400 on the RFC 6749 token endpoint).
    InvalidGrant(&'static str),
    /// 400: the token endpoint does not know the `grant_type`.
    UnsupportedGrantType,
    /// 429: too many failed logins for this username.
    AccountLocked,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::MissingCredentials => StatusCode::UNAUTHORIZED,
            GatewayError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            GatewayError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BadGateway => StatusCode::BAD_GATEWAY,
            GatewayError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::InvalidCredentials
            | GatewayError::MfaRequired
            | GatewayError::InvalidCode
            | GatewayError::InvalidGrant(_) => StatusCode::UNAUTHORIZED,
            GatewayError::UnsupportedGrantType => StatusCode::BAD_REQUEST,
            GatewayError::AccountLocked => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The `error` field of the JSON body; also the `reason` label in logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::MissingCredentials => "missing_credentials",
            GatewayError::InvalidToken(_) => "invalid_token",
            GatewayError::InsufficientScope(_) => "insufficient_scope",
            GatewayError::NotFound => "not_found",
            GatewayError::PayloadTooLarge => "payload_too_large",
            GatewayError::HeadersTooLarge => "invalid_request",
            GatewayError::RateLimited => "rate_limited",
            GatewayError::BadGateway => "bad_gateway",
            GatewayError::GatewayTimeout => "gateway_timeout",
            GatewayError::Unavailable => "unavailable",
            GatewayError::MethodNotAllowed => "invalid_request",
            GatewayError::InvalidCredentials => "invalid_credentials",
            GatewayError::MfaRequired => "mfa_required",
            GatewayError::InvalidCode => "invalid_code",
            GatewayError::InvalidGrant(_) => "invalid_grant",
            GatewayError::UnsupportedGrantType => "unsupported_grant_type",
            GatewayError::AccountLocked => "account_locked",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(d)
            | GatewayError::InvalidToken(d)
            | GatewayError::InsufficientScope(d)
            | GatewayError::InvalidGrant(d) => d,
            GatewayError::MissingCredentials => "authentication required",
            GatewayError::NotFound => "no route for this path",
            GatewayError::PayloadTooLarge => "request body too large",
            GatewayError::HeadersTooLarge => "request headers too large",
            GatewayError::RateLimited => "rate limit exceeded",
            GatewayError::BadGateway => "upstream unreachable",
            GatewayError::GatewayTimeout => "upstream timed out",
            GatewayError::Unavailable => "shared state unavailable",
            GatewayError::MethodNotAllowed => "method not allowed",
            GatewayError::InvalidCredentials => "invalid username or password",
            GatewayError::MfaRequired => "a one-time code is required",
            GatewayError::InvalidCode => "invalid one-time code",
            GatewayError::UnsupportedGrantType => "unsupported grant_type",
            GatewayError::AccountLocked => "too many failed attempts: try again later",
        }
    }

    /// The RFC 6750 challenge, for the refusals that carry one.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            GatewayError::MissingCredentials => Some(r#"Bearer realm="portcullis""#.to_string()),
            GatewayError::InvalidToken(d) => Some(format!(
                r#"Bearer realm="portcullis", error="invalid_token", error_description="{d}""#
            )),
            GatewayError::InsufficientScope(d) => Some(format!(
                r#"Bearer realm="portcullis", error="insufficient_scope", error_description="{d}""#
            )),
            GatewayError::InvalidRequest(_)
            | GatewayError::NotFound
            | GatewayError::PayloadTooLarge
            | GatewayError::HeadersTooLarge
            | GatewayError::RateLimited
            | GatewayError::BadGateway
            | GatewayError::GatewayTimeout
            | GatewayError::Unavailable
            | GatewayError::MethodNotAllowed
            | GatewayError::InvalidCredentials
            | GatewayError::MfaRequired
            | GatewayError::InvalidCode
            | GatewayError::InvalidGrant(_)
            | GatewayError::UnsupportedGrantType
            | GatewayError::AccountLocked => None,
        }
    }

    /// The JSON body: `{"error", "error_description", "request_id"}`.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": self.code(),
            "error_description": self.description(),
            "request_id": request_id,
        }))
        .expect("a JSON object of strings always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every variant's wire form to SPEC section 3's table.
    #[test]
    fn every_refusal_matches_the_spec_table() {
        let table = [
            (
                GatewayError::InvalidRequest("x"),
                400,
                "invalid_request",
                false,
            ),
            (
                GatewayError::MissingCredentials,
                401,
                "missing_credentials",
                true,
            ),
            (GatewayError::InvalidToken("x"), 401, "invalid_token", true),
            (
                GatewayError::InsufficientScope("x"),
                403,
                "insufficient_scope",
                true,
            ),
            (GatewayError::NotFound, 404, "not_found", false),
            (
                GatewayError::PayloadTooLarge,
                413,
                "payload_too_large",
                false,
            ),
            (GatewayError::HeadersTooLarge, 431, "invalid_request", false),
            (GatewayError::RateLimited, 429, "rate_limited", false),
            (GatewayError::BadGateway, 502, "bad_gateway", false),
            (GatewayError::GatewayTimeout, 504, "gateway_timeout", false),
            (GatewayError::Unavailable, 503, "unavailable", false),
            (
                GatewayError::MethodNotAllowed,
                405,
                "invalid_request",
                false,
            ),
            (
                GatewayError::InvalidCredentials,
                401,
                "invalid_credentials",
                false,
            ),
            (GatewayError::MfaRequired, 401, "mfa_required", false),
            (GatewayError::InvalidCode, 401, "invalid_code", false),
            (GatewayError::InvalidGrant("x"), 401, "invalid_grant", false),
            (
                GatewayError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
                false,
            ),
            (GatewayError::AccountLocked, 429, "account_locked", false),
        ];
        for (err, status, code, challenges) in table {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            assert_eq!(err.www_authenticate().is_some(), challenges, "{err:?}");
            let body: serde_json::Value = serde_json::from_slice(&err.body("rid")).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(body["request_id"], "rid");
        }
        assert_eq!(
            GatewayError::InvalidToken("token expired")
                .www_authenticate()
                .unwrap(),
            r#"Bearer realm="portcullis", error="invalid_token", error_description="token expired""#
        );
    }
}
