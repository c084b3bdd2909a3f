//! `[response] headers` and a route's `response_headers`: headers added to upstream answers
//! that lack them (security headers the upstream forgot, a cache rule).

use std::collections::BTreeMap;
use std::str::FromStr;

use http::{HeaderName, HeaderValue};

use super::{root, Validator};
use crate::config::raw::RawResponse;
use crate::config::source::KeyPath;

/// Headers and their values, in the order written.
pub(super) type Headers = Vec<(HeaderName, HeaderValue)>;

impl Validator<'_> {
    /// `[response] headers`.
    pub(super) fn response_headers(&self) -> Headers {
        let raw = match self.table.get("response") {
            Some(_) => self.section::<RawResponse>("response").unwrap_or_default(),
            None => RawResponse::default(),
        };
        self.headers(&raw.headers, &root("response").key("headers"))
    }

    /// A route's `response_headers` over `base`: a name the route sets replaces the base's.
    pub(super) fn route_response_headers(
        &self,
        own: &BTreeMap<String, String>,
        at: &KeyPath,
        base: &Headers,
    ) -> Headers {
        let own = self.headers(own, at);
        let mut merged: Headers = base
            .iter()
            .filter(|(name, _)| !own.iter().any(|(n, _)| n == name))
            .cloned()
            .collect();
        merged.extend(own);
        merged
    }

    fn headers(&self, map: &BTreeMap<String, String>, at: &KeyPath) -> Headers {
        let mut out = Vec::new();
        for (name, value) in map {
            let Ok(header) = HeaderName::from_str(name) else {
                self.err(
                    &at.key(name),
                    format!("`{name}` is not a valid header name"),
                );
                continue;
            };
            if header == crate::headers::X_REQUEST_ID
                || crate::ratelimit::is_rate_limit_header(&header)
            {
                self.err(
                    &at.key(name),
                    "the gateway sets this header on every answer itself",
                );
                continue;
            }
            match HeaderValue::from_str(value) {
                Ok(v) => out.push((header, v)),
                Err(_) => self.err(&at.key(name), "not a valid header value"),
            }
        }
        out
    }
}
