//! `[[routes]]`: pattern, methods, upstream, auth, accepted credentials, roles, ownership,
//! rate limits; and the warning for a route an earlier one shadows.

use std::collections::HashSet;
use std::sync::Arc;

use http::Method;

use super::rate_limits::Policies;
use super::response::Headers;
use super::upstreams::Upstreams;
use super::{root, Validator};
use crate::config::raw::{Choice, RawOwner, RawRoute};
use crate::config::source::KeyPath;
use crate::policy::route::{AuthMode, CredentialKind, Owner, PathPattern, Route, Unauthenticated};

impl Validator<'_> {
    pub(super) fn routes(
        &self,
        upstreams: &Upstreams,
        roles: &HashSet<String>,
        configured: &[CredentialKind],
        policies: &Policies,
        response_headers: &Headers,
        providers: &[&str],
    ) -> Vec<Arc<Route>> {
        let p = root("routes");
        let mut routes: Vec<(usize, Arc<Route>)> = Vec::new();
        for (i, raw) in self.array::<RawRoute>(self.table.get("routes"), &p) {
            let rp = p.index(i);
            let route = self.route(&raw, &rp, upstreams, roles, configured, policies);
            let Some(mut route) = route else {
                continue;
            };
            route.response_headers = self.route_response_headers(
                &raw.response_headers,
                &rp.key("response_headers"),
                response_headers,
            );
            route.unauthenticated = self.unauthenticated(&raw, &rp, providers);
            let redirects = route.unauthenticated != Unauthenticated::Refuse;
            if redirects && !route.accepts(CredentialKind::Cookie) {
                let why =
                    "the provider's login opens a cookie session: the route must accept \"cookie\"";
                self.err(&rp.key("unauthenticated"), why);
            }
            self.warn_if_shadowed(&route, &routes, &rp);
            routes.push((i, Arc::new(route)));
        }
        routes.into_iter().map(|(_, r)| r).collect()
    }

    fn route(
        &self,
        raw: &RawRoute,
        rp: &KeyPath,
        upstreams: &Upstreams,
        roles: &HashSet<String>,
        configured: &[CredentialKind],
        policies: &Policies,
    ) -> Option<Route> {
        let pattern = PathPattern::parse(&raw.path)
            .map_err(|e| self.err(&rp.key("path"), e))
            .ok();
        let methods = self.methods(raw, rp);
        let upstream = upstreams.by_name.get(&raw.upstream).copied();
        if upstream.is_none() && !self.upstream_declared(&raw.upstream) {
            self.err(
                &rp.key("upstream"),
                format!("unknown upstream `{}`", raw.upstream),
            );
        }
        let auth = match &raw.auth {
            Choice::Is(a) => Some(*a),
            Choice::Not(why) => {
                self.err(&rp.key("auth"), why.clone());
                None
            }
        };
        let accept = self.accept(raw, rp, configured);
        if auth == Some(AuthMode::Required) && configured.is_empty() {
            self.err(
                &rp.key("auth"),
                "auth is required but no credential kind is configured ([tokens] or [[api_keys]])",
            );
        }
        self.check_roles(&raw.roles_any, &rp.key("roles_any"), roles);
        let rate_limits = self.route_rate_limits(&raw.rate_limit, &rp.key("rate_limit"), policies);
        if let Some(prefix) = &raw.strip_prefix {
            if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
                self.err(
                    &rp.key("strip_prefix"),
                    "must start with `/` and not end with one",
                );
            }
        }
        let owner = match &raw.owner {
            Some(o) => Some(self.owner(o, &rp.key("owner"), auth, pattern.as_ref(), roles)?),
            None => None,
        };
        Some(Route {
            name: raw.name.clone().unwrap_or_else(|| raw.path.clone()).into(),
            pattern: pattern?,
            methods,
            upstream: upstream?,
            auth: auth?,
            accept,
            roles_any: raw.roles_any.clone(),
            permissions_all: raw.permissions_all.clone(),
            strip_prefix: raw.strip_prefix.clone(),
            owner,
            rate_limits,
            cors: raw.cors.unwrap_or(true),
            require_mfa: raw.require_mfa,
            sender_constrained: raw.sender_constrained,
            response_headers: Vec::new(),
            unauthenticated: Unauthenticated::Refuse,
        })
    }

    /// `unauthenticated`: `"refuse"`, or `"redirect:NAME"` of a configured `[[oidc]]`.
    fn unauthenticated(&self, raw: &RawRoute, rp: &KeyPath, providers: &[&str]) -> Unauthenticated {
        let at = rp.key("unauthenticated");
        match raw.unauthenticated.as_deref() {
            None | Some("refuse") => Unauthenticated::Refuse,
            Some(v) => match v.strip_prefix("redirect:") {
                Some(name) if providers.contains(&name) => {
                    Unauthenticated::Redirect(name.to_string())
                }
                Some(name) => {
                    self.err(&at, format!("no [[oidc]] provider is named `{name}`"));
                    Unauthenticated::Refuse
                }
                None => {
                    self.err(&at, "must be \"refuse\" or \"redirect:NAME\"");
                    Unauthenticated::Refuse
                }
            },
        }
    }

    fn methods(&self, raw: &RawRoute, rp: &KeyPath) -> Vec<Method> {
        let mut methods = Vec::new();
        for (m, name) in raw.methods.iter().flatten().enumerate() {
            match Method::from_bytes(name.to_ascii_uppercase().as_bytes()) {
                Ok(method) => methods.push(method),
                Err(_) => self.err(
                    &rp.key("methods").index(m),
                    format!("`{name}` is not an HTTP method"),
                ),
            }
        }
        methods
    }

    /// `accept`: every configured kind by default; a kind that is not configured is an error.
    fn accept(
        &self,
        raw: &RawRoute,
        rp: &KeyPath,
        configured: &[CredentialKind],
    ) -> Vec<CredentialKind> {
        // A certificate is a credential only where a route says so: with `client_auth`, every
        // connection of a client may carry one.
        let Some(list) = &raw.accept else {
            return configured
                .iter()
                .copied()
                .filter(|k| *k != CredentialKind::Mtls)
                .collect();
        };
        list.iter()
            .enumerate()
            .filter_map(|(a, kind)| match kind {
                Choice::Is(k) => Some((a, *k)),
                Choice::Not(why) => {
                    self.err(&rp.key("accept").index(a), why.clone());
                    None
                }
            })
            .filter(|(a, kind)| {
                let ok = configured.contains(kind);
                if !ok {
                    let name = match kind {
                        CredentialKind::Jwt => "jwt",
                        CredentialKind::ApiKey => "api_key",
                        CredentialKind::Cookie => "cookie",
                        CredentialKind::Mtls => "mtls ([mtls])",
                    };
                    self.err(
                        &rp.key("accept").index(*a),
                        format!("`{name}` credentials are not configured"),
                    );
                }
                ok
            })
            .map(|(_, k)| k)
            .collect()
    }

    fn owner(
        &self,
        o: &RawOwner,
        op: &KeyPath,
        auth: Option<AuthMode>,
        pattern: Option<&PathPattern>,
        roles: &HashSet<String>,
    ) -> Option<Owner> {
        self.check_roles(&o.unless_roles, &op.key("unless_roles"), roles);
        if auth == Some(AuthMode::None) {
            self.err(
                op,
                "an ownership rule needs auth = \"required\" or \"optional\"",
            );
        }
        let index = pattern?.captures().position(|c| c == o.param);
        let Some(capture_index) = index else {
            self.err(
                &op.key("param"),
                format!("the path has no `{{{}}}` segment", o.param),
            );
            return None;
        };
        Some(Owner {
            capture_index,
            claim: o
                .claim
                .as_deref()
                .unwrap_or("sub")
                .split('.')
                .map(str::to_string)
                .collect(),
            unless_roles: o.unless_roles.clone(),
        })
    }

    /// A route that an earlier one covers (its paths and methods) never matches: a warning.
    fn warn_if_shadowed(&self, route: &Route, earlier: &[(usize, Arc<Route>)], rp: &KeyPath) {
        for (j, e) in earlier {
            let methods_covered = e.methods.is_empty()
                || (!route.methods.is_empty() && route.methods.iter().all(|m| e.allows_method(m)));
            if methods_covered && route.pattern.is_covered_by(&e.pattern) {
                self.warn(
                    &rp.key("path"),
                    format!(
                        "route `{}` is shadowed by routes[{j}] (`{}`) and never matches",
                        route.name, e.name
                    ),
                );
                return;
            }
        }
    }
}
