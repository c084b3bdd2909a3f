//! Pipeline step 7: where a credential is found in a request, and which ones count.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

use crate::error::GatewayError;
use crate::headers::X_API_KEY;
use crate::policy::CredentialKind;

/// A credential as presented: the raw secret, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    Bearer(&'a str),
    /// A DPoP-bound token (`Authorization: DPoP`), its proof in the `DPoP` header.
    Dpop(&'a str),
    ApiKey(&'a str),
    Cookie(&'a str),
}

impl Credential<'_> {
    pub(crate) fn kind(&self) -> CredentialKind {
        match self {
            Credential::Bearer(_) | Credential::Dpop(_) => CredentialKind::Jwt,
            Credential::ApiKey(_) => CredentialKind::ApiKey,
            Credential::Cookie(_) => CredentialKind::Cookie,
        }
    }
}

/// The scheme and token of an `Authorization` value, if the scheme is one of ours.
/// Schemes match case-insensitively; anything else (Basic, Digest...) is not ours.
pub(crate) fn parse_authorization(value: &str) -> Option<Credential<'_>> {
    let (scheme, rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    let token = rest.trim_matches(' ');
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credential::Bearer(token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some(Credential::Dpop(token))
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Some(Credential::ApiKey(token))
    } else {
        None
    }
}

/// Whether an `Authorization` value's scheme is one of ours, as [`parse_authorization`] reads
/// it, from the scheme's bytes alone: the token is not looked at, so it is not checked as text
/// a second time (which costs more than the rest of the upstream request's strip).
pub(crate) fn scheme_is_ours(value: &[u8]) -> bool {
    let scheme = value.split(|&b| b == b' ').next().unwrap_or_default();
    [&b"bearer"[..], b"dpop", b"apikey"]
        .iter()
        .any(|ours| scheme.eq_ignore_ascii_case(ours))
}

/// The values of the cookie `name` in every `Cookie` header.
fn session_cookies<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Finds the one credential of a request among the kinds `accepts` lets count.
///
/// A repeated `Authorization` header is refused whatever the route; two credentials left after
/// filtering (even two copies of one) are refused. `Ok(None)`: no credential.
pub(crate) fn find<'h>(
    headers: &'h HeaderMap,
    accepts: impl Fn(CredentialKind) -> bool,
    cookie_name: Option<&'h str>,
) -> Result<Option<Credential<'h>>, GatewayError> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    let authorization = auth.next();
    if auth.next().is_some() {
        return Err(GatewayError::InvalidRequest(
            "repeated Authorization header",
        ));
    }
    let mut found: Option<Credential<'h>> = None;
    let mut keep = |c: Credential<'h>| -> Result<(), GatewayError> {
        if !accepts(c.kind()) {
            return Ok(());
        }
        if found.replace(c).is_some() {
            return Err(GatewayError::InvalidRequest("more than one credential"));
        }
        Ok(())
    };
    if let Some(v) = authorization {
        let v = v
            .to_str()
            .map_err(|_| GatewayError::InvalidRequest("malformed Authorization header"))?;
        if let Some(c) = parse_authorization(v) {
            keep(c)?;
        }
    }
    for v in headers.get_all(X_API_KEY) {
        let v = v
            .to_str()
            .map_err(|_| GatewayError::InvalidRequest("malformed X-API-Key header"))?;
        keep(Credential::ApiKey(v.trim()))?;
    }
    if let Some(name) = cookie_name {
        for v in session_cookies(headers, name) {
            keep(Credential::Cookie(v))?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }
    const ALL: fn(CredentialKind) -> bool = |_| true;

    /// The upstream request's strip and the credential parser agree on whose scheme it is.
    #[test]
    fn scheme_check_agrees_with_the_parser() {
        for v in [
            "Bearer abc",
            "bearer",
            "DPoP x.y.z",
            "ApiKey k",
            "apikey  k ",
            "Basic dXNlcjpw",
            "Bearerx abc",
            "",
            " Bearer abc",
            "Digest bearer",
            "BEARER\tabc",
        ] {
            assert_eq!(
                scheme_is_ours(v.as_bytes()),
                parse_authorization(v).is_some(),
                "{v:?}"
            );
        }
        assert!(
            scheme_is_ours(b"Bearer \xff\xfe"),
            "a token that is not text is still ours"
        );
    }

    #[test]
    fn schemes_are_case_insensitive() {
        let m = h(&[("authorization", "bEaReR abc")]);
        assert_eq!(
            find(&m, ALL, None).unwrap(),
            Some(Credential::Bearer("abc"))
        );
        let m = h(&[("authorization", "APIKEY k1")]);
        assert_eq!(find(&m, ALL, None).unwrap(), Some(Credential::ApiKey("k1")));
    }

    #[test]
    fn unknown_schemes_and_unaccepted_kinds_are_no_credential() {
        let m = h(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(find(&m, ALL, None).unwrap(), None);
        let m = h(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
        let only_jwt = |k| k == CredentialKind::Jwt;
        assert_eq!(
            find(&m, only_jwt, None).unwrap(),
            Some(Credential::Bearer("t"))
        );
    }

    #[test]
    fn two_credentials_are_refused() {
        let m = h(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
        assert!(find(&m, ALL, None).is_err());
        let m = h(&[("x-api-key", "k"), ("x-api-key", "k")]);
        assert!(find(&m, ALL, None).is_err());
        let m = h(&[("authorization", "Basic a"), ("authorization", "Basic b")]);
        assert!(find(&m, |_| false, None).is_err());
        let m = h(&[("cookie", "s=a; other=1"), ("cookie", "s=b")]);
        assert!(find(&m, ALL, Some("s")).is_err());
    }

    #[test]
    fn empty_bearer_is_an_empty_token() {
        let m = h(&[("authorization", "Bearer")]);
        assert_eq!(find(&m, ALL, None).unwrap(), Some(Credential::Bearer("")));
    }
}
