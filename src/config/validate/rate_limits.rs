//! `[rate_limits]`, a route's `rate_limit` list and an API key's own `rate_limit`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use toml::de::DeValue;

use super::{root, Validator};
use crate::config::raw::{OneOrMany, RawRateLimit, Scope};
use crate::config::source::{deserialize, KeyPath};
use crate::policy::Route;
use crate::ratelimit::{KeyPart, PolicyId, PolicySpec, Quota};
use crate::units::parse_rate;

/// The named policies, by name.
pub(super) type Policies = BTreeMap<String, PolicyId>;

impl Validator<'_> {
    /// `shared`: the store is shared (Redis), so `scope = "global"` is possible.
    pub(super) fn rate_limits(&self, shared: bool) -> Policies {
        let p = root("rate_limits");
        let mut policies = Policies::new();
        let Some(value) = self.table.get("rate_limits") else {
            return policies;
        };
        let DeValue::Table(t) = value.get_ref() else {
            self.err(&p, "expected a table of named policies");
            return policies;
        };
        for (name, def) in t.iter() {
            let name = name.get_ref().to_string();
            let pp = p.key(&name);
            if let Some(raw) = deserialize::<RawRateLimit>(self.src, def, &pp) {
                if let Some(spec) = self.policy(&name, &raw, &pp, shared) {
                    policies.insert(name, self.add_policy(spec));
                }
            }
        }
        policies
    }

    fn policy(
        &self,
        name: &str,
        raw: &RawRateLimit,
        p: &KeyPath,
        shared: bool,
    ) -> Option<PolicySpec> {
        let quota = self.quota(&raw.rate, &p.key("rate"), raw.burst, &p.key("burst"));
        let parts: Vec<&String> = match &raw.key {
            OneOrMany::One(part) => vec![part],
            OneOrMany::Many(parts) => parts.iter().collect(),
        };
        if parts.is_empty() {
            self.err(&p.key("key"), "needs at least one key part");
        }
        let mut key = Vec::new();
        for (i, part) in parts.into_iter().enumerate() {
            let at = match raw.key {
                OneOrMany::One(_) => p.key("key"),
                OneOrMany::Many(_) => p.key("key").index(i),
            };
            match KeyPart::parse(part) {
                Ok(k) if key.contains(&k) => self.err(&at, format!("`{part}` is listed twice")),
                Ok(k) => key.push(k),
                Err(e) => self.err(&at, e),
            }
        }
        let global = self.choice(&p.key("scope"), &raw.scope, Scope::Local) == Scope::Global;
        if global && !shared {
            self.err(
                &p.key("scope"),
                "scope \"global\" needs the shared store: [store] backend = \"redis\"",
            );
        }
        Some(PolicySpec::new(name, key, quota?, global))
    }

    /// `rate` and an optional `burst` (default: the N of the rate).
    pub(super) fn quota(
        &self,
        rate: &str,
        rate_at: &KeyPath,
        burst: Option<u64>,
        burst_at: &KeyPath,
    ) -> Option<Quota> {
        let rate = parse_rate(rate).map_err(|e| self.err(rate_at, e)).ok();
        let burst = match burst {
            None => None,
            Some(b) => match u32::try_from(b).ok().and_then(NonZeroU32::new) {
                Some(b) => Some(b),
                None => {
                    self.err(
                        burst_at,
                        format!("burst must be between 1 and {}", u32::MAX),
                    );
                    return None;
                }
            },
        };
        Some(Quota::new(rate?, burst))
    }

    /// A route's `rate_limit` list, resolved against `[rate_limits]`.
    pub(super) fn route_rate_limits(
        &self,
        names: &[String],
        p: &KeyPath,
        policies: &Policies,
    ) -> Vec<PolicyId> {
        let declared = |name: &str| match self.table.get("rate_limits").map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => t.contains_key(name),
            _ => false,
        };
        let mut listed = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match policies.get(name) {
                Some(id) if listed.contains(id) => {
                    self.err(&p.index(i), format!("policy `{name}` is listed twice"))
                }
                Some(id) => listed.push(*id),
                // An invalid policy has its own errors.
                None if declared(name) => {}
                None => self.err(
                    &p.index(i),
                    format!("unknown rate-limit policy `{name}` (not in [rate_limits])"),
                ),
            }
        }
        listed
    }

    /// Policies no route lists are probably a mistake.
    pub(super) fn warn_unused(&self, policies: &Policies, routes: &[Arc<Route>]) {
        for (name, id) in policies {
            if !routes.iter().any(|r| r.rate_limits.contains(id)) {
                self.warn(
                    &root("rate_limits").key(name),
                    format!("policy `{name}` is not listed by any route"),
                );
            }
        }
    }
}
