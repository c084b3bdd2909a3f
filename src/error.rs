//! The one refusal type of the request pipeline and its exact wire form (docs/CONFIG.md, "Refusals").
//!
//! Every variant maps to a status, an `error` code and a public description. Internal error
//! text never reaches a response body: descriptions are fixed strings chosen here.

use http::StatusCode;

/// Why a token was refused: 401 `invalid_token` on the proxy, `invalid_grant` at the refresh
/// endpoints. Each has the public description the response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Empty,
    TooLarge,
    Malformed,
    CriticalHeader,
    UnsupportedAlgorithm,
    MissingIssuer,
    UnknownIssuer,
    /// A trusted issuer's token at the refresh endpoints.
    NotOurRefreshToken,
    UnknownKeyId,
    InvalidSignature,
    MissingExp,
    MalformedExp,
    MalformedNbf,
    MalformedIat,
    Expired,
    NotYetValid,
    IssuedInFuture,
    /// `exp` - `iat` over `[tokens] max_ttl`.
    LifetimeTooLong,
    WrongAudience,
    WrongType,
    MissingSubject,
    /// A subject with a control character: it could not be sent as the subject header.
    UnforwardableSubject,
    Revoked,
    /// A JWS naming its own key (`jwk`), or a DPoP proof, presented as an access token.
    EmbeddedKey,
    /// `cnf.x5t#S256` and the connection's client certificate differ (or there is none).
    CertificateBinding,
    /// A DPoP-bound token presented as `Bearer` (or a cookie): no downgrade.
    DpopBoundAsBearer,
    /// `DPoP` scheme with a token bound to another key, or to none.
    DpopBinding,
    /// The route is `sender_constrained` and the credential is not bound.
    NotSenderConstrained,
    /// A `cnf` this gateway cannot check.
    UnsupportedBinding,
}

impl TokenError {
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Empty => "empty token",
            TokenError::TooLarge => "token too large",
            TokenError::Malformed => "malformed token",
            TokenError::CriticalHeader => "unsupported critical header",
            TokenError::UnsupportedAlgorithm => "unsupported algorithm",
            TokenError::MissingIssuer => "missing issuer",
            TokenError::UnknownIssuer => "unknown issuer",
            TokenError::NotOurRefreshToken => "not a refresh token of this gateway",
            TokenError::UnknownKeyId => "unknown key id",
            TokenError::InvalidSignature => "invalid signature",
            TokenError::MissingExp => "missing exp",
            TokenError::MalformedExp => "malformed exp",
            TokenError::MalformedNbf => "malformed nbf",
            TokenError::MalformedIat => "malformed iat",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::LifetimeTooLong => "token lifetime exceeds max_ttl",
            TokenError::WrongAudience => "wrong audience",
            TokenError::WrongType => "wrong token type",
            TokenError::MissingSubject => "missing subject",
            TokenError::UnforwardableSubject => "subject cannot be forwarded",
            TokenError::Revoked => "token revoked",
            TokenError::EmbeddedKey => "a token may not carry its own key",
            TokenError::CertificateBinding => "certificate binding",
            TokenError::DpopBoundAsBearer => "a DPoP-bound token needs the DPoP scheme",
            TokenError::DpopBinding => "the token is not bound to the proof's key",
            TokenError::NotSenderConstrained => "sender-constrained token required",
            TokenError::UnsupportedBinding => "unsupported confirmation (cnf)",
        }
    }
}

/// Why an API key was refused (401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyError {
    Empty,
    Unknown,
    Expired,
    /// The client IP is not in the key's `allowed_ips`.
    NotFromThisAddress,
    Revoked,
}

impl ApiKeyError {
    pub fn description(self) -> &'static str {
        match self {
            ApiKeyError::Empty => "empty API key",
            ApiKeyError::Unknown => "unknown API key",
            ApiKeyError::Expired => "API key expired",
            ApiKeyError::NotFromThisAddress => "API key not allowed from this address",
            ApiKeyError::Revoked => "API key revoked",
        }
    }
}

/// Why a request was refused. `&'static str` descriptions keep refusals allocation-free and
/// guarantee that nothing a client sent, and no internal error chain, is echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// 400: a refused path, two credentials, malformed input.
    InvalidRequest(&'static str),
    /// 401: no credential on a `required` route.
    MissingCredentials,
    /// 401: a token that is unparseable, invalid, expired, revoked or of the wrong kind.
    InvalidToken(TokenError),
    /// 401: an unknown, expired, revoked or IP-refused API key.
    InvalidApiKey(ApiKeyError),
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
    /// 401 on the admin API: no, or not the, `[admin] token`.
    AdminTokenRequired,
    /// 400: a new password the policy refuses (the response says which rule).
    WeakPassword,
    /// 409: registering or creating a user whose name exists.
    UsernameTaken,
    /// 403: a cookie-authenticated unsafe request (or WebSocket upgrade) whose `Origin` (else
    /// `Referer`) is neither the gateway's own nor an allowed one: cross-site request forgery.
    InvalidOrigin,
    /// 403: a decision asked by a peer outside `trusted_proxies`, whose forwarded method and
    /// target cannot be believed.
    UntrustedProxy,
    /// 401 (RFC 9470): the credential shows no second factor, and the route requires one.
    SecondFactorRequired,
    /// 401 (RFC 9470): the login is older than this many seconds (`reauth_within`), and the
    /// change needs a recent one.
    RecentLoginRequired(u64),
    /// 409: the user holds `max_api_keys_per_user` keys already.
    TooManyKeys,
    /// 401: the OpenID Provider answered the sign-in with an `error`.
    ProviderDenied,
    /// 403: signed in at the OpenID Provider, but refused here (a disabled user, an unmet
    /// `require`).
    AccessDenied(&'static str),
    /// 403: the password was right, but `require_verified_email` and the email is not.
    EmailUnverified,
    /// 401 (400 at the token endpoints): a missing or bad DPoP proof (RFC 9449).
    InvalidDpopProof(&'static str),
    /// 401: `require_nonce` and the proof has no current nonce (the answer carries one).
    UseDpopNonce,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::MissingCredentials => StatusCode::UNAUTHORIZED,
            GatewayError::InvalidToken(_) | GatewayError::InvalidApiKey(_) => {
                StatusCode::UNAUTHORIZED
            }
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
            GatewayError::AdminTokenRequired => StatusCode::UNAUTHORIZED,
            GatewayError::WeakPassword => StatusCode::BAD_REQUEST,
            GatewayError::UsernameTaken => StatusCode::CONFLICT,
            GatewayError::InvalidOrigin | GatewayError::UntrustedProxy => StatusCode::FORBIDDEN,
            GatewayError::SecondFactorRequired | GatewayError::RecentLoginRequired(_) => {
                StatusCode::UNAUTHORIZED
            }
            GatewayError::TooManyKeys => StatusCode::CONFLICT,
            GatewayError::ProviderDenied => StatusCode::UNAUTHORIZED,
            GatewayError::AccessDenied(_) | GatewayError::EmailUnverified => StatusCode::FORBIDDEN,
            GatewayError::InvalidDpopProof(_) | GatewayError::UseDpopNonce => {
                StatusCode::UNAUTHORIZED
            }
        }
    }

    /// The `error` field of the JSON body; also the `reason` label in logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::MissingCredentials => "missing_credentials",
            GatewayError::InvalidToken(_) | GatewayError::InvalidApiKey(_) => "invalid_token",
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
            GatewayError::AdminTokenRequired => "invalid_token",
            GatewayError::WeakPassword => "weak_password",
            GatewayError::UsernameTaken => "username_taken",
            GatewayError::InvalidOrigin => "invalid_origin",
            GatewayError::UntrustedProxy => "untrusted_proxy",
            GatewayError::SecondFactorRequired | GatewayError::RecentLoginRequired(_) => {
                "insufficient_user_authentication"
            }
            GatewayError::TooManyKeys => "too_many_keys",
            GatewayError::ProviderDenied | GatewayError::AccessDenied(_) => "access_denied",
            GatewayError::EmailUnverified => "email_unverified",
            GatewayError::InvalidDpopProof(_) => "invalid_dpop_proof",
            GatewayError::UseDpopNonce => "use_dpop_nonce",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(d)
            | GatewayError::InsufficientScope(d)
            | GatewayError::InvalidGrant(d)
            | GatewayError::AccessDenied(d)
            | GatewayError::InvalidDpopProof(d) => d,
            GatewayError::InvalidToken(e) => e.description(),
            GatewayError::InvalidApiKey(e) => e.description(),
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
            GatewayError::AdminTokenRequired => "a valid admin token is required",
            GatewayError::WeakPassword => "the password does not meet the password policy",
            GatewayError::UsernameTaken => "this username is taken",
            GatewayError::InvalidOrigin => "cross-site request from an origin not allowed",
            GatewayError::UntrustedProxy => "decisions are made for trusted proxies only",
            GatewayError::SecondFactorRequired => "a second factor is required",
            GatewayError::RecentLoginRequired(_) => "a recent login is required",
            GatewayError::TooManyKeys => "the user holds as many API keys as allowed",
            GatewayError::ProviderDenied => "the identity provider refused the sign-in",
            GatewayError::EmailUnverified => "the email address is not verified yet",
            GatewayError::UseDpopNonce => "a DPoP nonce is required",
        }
    }

    /// The RFC 6750 challenge, for the refusals that carry one.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            GatewayError::MissingCredentials => Some(r#"Bearer realm="portcullis""#.to_string()),
            GatewayError::InvalidToken(_) | GatewayError::InvalidApiKey(_) => Some(format!(
                r#"Bearer realm="portcullis", error="invalid_token", error_description="{}""#,
                self.description()
            )),
            GatewayError::InsufficientScope(d) => Some(format!(
                r#"Bearer realm="portcullis", error="insufficient_scope", error_description="{d}""#
            )),
            GatewayError::AdminTokenRequired => Some(r#"Bearer realm="portcullis-admin""#.into()),
            GatewayError::SecondFactorRequired => Some(format!(
                r#"Bearer realm="portcullis", error="insufficient_user_authentication", error_description="{}""#,
                self.description()
            )),
            GatewayError::RecentLoginRequired(max_age) => Some(format!(
                r#"Bearer realm="portcullis", error="insufficient_user_authentication", error_description="{}", max_age={max_age}"#,
                self.description()
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
            | GatewayError::AccountLocked
            | GatewayError::WeakPassword
            | GatewayError::UsernameTaken
            | GatewayError::InvalidOrigin
            | GatewayError::UntrustedProxy
            | GatewayError::TooManyKeys
            | GatewayError::ProviderDenied
            | GatewayError::AccessDenied(_)
            | GatewayError::EmailUnverified => None,
            GatewayError::InvalidDpopProof(_) | GatewayError::UseDpopNonce => Some(format!(
                r#"DPoP error="{}", error_description="{}""#,
                self.code(),
                self.description()
            )),
        }
    }

    /// The challenge in the DPoP scheme (RFC 9449 section 7.1), for a request that used it or a
    /// route that takes only bound credentials: `algs` are the proof algorithms accepted.
    pub fn dpop_challenge(&self, algs: &str) -> Option<String> {
        match self {
            GatewayError::MissingCredentials => Some(format!(r#"DPoP algs="{algs}""#)),
            GatewayError::InvalidToken(_)
            | GatewayError::InvalidApiKey(_)
            | GatewayError::InvalidDpopProof(_)
            | GatewayError::UseDpopNonce
            | GatewayError::InsufficientScope(_)
            | GatewayError::SecondFactorRequired => Some(format!(
                r#"DPoP algs="{algs}", error="{}", error_description="{}""#,
                self.code(),
                self.description()
            )),
            _ => None,
        }
    }

    /// Whether the refusal is an audit event (every 401, 403 and 429 is one).
    pub fn is_audited(&self) -> bool {
        match self {
            GatewayError::MissingCredentials
            | GatewayError::InvalidToken(_)
            | GatewayError::InvalidApiKey(_)
            | GatewayError::InsufficientScope(_)
            | GatewayError::RateLimited
            | GatewayError::InvalidCredentials
            | GatewayError::MfaRequired
            | GatewayError::InvalidCode
            | GatewayError::InvalidGrant(_)
            | GatewayError::AccountLocked
            | GatewayError::AdminTokenRequired
            | GatewayError::InvalidOrigin
            | GatewayError::UntrustedProxy
            | GatewayError::SecondFactorRequired
            | GatewayError::RecentLoginRequired(_)
            | GatewayError::ProviderDenied
            | GatewayError::AccessDenied(_)
            | GatewayError::EmailUnverified
            | GatewayError::InvalidDpopProof(_)
            | GatewayError::UseDpopNonce => true,
            GatewayError::InvalidRequest(_)
            | GatewayError::NotFound
            | GatewayError::PayloadTooLarge
            | GatewayError::HeadersTooLarge
            | GatewayError::BadGateway
            | GatewayError::GatewayTimeout
            | GatewayError::Unavailable
            | GatewayError::MethodNotAllowed
            | GatewayError::UnsupportedGrantType
            | GatewayError::WeakPassword
            | GatewayError::UsernameTaken
            | GatewayError::TooManyKeys => false,
        }
    }

    /// Which refusal counter of `/metrics` it counts in.
    pub fn counted_as(&self) -> Counted {
        match self {
            GatewayError::MissingCredentials
            | GatewayError::InvalidToken(_)
            | GatewayError::InvalidApiKey(_)
            | GatewayError::InsufficientScope(_)
            | GatewayError::InvalidCredentials
            | GatewayError::MfaRequired
            | GatewayError::InvalidCode
            | GatewayError::InvalidGrant(_)
            | GatewayError::InvalidOrigin
            | GatewayError::UntrustedProxy
            | GatewayError::SecondFactorRequired
            | GatewayError::RecentLoginRequired(_)
            | GatewayError::ProviderDenied
            | GatewayError::AccessDenied(_)
            | GatewayError::EmailUnverified
            | GatewayError::InvalidDpopProof(_)
            | GatewayError::UseDpopNonce => Counted::AuthFailure,
            GatewayError::RateLimited => Counted::RateLimited,
            GatewayError::AccountLocked
            | GatewayError::AdminTokenRequired
            | GatewayError::InvalidRequest(_)
            | GatewayError::NotFound
            | GatewayError::PayloadTooLarge
            | GatewayError::HeadersTooLarge
            | GatewayError::BadGateway
            | GatewayError::GatewayTimeout
            | GatewayError::Unavailable
            | GatewayError::MethodNotAllowed
            | GatewayError::UnsupportedGrantType
            | GatewayError::WeakPassword
            | GatewayError::UsernameTaken
            | GatewayError::TooManyKeys => Counted::Neither,
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

/// The refusal counters of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `portcullis_auth_failures_total{reason}`.
    AuthFailure,
    /// `portcullis_rate_limited_total{policy}`.
    RateLimited,
    Neither,
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
