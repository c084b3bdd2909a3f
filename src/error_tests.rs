use super::*;

/// Pins every variant's wire form to the refusal table of docs/CONFIG.md.
#[test]
fn every_refusal_matches_the_spec_table() {
    #[rustfmt::skip]
    let table = [
        (GatewayError::InvalidRequest("x"), 400, "invalid_request", false),
        (GatewayError::MissingCredentials, 401, "missing_credentials", true),
        (GatewayError::InvalidToken(TokenError::Expired), 401, "invalid_token", true),
        (GatewayError::InvalidApiKey(ApiKeyError::Unknown), 401, "invalid_token", true),
        (GatewayError::InsufficientScope("x"), 403, "insufficient_scope", true),
        (GatewayError::NotFound, 404, "not_found", false),
        (GatewayError::PayloadTooLarge, 413, "payload_too_large", false),
        (GatewayError::HeadersTooLarge, 431, "invalid_request", false),
        (GatewayError::RateLimited, 429, "rate_limited", false),
        (GatewayError::BadGateway, 502, "bad_gateway", false),
        (GatewayError::GatewayTimeout, 504, "gateway_timeout", false),
        (GatewayError::Unavailable, 503, "unavailable", false),
        (GatewayError::MethodNotAllowed, 405, "invalid_request", false),
        (GatewayError::InvalidCredentials, 401, "invalid_credentials", false),
        (GatewayError::MfaRequired, 401, "mfa_required", false),
        (GatewayError::InvalidCode, 401, "invalid_code", false),
        (GatewayError::InvalidGrant("x"), 401, "invalid_grant", false),
        (GatewayError::UnsupportedGrantType, 400, "unsupported_grant_type", false),
        (GatewayError::AccountLocked, 429, "account_locked", false),
        (GatewayError::AdminTokenRequired, 401, "invalid_token", true),
        (GatewayError::WeakPassword, 400, "weak_password", false),
        (GatewayError::UsernameTaken, 409, "username_taken", false),
        (GatewayError::InvalidOrigin, 403, "invalid_origin", false),
        (GatewayError::UntrustedProxy, 403, "untrusted_proxy", false),
        (GatewayError::SecondFactorRequired, 401, "insufficient_user_authentication", true),
        (GatewayError::RecentLoginRequired(300), 401, "insufficient_user_authentication", true),
        (GatewayError::TooManyKeys, 409, "too_many_keys", false),
        (GatewayError::ProviderDenied, 401, "access_denied", false),
        (GatewayError::AccessDenied("x"), 403, "access_denied", false),
        (GatewayError::EmailUnverified, 403, "email_unverified", false),
        (GatewayError::InvalidDpopProof("x"), 401, "invalid_dpop_proof", true),
        (GatewayError::UseDpopNonce, 401, "use_dpop_nonce", true),
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
        GatewayError::InvalidToken(TokenError::Expired)
            .www_authenticate()
            .unwrap(),
        r#"Bearer realm="portcullis", error="invalid_token", error_description="token expired""#
    );
    assert!(GatewayError::RecentLoginRequired(300)
        .www_authenticate()
        .unwrap()
        .ends_with("max_age=300"));
}
