//! `[decision]`: the listener other proxies ask whether a request may pass (docs/DECISION.md).

use super::{root, Validator};
use crate::config::raw::{Forwarded, RawDecision};
use crate::config::DecisionSettings;
use crate::headers::TrustedProxies;

impl Validator<'_> {
    pub(super) fn decision(&self) -> Option<DecisionSettings> {
        let raw = self.section::<RawDecision>("decision")?;
        let p = root("decision");
        if raw.listen.is_empty() {
            self.err(&p.key("listen"), "at least one address is needed");
        }
        let listen = self.addresses(&raw.listen, &p.key("listen"));
        // Named, never guessed: a client's own X-Forwarded-Uri, which nginx relays to its
        // subrequest, must never describe a request judged under another form.
        let forwarded = match &raw.forwarded {
            Some(c) => self.choice(&p.key("forwarded"), c, Forwarded::XOriginal),
            None => {
                self.err(
                    &p.key("forwarded"),
                    "required: where the judged request is described (\"x-forwarded\", \"x-original\" or \"path\")",
                );
                Forwarded::XOriginal
            }
        };
        let trusted_proxies = match &raw.trusted_proxies {
            Some(list) if !list.is_empty() => {
                TrustedProxies(self.networks(list, &p.key("trusted_proxies")))
            }
            _ => {
                self.err(
                    &p.key("trusted_proxies"),
                    "required: the front proxies that may ask (CIDRs or addresses), at least one",
                );
                TrustedProxies(Vec::new())
            }
        };
        let path_prefix = raw.path_prefix.clone().filter(|p| !p.is_empty());
        if let Some(prefix) = &path_prefix {
            if forwarded != Forwarded::Path {
                self.err(&p.key("path_prefix"), "only with forwarded = \"path\"");
            } else if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
                self.err(
                    &p.key("path_prefix"),
                    "must start with `/` and not end with one, such as \"/check\"",
                );
            }
        }
        Some(DecisionSettings {
            listen,
            forwarded,
            trusted_proxies,
            path_prefix,
        })
    }
}
