//! `[rate_limits]`, a route's `rate_limit` list and an API key's own `rate_limit`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use toml::de::DeValue;

use super::{root, Validator};
use crate::config::duration::parse_rate;
use crate::config::raw::{OneOrMany, RawRateLimit};
use crate::config::source::{deserialize, KeyPath};
use crate::ratelimit::{KeyPart, Policy, Quota};

/// The named policies, by name.
pub(super) type Policies = BTreeMap<String, Arc<Policy>>;

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
                if let Some(policy) = self.policy(&name, &raw, &pp, shared) {
                    policies.insert(name, Arc::new(policy));
                }
            }
        }
        policies
    }

    fn policy(&self, name: &str, raw: &RawRateLimit, p: &KeyPath, shared: bool) -> Option<Policy> {
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
        let global = match raw.scope.as_deref() {
            None | Some("local") => false,
            Some("global") => {
                if !shared {
                    self.err(
                        &p.key("scope"),
                        "scope \"global\" needs the shared store: [store] backend = \"redis\"",
                    );
                }
                true
            }
            Some(other) => {
                self.err(
                    &p.key("scope"),
                    format!("`{other}` is not one of local, global"),
                );
                false
            }
        };
        let limiter = self.limiter(name, &key, quota?, global);
        Some(Policy::new(name, key, limiter))
    }

    /// `rate` and an optional `burst` (default: the N of the rate).
    fn quota(
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
    ) -> Vec<Arc<Policy>> {
        let declared = |name: &str| match self.table.get("rate_limits").map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => t.contains_key(name),
            _ => false,
        };
        let mut listed = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match policies.get(name) {
                Some(policy) if listed.iter().any(|l| Arc::ptr_eq(l, policy)) => {
                    self.err(&p.index(i), format!("policy `{name}` is listed twice"))
                }
                Some(policy) => listed.push(policy.clone()),
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

    /// An API key's own `rate_limit = "100/s"`: one bucket for the key, burst = N.
    pub(super) fn api_key_rate_limit(
        &self,
        id: &str,
        rate: Option<&str>,
        p: &KeyPath,
    ) -> Option<Arc<Policy>> {
        let quota = self.quota(rate?, p, None, p)?;
        let name = format!("api_key:{id}");
        let limiter = self.limiter(&name, &[KeyPart::ApiKey], quota, false);
        Some(Arc::new(Policy::new(name, vec![KeyPart::ApiKey], limiter)))
    }

    /// Policies no route lists are probably a mistake.
    pub(super) fn warn_unused(&self, policies: &Policies, used: &[Arc<Policy>]) {
        for (name, policy) in policies {
            if !used.iter().any(|u| Arc::ptr_eq(u, policy)) {
                self.warn(
                    &root("rate_limits").key(name),
                    format!("policy `{name}` is not listed by any route"),
                );
            }
        }
    }
}
