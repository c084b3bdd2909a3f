//! TOTP secrets at rest: sealed with AES-256-GCM under a key derived from `[login] db_key`,
//! bound to the user they belong to (a sealed secret copied to another row does not open).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The format's version, so that a later one can be told apart.
const PREFIX: &str = "v1:";

/// The cipher of one `db_key`.
#[derive(Clone)]
pub(crate) struct SecretBox(Aes256Gcm);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// `db_key` is checked for length (32 bytes or more) by the config; SHA-256 of it is
    /// the AES key (a KDF adds nothing to a key of that much entropy).
    pub(crate) fn new(db_key: &str) -> SecretBox {
        let key: [u8; 32] = Sha256::digest(db_key.as_bytes()).into();
        SecretBox(Aes256Gcm::new(&key.into()))
    }

    /// `secret` sealed for `owner`: `v1:` and base64 of the nonce and the ciphertext.
    pub(crate) fn seal(&self, owner: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message this short");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(out))
    }

    /// The secret, or `None` if it was not sealed with this key for this owner.
    pub(crate) fn open(&self, owner: &str, sealed: &str) -> Option<String> {
        let bytes = STANDARD_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_owner() {
        let key = SecretBox::new("k".repeat(32).as_str());
        let sealed = key.seal("alice", "GEZDGNBVGY3TQOJQ");
        assert!(!sealed.contains("GEZDGNBVGY3TQOJQ"));
        assert_eq!(
            key.open("alice", &sealed).as_deref(),
            Some("GEZDGNBVGY3TQOJQ")
        );
        assert_eq!(key.open("bob", &sealed), None, "bound to its owner");
        let other = SecretBox::new("x".repeat(32).as_str());
        assert_eq!(other.open("alice", &sealed), None, "another db_key");
        assert_ne!(
            sealed,
            key.seal("alice", "GEZDGNBVGY3TQOJQ"),
            "a fresh nonce each time"
        );
        // A character changed in the middle (the last one may carry only padding bits, and
        // may already be the one written over it).
        let mut tampered: Vec<char> = sealed.chars().collect();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(key.open("alice", &tampered), None);
        assert_eq!(key.open("alice", "plain"), None);
    }
}
