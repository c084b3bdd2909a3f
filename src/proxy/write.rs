//! The proxy's own I/O on the client connection: a built-in endpoint's body read whole, and
//! the gateway's answers written.

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::endpoints::body::MAX_BODY;
use crate::error::GatewayError;
use crate::headers::X_REQUEST_ID;
use crate::response::LocalResponse;

/// Reads the whole body, refusing it as soon as it is known to be too large.
pub(super) async fn read_body(session: &mut Session) -> Result<Bytes, GatewayError> {
    let declared = session
        .req_header()
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(GatewayError::PayloadTooLarge);
    }
    let mut body = BytesMut::new();
    loop {
        let chunk = session
            .read_request_body()
            .await
            .map_err(|_| GatewayError::InvalidRequest("unreadable request body"))?;
        let Some(chunk) = chunk else {
            return Ok(body.freeze());
        };
        if body.len() + chunk.len() > MAX_BODY {
            return Err(GatewayError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
}

/// Writes `resp` with the request id. Errors are I/O errors on the client connection.
pub(super) async fn write(
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
