//! Routes compiled from `[[routes]]`: a segment matcher over the normalised path, the methods,
//! and the rules the pipeline applies once a route is chosen.

use std::sync::Arc;

use http::Method;

use crate::ratelimit::PolicyId;
use crate::upstream::UpstreamId;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(String),
    /// `*`: one non-empty segment, not captured.
    Any,
    /// `{name}`: one non-empty segment, captured.
    Capture(String),
    /// `**`: zero or more segments; only last.
    Rest,
}

/// A compiled `path` such as `/api/users/{id}/**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segs: Vec<Seg>,
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let rest = pattern
            .strip_prefix('/')
            .ok_or_else(|| format!("path `{pattern}` must start with `/`"))?;
        if rest.is_empty() {
            return Ok(PathPattern {
                segs: vec![Seg::Literal(String::new())],
            });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = match *part {
                "**" if i + 1 == parts.len() => Seg::Rest,
                "**" => return Err("`**` may only be the last segment".into()),
                "*" => Seg::Any,
                p if p.starts_with('{') && p.ends_with('}') => {
                    let name = &p[1..p.len() - 1];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(format!(
                            "bad capture `{p}`: use `{{name}}` with letters, digits, `_`"
                        ));
                    }
                    if names.contains(&name) {
                        return Err(format!("capture `{name}` appears twice"));
                    }
                    names.push(name);
                    Seg::Capture(name.to_string())
                }
                p if p.contains(['{', '}', '*']) => {
                    return Err(format!("segment `{p}` mixes literal text with a wildcard"))
                }
                "" if i + 1 < parts.len() => return Err("empty segment (`//`) in path".into()),
                p => Seg::Literal(p.to_string()),
            };
            segs.push(seg);
        }
        Ok(PathPattern { segs })
    }

    /// Names of the `{name}` captures, in order.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches a normalised path (starting with `/`). On success, the captured segments in the
    /// order of `captures()`.
    pub fn matches<'p>(&self, path: &'p str) -> Option<Vec<&'p str>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let mut captured = Vec::new();
        for seg in &self.segs {
            match seg {
                Seg::Rest => return Some(captured),
                Seg::Literal(l) => {
                    if parts.next()? != l {
                        return None;
                    }
                }
                Seg::Any => {
                    if parts.next()?.is_empty() {
                        return None;
                    }
                }
                Seg::Capture(_) => {
                    let p = parts.next()?;
                    if p.is_empty() {
                        return None;
                    }
                    captured.push(p);
                }
            }
        }
        parts.next().is_none().then_some(captured)
    }

    /// True when every path this pattern matches is also matched by `earlier`.
    pub fn is_covered_by(&self, earlier: &PathPattern) -> bool {
        let mut mine = self.segs.iter();
        for theirs in &earlier.segs {
            if *theirs == Seg::Rest {
                return true;
            }
            let Some(m) = mine.next() else {
                return false;
            };
            let covered = match (theirs, m) {
                (Seg::Rest, _) => return true,
                (_, Seg::Rest) => false,
                (Seg::Literal(a), Seg::Literal(b)) => a == b,
                (Seg::Literal(_), _) => false,
                (Seg::Any | Seg::Capture(_), Seg::Literal(b)) => !b.is_empty(),
                (Seg::Any | Seg::Capture(_), _) => true,
            };
            if !covered {
                return false;
            }
        }
        mine.next().is_none()
    }
}

/// A route's `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    Required,
    Optional,
    None,
}

/// A kind of credential a route may `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Jwt,
    ApiKey,
    Cookie,
    /// The connection's verified client certificate (`[mtls]`).
    Mtls,
}

/// `owner = { param, claim, unless_roles }`: the captured segment must equal the caller's claim.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Index into the route's captures.
    pub capture_index: usize,
    /// Dotted claim path, split.
    pub claim: Vec<String>,
    pub unless_roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// The label in logs and metrics: the configured name, else the path pattern.
    pub name: Arc<str>,
    pub pattern: PathPattern,
    /// Empty: every method.
    pub methods: Vec<Method>,
    pub upstream: UpstreamId,
    pub auth: AuthMode,
    pub accept: Vec<CredentialKind>,
    pub roles_any: Vec<String>,
    pub permissions_all: Vec<String>,
    pub strip_prefix: Option<String>,
    pub owner: Option<Owner>,
    /// The policies of its `rate_limit` list, in the order listed.
    pub rate_limits: Vec<PolicyId>,
    /// `cors = false`: no cross-origin request is answered for it.
    pub cors: bool,
    /// The credential must show a second factor (`amr` holds `mfa`).
    pub require_mfa: bool,
    /// Only sender-constrained credentials: mTLS, certificate- or DPoP-bound tokens.
    pub sender_constrained: bool,
    /// What a browser without a credential gets.
    pub unauthenticated: Unauthenticated,
    /// Added to its upstream answers that lack them (`[response] headers` merged in).
    pub response_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A route's `unauthenticated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Unauthenticated {
    /// 401, as for any client.
    #[default]
    Refuse,
    /// A browser (GET or HEAD, `Accept: text/html`) is sent to the `[[oidc]]` provider of this
    /// name to sign in.
    Redirect(String),
}

/// A route chosen for a request, with the segments its captures matched.
pub struct RouteMatch<'r> {
    pub route: &'r Arc<Route>,
    pub captures: Vec<String>,
}

impl Route {
    /// A route that only matches `pattern` and `methods`: `auth = "none"`, nothing else set
    /// (tests, benchmarks and fuzz targets set what they need over it).
    pub fn bare(pattern: PathPattern, methods: Vec<Method>) -> Route {
        Route {
            name: "bare".into(),
            pattern,
            methods,
            upstream: UpstreamId(0),
            auth: AuthMode::None,
            accept: vec![],
            roles_any: vec![],
            permissions_all: vec![],
            strip_prefix: None,
            owner: None,
            rate_limits: vec![],
            cors: true,
            require_mfa: false,
            sender_constrained: false,
            unauthenticated: Unauthenticated::Refuse,
            response_headers: vec![],
        }
    }

    /// Whether the route's `methods` match: all when empty; HEAD wherever GET is (a HEAD is a
    /// GET without its body, and must not fall through to another route's rules).
    pub fn allows_method(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self.methods.contains(method)
            || (method == Method::HEAD && self.methods.contains(&Method::GET))
    }

    pub fn accepts(&self, kind: CredentialKind) -> bool {
        self.accept.contains(&kind)
    }

    /// The path sent upstream: the normalised path without `strip_prefix`.
    pub fn upstream_path<'p>(&self, path: &'p str) -> &'p str {
        match &self.strip_prefix {
            Some(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => path,
            },
            None => path,
        }
    }
}

/// First route in file order whose path and methods match.
pub fn find_route<'r>(
    routes: &'r [Arc<Route>],
    method: &Method,
    path: &str,
) -> Option<RouteMatch<'r>> {
    routes.iter().find_map(|route| {
        if !route.allows_method(method) {
            return None;
        }
        route.pattern.matches(path).map(|caps| RouteMatch {
            route,
            captures: caps.into_iter().map(str::to_string).collect(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> Option<Vec<String>> {
        PathPattern::parse(p)
            .unwrap()
            .matches(path)
            .map(|v| v.into_iter().map(String::from).collect())
    }

    #[test]
    fn literal_segments_and_trailing_slash() {
        assert!(m("/a/b", "/a/b").is_some());
        assert!(m("/a/b", "/a/b/").is_none());
        assert!(m("/a/b", "/a").is_none());
        assert!(m("/a/b", "/a/b/c").is_none());
        assert!(m("/", "/").is_some());
        assert!(m("/", "/a").is_none());
    }

    #[test]
    fn double_star_matches_zero_or_more() {
        for p in ["/x", "/x/", "/x/y", "/x/y/z/"] {
            assert!(m("/x/**", p).is_some(), "{p}");
        }
        assert!(m("/x/**", "/xy").is_none());
        assert!(m("/**", "/").is_some());
    }

    #[test]
    fn single_segment_wildcards_need_content() {
        assert_eq!(m("/u/{id}/o", "/u/42/o"), Some(vec!["42".to_string()]));
        assert!(m("/u/{id}", "/u/").is_none());
        assert!(m("/u/*", "/u/").is_none());
        assert!(m("/u/*", "/u/a/b").is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["a", "/a/**/b", "/{}", "/x{id}", "/{a}/{a}", "/a//b"] {
            assert!(PathPattern::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn shadowing() {
        let p = |s| PathPattern::parse(s).unwrap();
        assert!(p("/a/b").is_covered_by(&p("/a/**")));
        assert!(p("/a/{x}").is_covered_by(&p("/a/*")));
        assert!(p("/a").is_covered_by(&p("/a/**")));
        assert!(!p("/a/**").is_covered_by(&p("/a/*")));
        assert!(!p("/a/*").is_covered_by(&p("/a/b")));
        assert!(p("/**").is_covered_by(&p("/**")));
    }
}

/// The stated properties, against the naive matcher of `fuzzing::reference`.
#[cfg(test)]
mod properties {
    use std::sync::Arc;

    use http::Method;
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::{find_route, PathPattern};
    use crate::fuzzing::{reference, route};

    fn pattern() -> impl Strategy<Value = String> {
        let seg = select(vec!["a", "b", "*", "{x}", "{y}", "**", ""]);
        prop::collection::vec(seg, 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn path() -> impl Strategy<Value = String> {
        let seg = select(vec!["a", "b", "c", ""]);
        prop::collection::vec(seg, 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn method() -> impl Strategy<Value = Method> {
        select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::DELETE,
        ])
    }

    fn naive_first(
        routes: &[(String, Vec<Method>)],
        method: &Method,
        path: &str,
    ) -> Option<(usize, Vec<String>)> {
        routes.iter().enumerate().find_map(|(i, (p, methods))| {
            let method_ok = methods.is_empty()
                || methods.contains(method)
                || (method == Method::HEAD && methods.contains(&Method::GET));
            let caps = reference::route_matches(p, path).filter(|_| method_ok)?;
            Some((i, caps))
        })
    }

    proptest! {
        #[test]
        fn matching_is_the_naive_matcher(p in pattern(), path in path()) {
            if let Ok(compiled) = PathPattern::parse(&p) {
                let got = compiled
                    .matches(&path)
                    .map(|c| c.into_iter().map(String::from).collect::<Vec<_>>());
                prop_assert_eq!(got, reference::route_matches(&p, &path));
            }
        }

        #[test]
        fn the_first_route_is_the_naive_first(
            table in prop::collection::vec((pattern(), prop::collection::vec(method(), 0..3)), 1..6),
            m in method(),
            path in path(),
        ) {
            let table: Vec<(String, Vec<Method>)> = table
                .into_iter()
                .filter(|(p, _)| PathPattern::parse(p).is_ok())
                .collect();
            let routes: Vec<Arc<super::Route>> = table
                .iter()
                .map(|(p, ms)| route(PathPattern::parse(p).unwrap(), ms.clone()))
                .collect();
            let got = find_route(&routes, &m, &path).map(|r| {
                let i = routes.iter().position(|x| Arc::ptr_eq(x, r.route)).unwrap();
                (i, r.captures)
            });
            prop_assert_eq!(got, naive_first(&table, &m, &path));
        }

        /// The shadowing warning is sound: a pattern said covered matches nothing the earlier
        /// one does not.
        #[test]
        fn covered_means_covered(a in pattern(), b in pattern(), paths in prop::collection::vec(path(), 1..20)) {
            if let (Ok(pa), Ok(pb)) = (PathPattern::parse(&a), PathPattern::parse(&b)) {
                if pa.is_covered_by(&pb) {
                    for p in &paths {
                        prop_assert!(pa.matches(p).is_none() || pb.matches(p).is_some(), "{a} {b} {p}");
                    }
                }
            }
        }
    }
}
