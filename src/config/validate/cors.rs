//! `[cors]`: the origins browsers may call from, and what their preflights are answered.

use std::str::FromStr;
use std::time::Duration;

use http::{HeaderName, Method};

use super::{root, Validator};
use crate::config::raw::RawCors;
use crate::policy::cors::{origin_of, Cors, CorsSpec};

const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const DEFAULT_HEADERS: &[&str] = &["Authorization", "Content-Type", "X-API-Key", "X-Request-Id"];
const DEFAULT_EXPOSE: &[&str] = &[
    "X-Request-Id",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
];
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

fn defaults(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Validator<'_> {
    pub(super) fn cors(&self) -> Option<Cors> {
        let raw = self.section::<RawCors>("cors")?;
        let p = root("cors");
        let mut origins = Vec::new();
        for (i, o) in raw.allowed_origins.iter().enumerate() {
            let at = p.key("allowed_origins").index(i);
            if o == "*" {
                if raw.allow_credentials {
                    self.err(
                        &at,
                        "`*` (any origin) cannot go with allow_credentials = true: list the origins",
                    );
                }
                origins.push(o.clone());
                continue;
            }
            // An origin is a scheme, a host and maybe a port: nothing after them.
            match origin_of(o) {
                Some(serialised) if o.trim_end_matches('/').eq_ignore_ascii_case(&serialised) => {
                    origins.push(serialised)
                }
                _ => self.err(
                    &at,
                    format!("`{o}` is not an origin such as \"https://app.example.com\""),
                ),
            }
        }
        if raw.allowed_origins.is_empty() {
            self.err(&p.key("allowed_origins"), "list at least one origin");
        }
        let methods = raw
            .allowed_methods
            .clone()
            .unwrap_or_else(|| defaults(DEFAULT_METHODS));
        let methods: Vec<Method> = methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
                let method = Method::from_str(m).ok().filter(|_| ok);
                if method.is_none() {
                    self.err(
                        &p.key("allowed_methods").index(i),
                        format!("`{m}` is not an upper-case HTTP method"),
                    );
                }
                method
            })
            .collect();
        let headers = self.header_names(&raw.allowed_headers, DEFAULT_HEADERS, "allowed_headers");
        let expose = self.header_names(&raw.expose_headers, DEFAULT_EXPOSE, "expose_headers");
        let max_age = self.duration(&p.key("max_age"), raw.max_age.as_deref(), DEFAULT_MAX_AGE);
        Some(Cors::new(CorsSpec {
            origins,
            methods,
            headers,
            expose,
            credentials: raw.allow_credentials,
            max_age_secs: max_age.as_secs(),
        }))
    }

    fn header_names(
        &self,
        given: &Option<Vec<String>>,
        default: &[&str],
        key: &str,
    ) -> Vec<HeaderName> {
        let list = given.clone().unwrap_or_else(|| defaults(default));
        list.iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let name = HeaderName::from_str(h).ok();
                if name.is_none() {
                    self.err(
                        &root("cors").key(key).index(i),
                        format!("`{h}` is not a header name"),
                    );
                }
                name
            })
            .collect()
    }
}
