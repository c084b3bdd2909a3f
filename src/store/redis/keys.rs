//! Key names, all under `key_prefix`.

/// Key names, all under the prefix. The revocation keys share a hash tag, so that the script
/// touching all three lands on one cluster slot.
#[derive(Debug)]
pub(super) struct Keys {
    prefix: String,
    /// A random id written once: when it changes, Redis has lost what it held.
    pub(super) epoch: String,
    pub(super) version: String,
    pub(super) by_until: String,
    pub(super) by_version: String,
    pub(super) channel: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            epoch: format!("{prefix}{{rev}}:epoch"),
            version: format!("{prefix}{{rev}}:version"),
            by_until: format!("{prefix}{{rev}}:by_until"),
            by_version: format!("{prefix}{{rev}}:by_version"),
            channel: format!("{prefix}revocations"),
        }
    }

    pub(super) fn session(&self, sid: &str) -> String {
        format!("{}sess:{sid}", self.prefix)
    }

    /// What the owner's list shows of a session, beside `session` (with the same TTL).
    pub(super) fn session_info(&self, sid: &str) -> String {
        format!("{}sinfo:{sid}", self.prefix)
    }

    /// The sessions of one subject (hex, so that no byte of it can break the key).
    pub(super) fn user_sessions(&self, subject: &str) -> String {
        format!("{}usess:{}", self.prefix, hex::encode(subject.as_bytes()))
    }

    /// Failures and lock of one username: one hash tag, hex so that no byte of the name can
    /// break it.
    pub(super) fn login(&self, username: &str) -> (String, String) {
        let tag = hex::encode(username.as_bytes());
        (
            format!("{}login:{{{tag}}}:failures", self.prefix),
            format!("{}login:{{{tag}}}:lock", self.prefix),
        )
    }

    pub(super) fn spent(&self, marker: &str) -> String {
        format!("{}spent:{marker}", self.prefix)
    }

    pub(super) fn mfa(&self, id: &str) -> String {
        format!("{}mfa:{id}", self.prefix)
    }

    /// A value taken once (hex, so that no byte of the name can break the key).
    pub(super) fn kept(&self, key: &str) -> String {
        format!("{}kept:{}", self.prefix, hex::encode(key.as_bytes()))
    }

    pub(super) fn linked(&self, set: &str) -> String {
        format!("{}link:{}", self.prefix, hex::encode(set.as_bytes()))
    }

    pub(super) fn bucket(&self, policy_key: &str) -> String {
        format!("{}rl:{policy_key}", self.prefix)
    }
}
