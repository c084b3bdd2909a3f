//! `[store]`: where shared state lives.

use std::time::Duration;

use super::{root, Validator};
use crate::config::raw::{BackendKind, OneOrMany, RawStore};
use crate::config::{Backend, OnFailure, StoreSettings};
use crate::store::RedisSettings;

const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(5);

impl Validator<'_> {
    pub(super) fn store(&self) -> StoreSettings {
        let p = root("store");
        let Some(raw) = (if self.table.contains_key("store") {
            self.section::<RawStore>("store")
        } else {
            None
        }) else {
            return StoreSettings::default();
        };
        let max_staleness = self
            .duration(
                &p.key("max_staleness"),
                raw.max_staleness.as_deref(),
                DEFAULT_MAX_STALENESS,
            )
            .as_secs();
        if max_staleness == 0 {
            self.err(&p.key("max_staleness"), "must be at least one second");
        }
        let kind = self.choice(&p.key("backend"), &raw.backend, BackendKind::Memory);
        let backend = match kind {
            BackendKind::Memory => {
                for (key, set) in [
                    ("redis_url", raw.redis_url.is_some()),
                    ("redis_ca_file", raw.redis_ca_file.is_some()),
                    ("key_prefix", raw.key_prefix.is_some()),
                ] {
                    if set {
                        self.warn(&p.key(key), "ignored: the backend is \"memory\"");
                    }
                }
                Backend::Memory
            }
            BackendKind::Redis => Backend::Redis(self.redis(&raw)),
        };
        StoreSettings {
            backend,
            on_failure: self.choice(&p.key("on_failure"), &raw.on_failure, OnFailure::Closed),
            max_staleness,
        }
    }

    fn redis(&self, raw: &RawStore) -> RedisSettings {
        let p = root("store");
        let urls: Vec<String> = match &raw.redis_url {
            None => {
                self.err(&p.key("backend"), "backend \"redis\" needs redis_url");
                Vec::new()
            }
            Some(OneOrMany::One(u)) => vec![u.clone()],
            Some(OneOrMany::Many(list)) => list.clone(),
        };
        if matches!(&raw.redis_url, Some(OneOrMany::Many(l)) if l.is_empty()) {
            self.err(&p.key("redis_url"), "needs at least one URL");
        }
        for (i, url) in urls.iter().enumerate() {
            let at = match &raw.redis_url {
                Some(OneOrMany::Many(_)) => p.key("redis_url").index(i),
                _ => p.key("redis_url"),
            };
            let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
            if !scheme_ok || redis::Client::open(url.as_str()).is_err() {
                // The URL may hold a password: it is not repeated here.
                self.err(
                    &at,
                    "not a redis:// or rediss:// URL (redis://[user:password@]host[:port][/db])",
                );
            }
        }
        let key_prefix = raw
            .key_prefix
            .clone()
            .unwrap_or_else(|| "portcullis:".into());
        if key_prefix.is_empty() {
            self.err(
                &p.key("key_prefix"),
                "must not be empty: deployments sharing a Redis keep apart by it",
            );
        }
        let ca_pem = raw.redis_ca_file.as_ref().and_then(|f| {
            let at = p.key("redis_ca_file");
            if !urls.iter().all(|u| u.starts_with("rediss://")) {
                self.err(&at, "a CA file is for rediss:// URLs only");
            }
            let pem = self.read_file(&at, f)?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                self.err(&at, "not a PEM certificate file");
                return None;
            }
            Some(pem)
        });
        RedisSettings {
            urls,
            key_prefix,
            ca_pem,
        }
    }
}
