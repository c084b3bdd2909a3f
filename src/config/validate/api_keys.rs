//! `[[api_keys]]`: keys by digest, their grants made once, their own `rate_limit`.

use std::collections::HashSet;
use std::sync::Arc;

use super::{root, Validator};
use crate::auth::apikey::{self, subject_claims, ApiKey, ApiKeys};
use crate::auth::jwt::can_be_header_value;
use crate::config::raw::RawApiKey;
use crate::config::source::KeyPath;
use crate::policy::RoleGraph;
use crate::ratelimit::{KeyPart, PolicyId, PolicySpec};

impl Validator<'_> {
    /// The keys; those with their own `rate_limit` get a policy of their own.
    pub(super) fn api_keys(&self, roles: &HashSet<String>, graph: Option<&RoleGraph>) -> ApiKeys {
        let p = root("api_keys");
        let mut keys: Vec<ApiKey> = Vec::new();
        for (i, raw) in self.array::<RawApiKey>(self.table.get("api_keys"), &p) {
            let kp = p.index(i);
            if raw.id.is_empty() {
                self.err(&kp.key("id"), "must not be empty");
            }
            if keys.iter().any(|k| k.id == raw.id) {
                self.err(
                    &kp.key("id"),
                    format!("API key id `{}` is used twice", raw.id),
                );
            }
            let digest = self.digest(&raw, &kp, &keys);
            self.check_roles(&raw.roles, &kp.key("roles"), roles);
            let allowed_ips = self.networks(&raw.allowed_ips, &kp.key("allowed_ips"));
            let expires_at = raw.expires_at.as_deref().and_then(|s| {
                apikey::parse_rfc3339(s)
                    .map_err(|e| self.err(&kp.key("expires_at"), e))
                    .ok()
            });
            let rate_limit =
                self.api_key_rate_limit(&raw.id, raw.rate_limit.as_deref(), &kp.key("rate_limit"));
            let subject = raw.subject.clone().unwrap_or_else(|| raw.id.clone());
            if !can_be_header_value(&subject) {
                let at = if raw.subject.is_some() {
                    "subject"
                } else {
                    "id"
                };
                self.err(
                    &kp.key(at),
                    "must not hold control characters (it is sent as a header)",
                );
            }
            let Some(digest) = digest else { continue };
            let grants = graph.map(|g| g.grants(&raw.roles, &raw.permissions));
            keys.push(ApiKey {
                claims: subject_claims(&subject),
                subject,
                id: raw.id,
                digest,
                roles: raw.roles,
                permissions: raw.permissions,
                allowed_ips,
                expires_at,
                issued_at: None,
                rate_limit,
                // An invalid [roles] has its own errors, and no config comes of it.
                grants: Arc::new(grants.unwrap_or_default()),
            });
        }
        ApiKeys::new(keys)
    }

    /// `key_sha256`: 32 bytes in hex, not the same as another key's.
    fn digest(&self, raw: &RawApiKey, kp: &KeyPath, keys: &[ApiKey]) -> Option<[u8; 32]> {
        match hex::decode(&raw.key_sha256) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut d = [0u8; 32];
                d.copy_from_slice(&bytes);
                if keys.iter().any(|k| k.digest == d) {
                    self.err(&kp.key("key_sha256"), "the same key is configured twice");
                }
                Some(d)
            }
            _ => {
                self.err(
                    &kp.key("key_sha256"),
                    "must be a SHA-256 digest: 64 hex characters",
                );
                None
            }
        }
    }

    /// An API key's own `rate_limit = "100/s"`: one bucket for the key, burst = N.
    fn api_key_rate_limit(&self, id: &str, rate: Option<&str>, p: &KeyPath) -> Option<PolicyId> {
        let quota = self.quota(rate?, p, None, p)?;
        let spec = PolicySpec::new(format!("api_key:{id}"), vec![KeyPart::ApiKey], quota, false);
        Some(self.add_policy(spec))
    }
}
