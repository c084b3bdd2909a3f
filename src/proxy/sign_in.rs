//! A browser that is not signed in, on a route with `unauthenticated = "redirect:NAME"`, is
//! sent to the `[[oidc]]` provider NAME to sign in, and comes back where it was: a GET or
//! HEAD whose `Accept` names `text/html`, with no credential, or with only a session cookie
//! that is expired beyond renewal or revoked (the cookies are cleared). Every other client
//! (an API client, `fetch`, another method) keeps its 401.

use http::header::{ACCEPT, CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use pingora::http::RequestHeader;

use super::ctx::RequestCtx;
use crate::config::Config;
use crate::error::GatewayError;
use crate::policy::route::{Route, Unauthenticated};
use crate::response::LocalResponse;

/// The redirect that answers `refusal` instead, if this request is a browser's to sign in.
pub(super) fn redirect(
    config: &Config,
    route: &Route,
    req: &RequestHeader,
    ctx: &RequestCtx,
    refusal: GatewayError,
) -> Option<LocalResponse> {
    let Unauthenticated::Redirect(name) = &route.unauthenticated else {
        return None;
    };
    let signed_out = match refusal {
        GatewayError::MissingCredentials => true,
        GatewayError::InvalidToken(_) => ctx.browser.cookie_refused,
        _ => false,
    };
    let navigates = matches!(req.method, Method::GET | Method::HEAD) && !ctx.browser.upgrade;
    if !signed_out || !navigates || !wants_html(&req.headers) {
        return None;
    }
    let login = config.login.as_ref()?;
    let here = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rd: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    let location = format!("{}/oidc/{name}/start?rd={rd}", login.base_path);
    let mut answer = LocalResponse::empty(StatusCode::FOUND)
        .header(LOCATION, HeaderValue::try_from(location).ok()?)
        .header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let (true, Some(cookie)) = (ctx.browser.cookie_refused, &login.cookie) {
        for clear in cookie.set_pair("", 0, "", 0).ok()? {
            answer = answer.header(SET_COOKIE, clear);
        }
    }
    Some(answer)
}

/// Whether `Accept` names `text/html` (not refused with `q=0`); `*/*` alone does not.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let html = parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case("text/html"));
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            html && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::wants_html;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn only_an_accept_naming_html_is_a_browser_navigating() {
        let accepts = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::ACCEPT, HeaderValue::from_static(v));
            wants_html(&h)
        };
        assert!(accepts(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(accepts("TEXT/HTML"));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts("text/html;q=0"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
