//! `[decision]`: the listener other proxies ask whether a request may pass (docs/DECISION.md).

use super::{root, Validator};
use crate::config::raw::RawDecision;
use crate::config::DecisionSettings;

impl Validator<'_> {
    /// `trusted`: whether `[server] trusted_proxies` names anyone (no one else is answered).
    pub(super) fn decision(&self, trusted: bool) -> Option<DecisionSettings> {
        let raw = self.section::<RawDecision>("decision")?;
        let p = root("decision");
        if raw.listen.is_empty() {
            self.err(&p.key("listen"), "at least one address is needed");
        }
        let listen = self.addresses(&raw.listen, &p.key("listen"));
        let path_prefix = raw.path_prefix.clone().filter(|p| !p.is_empty());
        if let Some(prefix) = &path_prefix {
            if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
                self.err(
                    &p.key("path_prefix"),
                    "must start with `/` and not end with one, such as \"/check\"",
                );
            }
        }
        if !trusted {
            self.warn(
                &p,
                "no [server] trusted_proxies: every decision request will be refused (403 untrusted_proxy)",
            );
        }
        Some(DecisionSettings {
            listen,
            path_prefix,
        })
    }
}
