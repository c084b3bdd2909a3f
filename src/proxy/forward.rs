//! Pipeline step 11 on the upstream request: credentials removed unless forwarded, the
//! identity headers set (they were stripped at step 3), the request id and the forwarded
//! headers; and the URI the upstream is sent.

use std::net::IpAddr;

use http::header::{COOKIE, HOST};
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;

use crate::auth::credentials::{self, Credential};
use crate::auth::internal::InternalToken;
use crate::auth::Identity;
use crate::caller::bound::DPOP;
use crate::claims::claim_header_value;
use crate::config::{IdentitySettings, REFRESH_SUFFIX};
use crate::error::GatewayError;
use crate::headers::{
    self, wire, Wired, X_API_KEY, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};
use crate::policy::Route;

/// What step 11 writes: facts gathered by the earlier steps.
pub struct Forwarding<'a> {
    pub request_id: Option<&'a HeaderValue>,
    /// Signs `internal_token`s; `now` dates them.
    pub signer: Option<&'a crate::auth::jwt::Signer>,
    pub internal_token: Option<&'a InternalToken>,
    pub now: u64,
    /// The session cookie's name, when login cookies are configured: removed like any
    /// credential.
    pub session_cookie: Option<&'a str>,
    pub peer: Option<IpAddr>,
    pub peer_trusted: bool,
    pub tls: bool,
    pub identity: Option<&'a Identity>,
}

/// Step 11 on the upstream request: credentials removed unless forwarded, identity headers set
/// (they were already stripped at step 3), request id and forwarded headers.
pub fn rewrite_upstream_request(
    req: &mut RequestHeader,
    ids: &IdentitySettings,
    f: &Forwarding<'_>,
) -> pingora::Result<()> {
    if !ids.forward_credentials {
        strip_credentials(req, f.session_cookie);
    }
    // A DPoP proof and its token never go upstream, forwarded credentials or not: the token
    // is worthless there without a proof, and a proof is for the gateway's URL. (Without
    // `forward_credentials`, a DPoP `Authorization` went with the others above.)
    if req.headers.contains_key(&DPOP) {
        req.remove_header(&DPOP);
    }
    if ids.forward_credentials {
        let dpop_scheme = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                matches!(
                    credentials::parse_authorization(v),
                    Some(Credential::Dpop(_))
                )
            });
        if dpop_scheme {
            req.remove_header(&http::header::AUTHORIZATION);
        }
    }
    join_cookies(req);
    write_identity(req, ids, f)?;
    if let Some(id) = f.request_id {
        wire::X_REQUEST_ID.replace(req, id.clone());
    }

    if let Some(peer) = f.peer {
        forwarded_for(req, peer, f.peer_trusted);
    }
    if !(f.peer_trusted && req.headers.contains_key(&X_FORWARDED_PROTO)) {
        let proto = HeaderValue::from_static(if f.tls { "https" } else { "http" });
        // Absent: an untrusted peer's went at step 3, a trusted one's is kept.
        wire::X_FORWARDED_PROTO.add(req, proto);
    }
    if !(f.peer_trusted && req.headers.contains_key(&X_FORWARDED_HOST)) {
        let host = req.headers.get(HOST).cloned().or_else(|| {
            req.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        match host {
            Some(h) => wire::X_FORWARDED_HOST.add(req, h), // absent, as above
            None => {
                req.remove_header(&X_FORWARDED_HOST);
            }
        }
    }
    Ok(())
}

/// `X-Forwarded-For`: a trusted peer's chain (every line, in order) with the peer appended, or
/// the peer alone.
fn forwarded_for(req: &mut RequestHeader, peer: IpAddr, peer_trusted: bool) {
    // Room for the common case, the peer's address alone, in one allocation.
    let mut chain = Vec::with_capacity(40);
    if peer_trusted {
        // Every line, in order, is one list (HAProxy's `option forwardfor` adds a line):
        // the same list step 2 read the client IP from.
        for line in req.headers.get_all(&X_FORWARDED_FOR) {
            let line = String::from_utf8_lossy(line.as_bytes());
            let line = line.trim().trim_matches(',');
            if !line.is_empty() {
                chain.extend_from_slice(line.as_bytes());
                chain.extend_from_slice(b", ");
            }
        }
    }
    headers::push_ip(&mut chain, peer);
    // Values of valid headers, an address and ", ": a valid value.
    if let Ok(chain) = HeaderValue::try_from(chain) {
        if peer_trusted {
            wire::X_FORWARDED_FOR.replace(req, chain);
        } else {
            // Step 3 stripped an untrusted peer's `X-Forwarded-*`.
            wire::X_FORWARDED_FOR.add(req, chain);
        }
    }
}

/// Removes the credentials Portcullis consumes: a Bearer/ApiKey `Authorization` (other schemes
/// are not ours and pass untouched), `X-API-Key`, and the session cookies, access and refresh
/// (other cookies stay).
fn strip_credentials(req: &mut RequestHeader, session_cookie: Option<&str>) {
    if let Some(name) = session_cookie {
        strip_cookie(req, name);
    }
    let ours = req
        .headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| credentials::scheme_is_ours(v.as_bytes()));
    if ours {
        req.remove_header(&http::header::AUTHORIZATION);
    }
    headers::strip_all(req, [&X_API_KEY]);
}

/// Several `Cookie` fields (HTTP/2 splits them) as the one line HTTP/1.1 upstreams expect,
/// joined with `; ` (RFC 9113 section 8.2.3).
fn join_cookies(req: &mut RequestHeader) {
    let mut cookies = req.headers.get_all(COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> = req
        .headers
        .get_all(COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let joined = joined.join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        let _ = req.insert_header(COOKIE, value);
    }
}

/// Replaces the request's target with `uri`, keeping its authority as `Host`: an HTTP/2
/// request names its host in `:authority`, part of the URI it replaces.
pub(crate) fn set_uri_keeping_host(req: &mut RequestHeader, uri: http::Uri) {
    if !req.headers.contains_key(HOST) {
        let authority = req.uri.authority().map(|a| a.as_str());
        if let Some(host) = authority.and_then(|a| HeaderValue::from_str(a).ok()) {
            // A valid name and value: inserting cannot fail.
            let _ = req.insert_header(HOST, host);
        }
    }
    req.set_uri(uri);
}

/// Rewrites every `Cookie` header without the pairs named `name` or `<name>_refresh`. Bytes,
/// not text: a pair that is not UTF-8 is another application's, and goes on as it came.
pub(crate) fn strip_cookie(req: &mut RequestHeader, name: &str) {
    let ours = |p: &[u8]| {
        let key = p.iter().position(|&b| b == b'=').map(|at| &p[..at]);
        key.is_some_and(|k| {
            k == name.as_bytes()
                || k.strip_prefix(name.as_bytes()) == Some(REFRESH_SUFFIX.as_bytes())
        })
    };
    let cookies = req.headers.get_all(COOKIE);
    if !cookies.iter().any(|v| cookie_pairs(v.as_bytes()).any(ours)) {
        return;
    }
    let kept: Vec<Vec<u8>> = cookies
        .iter()
        .map(|v| {
            let pairs: Vec<&[u8]> = cookie_pairs(v.as_bytes()).filter(|p| !ours(p)).collect();
            pairs.join(&b"; "[..])
        })
        .collect();
    headers::strip_all(req, [&COOKIE]);
    for value in kept.iter().filter(|v| !v.is_empty()) {
        // Pairs of a valid value joined with "; ": a valid value.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let _ = req.append_header(COOKIE, value);
        }
    }
}

/// The non-empty `;`-separated pairs of a `Cookie` value, trimmed.
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty())
}

/// The identity headers of the caller, and its internal token when configured.
fn write_identity(
    req: &mut RequestHeader,
    ids: &IdentitySettings,
    f: &Forwarding<'_>,
) -> pingora::Result<()> {
    let Some(id) = f.identity else {
        return Ok(());
    };
    set_identity(req, ids, id)?;
    if let (Some(internal), Some(signer)) = (f.internal_token, f.signer) {
        match internal.token(signer, id, f.now) {
            Ok(token) => insert_checked(req, &Wired::of(internal.header.clone()), &token)?,
            Err(e) => tracing::error!(error = %e, "could not sign the internal identity token"),
        }
    }
    Ok(())
}

/// The identity headers alone, as step 11 would set them: what a decision answer carries
/// (docs/DECISION.md). None for an anonymous caller.
pub(super) fn identity_headers(
    ids: &IdentitySettings,
    f: &Forwarding<'_>,
) -> Vec<(HeaderName, HeaderValue)> {
    let Ok(mut scratch) = RequestHeader::build("GET", b"/", Some(8)) else {
        return Vec::new();
    };
    if let Err(e) = write_identity(&mut scratch, ids, f) {
        tracing::error!(error = %e, "could not write the identity headers");
        return Vec::new();
    }
    scratch
        .as_owned_parts()
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn set_identity(
    req: &mut RequestHeader,
    ids: &IdentitySettings,
    id: &Identity,
) -> pingora::Result<()> {
    insert_checked(req, &ids.subject, &id.subject)?;
    // The joined roles and permissions are header values made once per grant set.
    for (name, value) in [
        (&ids.roles, id.grants.roles_value()),
        (&ids.permissions, id.grants.permissions_value()),
    ] {
        match value {
            Some(v) => name.add(req, v.clone()),
            None => {
                tracing::warn!(header = %name, "identity value is not a valid header value; left out")
            }
        }
    }
    ids.method
        .add(req, HeaderValue::from_static(id.method.as_str()));
    if let Some(issuer) = &ids.issuer {
        insert_checked(req, issuer, issuer_of(id))?;
    }
    for (path, header) in &ids.claims {
        if let Some(value) = id.claim(path).and_then(claim_header_value) {
            insert_checked(req, &Wired::of(header.clone()), &value)?;
        }
    }
    Ok(())
}

/// Who vouches for the caller: the verified token's `iss`, or `api_key` for a key.
fn issuer_of(id: &Identity) -> &str {
    match id.method {
        crate::auth::AuthMethod::ApiKey => "api_key",
        crate::auth::AuthMethod::Mtls => "mtls",
        crate::auth::AuthMethod::Jwt
        | crate::auth::AuthMethod::Cookie
        | crate::auth::AuthMethod::Dpop => id
            .claims
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default(),
    }
}

/// Sets a header whose value came from a token; a value that cannot be a header value (a
/// control character) is left out rather than forwarded mangled.
fn insert_checked(req: &mut RequestHeader, name: &Wired, value: &str) -> pingora::Result<()> {
    match HeaderValue::from_str(value) {
        Ok(v) => name.add(req, v),
        Err(_) => {
            tracing::warn!(header = %name, "identity value is not a valid header value; left out")
        }
    }
    Ok(())
}

/// The URI sent upstream: the normalised path (less `strip_prefix`) and the untouched query.
/// `None` when the request target as received (`raw_target`, the bytes Pingora would send) is
/// exactly that already: the common case, with nothing to rebuild.
pub(crate) fn upstream_uri(
    route: &Route,
    raw_target: &[u8],
    normalized: &str,
    query: Option<&str>,
) -> Option<Result<http::Uri, GatewayError>> {
    let path = route.upstream_path(normalized);
    let unchanged = raw_target
        .strip_prefix(path.as_bytes())
        .is_some_and(|rest| match query {
            None => rest.is_empty(),
            Some(q) => rest.strip_prefix(b"?") == Some(q.as_bytes()),
        });
    if unchanged {
        return None;
    }
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    Some(
        uri.parse()
            .map_err(|_| GatewayError::InvalidRequest("malformed request target")),
    )
}
