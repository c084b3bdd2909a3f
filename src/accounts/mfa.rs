//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew either way)
//! and single-use backup codes kept as SHA-256 digests.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

pub(crate) const STEP: u64 = 30;
const DIGITS: usize = 6;

/// A user's TOTP generator.
#[derive(Clone)]
pub(crate) struct Totp(TOTP);

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(***)")
    }
}

impl Totp {
    /// From the base32 secret an authenticator app was given (padding and case optional).
    pub(crate) fn from_base32(secret: &str) -> Result<Self, String> {
        let cleaned: String = secret
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .collect::<String>()
            .to_ascii_uppercase();
        let bytes = Secret::Encoded(cleaned)
            .to_bytes()
            .map_err(|_| "not a base32 secret".to_string())?;
        if bytes.len() < 10 {
            return Err("a TOTP secret needs at least 80 bits (16 base32 characters)".into());
        }
        Ok(Totp(TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP,
            bytes,
        )))
    }

    /// The secret in base32, as an authenticator app (and users.toml) has it.
    pub(crate) fn to_base32(&self) -> String {
        Secret::Raw(self.0.secret.clone()).to_encoded().to_string()
    }

    /// The time step whose code `code` is, among the steps of `now` ± 1; compared in
    /// constant time. The caller marks the step spent so the code cannot be replayed.
    pub(crate) fn matching_step(&self, code: &str, now: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now / STEP;
        let mut found = None;
        for step in [current.saturating_sub(1), current, current + 1] {
            let expected = self.0.generate(step * STEP);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    /// The code at `time`.
    #[cfg(test)]
    pub(crate) fn code_at(&self, time: u64) -> String {
        self.0.generate(time)
    }
}

/// A backup code as stored: SHA-256 of the code lower-cased, spaces and dashes removed.
pub(crate) fn backup_code_digest(code: &str) -> [u8; 32] {
    let normalised: String = code
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect::<String>()
        .to_lowercase();
    Sha256::digest(normalised.as_bytes()).into()
}

/// Whether `code` is one of `digests`, looked at in constant time (every digest compared).
pub(crate) fn matching_backup_code(digests: &[[u8; 32]], code: &str) -> Option<[u8; 32]> {
    let digest = backup_code_digest(code);
    let mut hit = subtle::Choice::from(0);
    for d in digests {
        hit |= d.ct_eq(&digest);
    }
    bool::from(hit).then_some(digest)
}

/// Letters and digits that cannot be misread for one another.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// `count` fresh backup codes, `xxxxx-xxxxx` (about 49 bits each), from the OS's randomness.
pub(crate) fn new_backup_codes(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut code = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    code.push('-');
                }
                code.push(random_symbol() as char);
            }
            code
        })
        .collect()
}

/// One symbol of `ALPHABET`, uniformly: bytes past the last whole multiple are redrawn.
fn random_symbol() -> u8 {
    let limit = 256 - (256 % ALPHABET.len());
    loop {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b).expect("the OS random source is available");
        if (b[0] as usize) < limit {
            return ALPHABET[b[0] as usize % ALPHABET.len()];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret ("12345678901234567890") and vectors, last 6 digits.
    #[test]
    fn rfc6238_vectors() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let t = Totp::from_base32(secret).unwrap();
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(t.code_at(time), code, "{time}");
        }
    }

    #[test]
    fn codes_match_within_one_step_either_way() {
        let t = Totp::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let now = 1_800_000_015;
        let step = now / STEP;
        assert_eq!(t.matching_step(&t.code_at(now), now), Some(step));
        assert_eq!(t.matching_step(&t.code_at(now - 30), now), Some(step - 1));
        assert_eq!(t.matching_step(&t.code_at(now + 30), now), Some(step + 1));
        assert_eq!(t.matching_step(&t.code_at(now - 60), now), None);
        assert_eq!(t.matching_step("12345", now), None);
        assert_eq!(t.matching_step("abcdef", now), None);
        assert!(Totp::from_base32("not base32!").is_err());
        assert!(Totp::from_base32("GEZDGNBV").is_err(), "too short");
        assert!(Totp::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").is_ok());
    }

    #[test]
    fn backup_codes() {
        let codes = new_backup_codes(10);
        assert_eq!(codes.len(), 10);
        assert!(codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        let digests: Vec<[u8; 32]> = codes.iter().map(|c| backup_code_digest(c)).collect();
        let typed = codes[3].to_uppercase().replace('-', " ");
        assert_eq!(matching_backup_code(&digests, &typed), Some(digests[3]));
        assert_eq!(matching_backup_code(&digests, "aaaaa-aaaaa"), None);
    }
}
