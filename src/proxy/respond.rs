//! Writing Portcullis's own responses: refusals and built-in endpoints.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, StatusCode};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::error::GatewayError;
use crate::headers::X_REQUEST_ID;

/// A complete response the gateway answers itself.
pub struct LocalResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Bytes,
}

impl LocalResponse {
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        LocalResponse {
            status,
            headers: vec![(CONTENT_TYPE, "application/json".into())],
            body: body.into(),
        }
    }

    /// A response without a body (204).
    pub fn empty(status: StatusCode) -> Self {
        LocalResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The SPEC section 3 refusal: JSON body, RFC 6750 challenge where one applies.
    pub fn refusal(err: &GatewayError, request_id: &str) -> Self {
        let mut r = LocalResponse::json(err.status(), err.body(request_id));
        if let Some(challenge) = err.www_authenticate() {
            r.headers.push((WWW_AUTHENTICATE, challenge));
        }
        r.headers.push((CACHE_CONTROL, "no-store".into()));
        r
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Writes `resp` with the request id. Errors are I/O errors on the client connection.
pub async fn write(
    session: &mut Session,
    resp: LocalResponse,
    request_id: &str,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(resp.status, Some(resp.headers.len() + 2))?;
    for (name, value) in resp.headers {
        header.insert_header(name, value)?;
    }
    // RFC 9110 section 8.6: no Content-Length on a 204.
    if resp.status != StatusCode::NO_CONTENT {
        header.insert_header(CONTENT_LENGTH, resp.body.len().to_string())?;
    }
    header.insert_header(X_REQUEST_ID, request_id)?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(resp.body), true).await?;
    }
    Ok(())
}
