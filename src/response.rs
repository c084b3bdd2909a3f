//! The gateway's own answers as data: refusals in their wire form (the JSON body and the
//! RFC 6750 challenge of docs/CONFIG.md's refusal table; the RFC 6749 form of the token
//! endpoint) and the built-in endpoints' responses. One renderer for the proxy, the endpoints and the admin listener;
//! each writes the result its own way.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER,
    STRICT_TRANSPORT_SECURITY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderName, HeaderValue, StatusCode};

use crate::error::GatewayError;
use crate::headers::X_REQUEST_ID;

/// What every answer Portcullis writes itself carries: no content sniffing, no framing, no
/// referrer; on a TLS listener HSTS too (browsers ignore it over plain HTTP).
pub(crate) fn security_headers(tls: bool) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    let always = [
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    let hsts = tls.then(|| {
        (
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    always.into_iter().chain(hsts)
}

/// A complete response the gateway answers itself.
#[derive(Debug, Clone)]
pub(crate) struct LocalResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl LocalResponse {
    pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        LocalResponse {
            status,
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body: body.into(),
        }
    }

    /// A response without a body (204).
    pub(crate) fn empty(status: StatusCode) -> Self {
        LocalResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A refusal: JSON body, RFC 6750 challenge where one applies.
    pub(crate) fn refusal(err: &GatewayError, request_id: &str) -> Self {
        Refusal::new(*err).render(request_id)
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn has_header(&self, name: &HeaderName) -> bool {
        self.headers.iter().any(|(k, _)| k == name)
    }

    /// As an `http` response, with `Content-Length` (none on a 204) and the request id.
    pub(crate) fn into_http(self, request_id: &str) -> http::Response<Vec<u8>> {
        let mut b = http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            b = b.header(name, value);
        }
        if self.status != StatusCode::NO_CONTENT {
            b = b.header(CONTENT_LENGTH, self.body.len());
        }
        if let Ok(id) = HeaderValue::from_str(request_id) {
            b = b.header(X_REQUEST_ID, id);
        }
        // The admin listener is plain HTTP.
        for (name, value) in security_headers(false) {
            b = b.header(name, value);
        }
        b.body(self.body.to_vec())
            .expect("names and values made here are valid")
    }
}

/// A refusal with what some endpoints add to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub error: GatewayError,
    /// `mfa_required`: the token for `POST /auth/mfa`.
    pub mfa_token: Option<String>,
    /// Seconds, for `Retry-After` (a lockout).
    pub retry_after: Option<u64>,
    /// On the RFC 6749 token endpoint: 400 with its codes (405, 413, 429, 503 and a foreign
    /// origin's 403 stay).
    pub oauth: bool,
    /// Instead of the error's fixed description: which rule a weak password broke, made by
    /// the gateway (never from what the client sent).
    pub description: Option<String>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        Refusal::new(error)
    }
}

impl Refusal {
    pub(crate) fn new(error: GatewayError) -> Self {
        Refusal {
            error,
            mfa_token: None,
            retry_after: None,
            oauth: false,
            description: None,
        }
    }

    /// The error as logged and counted: on the token endpoint a wrong password is
    /// `invalid_grant` (RFC 6749 section 5.2).
    pub(crate) fn logged_error(&self) -> GatewayError {
        match self.error {
            GatewayError::InvalidCredentials if self.oauth => {
                GatewayError::InvalidGrant("invalid username or password")
            }
            other => other,
        }
    }

    pub(crate) fn render(&self, request_id: &str) -> LocalResponse {
        let err = self.logged_error();
        let status = match err.status().as_u16() {
            405 | 413 | 429 | 503 => err.status(),
            // Not an OAuth error: a foreign page's form (login CSRF), refused as everywhere.
            _ if err == GatewayError::InvalidOrigin => err.status(),
            _ if self.oauth => StatusCode::BAD_REQUEST,
            _ => err.status(),
        };
        let mut body = serde_json::json!({
            "error": err.code(),
            "error_description": self.description.as_deref().unwrap_or(err.description()),
            "request_id": request_id,
        });
        if let Some(token) = &self.mfa_token {
            body["mfa_token"] = token.clone().into();
        }
        let body = serde_json::to_vec(&body).expect("a JSON object of strings serialises");
        let mut resp = LocalResponse::json(status, body);
        // Challenges are made of fixed descriptions: always header values.
        let challenge = err.www_authenticate().map(HeaderValue::try_from);
        if let Some(Ok(challenge)) = challenge {
            resp = resp.header(WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            resp = resp.header(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TokenError;

    #[test]
    fn a_refusal_has_its_challenge_body_and_no_store() {
        let r = LocalResponse::refusal(&GatewayError::InvalidToken(TokenError::Expired), "rid");
        assert_eq!(r.status, 401);
        assert!(r.has_header(&WWW_AUTHENTICATE) && r.has_header(&CACHE_CONTROL));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error_description"], "token expired");
        assert_eq!(body["request_id"], "rid");
    }

    #[test]
    fn the_token_endpoint_answers_in_rfc_6749_form() {
        let mut r = Refusal::new(GatewayError::InvalidCredentials);
        r.oauth = true;
        let resp = r.render("rid");
        assert_eq!(resp.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["error"], "invalid_grant");
        r.error = GatewayError::AccountLocked;
        r.retry_after = Some(9);
        let resp = r.render("rid");
        assert_eq!(resp.status, 429);
        assert!(resp.has_header(&RETRY_AFTER));
    }
}
