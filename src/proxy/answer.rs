//! The gateway's own I/O on the client connection, for both doors: the request id (step 1),
//! a built-in endpoint's body read whole, and the gateway's answers written with what every
//! answer of the request carries (the request id, the `RateLimit-*` and CORS headers).

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::ctx::{RequestCtx, RequestId};
use crate::endpoints::body::MAX_BODY;
use crate::error::GatewayError;
use crate::headers::{self, X_REQUEST_ID};
use crate::response::{security_headers, LocalResponse};

/// Step 1: keeps the client's request id, or makes one.
pub(super) fn request_id(session: &Session, ctx: &mut RequestCtx) {
    let incoming = session.req_header().headers.get(X_REQUEST_ID);
    let text = headers::request_id(incoming.map(|v| v.as_bytes()));
    // Visible ASCII by construction (a client's is checked, ours is a UUID).
    let value = HeaderValue::from_str(&text).ok();
    ctx.id = RequestId { text, value };
}

/// Writes the gateway's own answer to the request (`Err`: its refusal, kept for the log).
pub(super) async fn respond(
    session: &mut Session,
    ctx: &mut RequestCtx,
    answer: Result<LocalResponse, GatewayError>,
    now: u64,
) -> pingora::Result<()> {
    let mut response = match answer {
        Ok(response) => response,
        Err(refusal) => {
            ctx.refused(refusal);
            LocalResponse::refusal(&refusal, &ctx.id.text)
        }
    };
    let config = &ctx.runtime.config;
    let request = &session.req_header().headers;
    let refusal = ctx.judged.refusal.as_ref();
    for (name, value) in crate::caller::bound::answer_headers(config, request, refusal, now) {
        response.headers.retain(|(n, _)| *n != name);
        response.headers.push((name, value));
    }
    ctx.judged
        .rate_limit
        .headers(|name, value| response.headers.push((name.name, value)));
    response.headers.extend(ctx.browser.cors.iter().cloned());
    let renewed = ctx.browser.set_cookies.iter().cloned();
    response.headers.extend(renewed.map(|c| (SET_COOKIE, c)));
    if ctx.browser.upgrade {
        // A refused upgrade ends the connection: nothing the client sends after it is read
        // as another request, let alone tunnelled.
        session.set_keepalive(None);
    }
    write(session, response, &ctx.id).await
}

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
    request_id: &RequestId,
) -> pingora::Result<()> {
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let mut header = ResponseHeader::build(resp.status, Some(resp.headers.len() + 6))?;
    for (name, value) in resp.headers.into_iter().chain(security_headers(tls)) {
        // Each cookie is a header of its own; anything else is one value.
        if name == SET_COOKIE {
            header.append_header(name, value)?;
        } else {
            header.insert_header(name, value)?;
        }
    }
    // RFC 9110 section 8.6: no Content-Length on a 204.
    if resp.status != StatusCode::NO_CONTENT {
        header.insert_header(CONTENT_LENGTH, HeaderValue::from(resp.body.len()))?;
    }
    if let Some(id) = &request_id.value {
        header.insert_header(X_REQUEST_ID, id.clone())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(resp.body), true).await?;
    }
    Ok(())
}
