//! What a username and a new password must be (docs/CONFIG.md, "Users in a database").

/// `[login] password_policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            max_length: 128,
            reject_common: true,
        }
    }
}

/// Usernames in the database: 1 to 64 of ASCII letters, digits and `._@+-`.
pub(crate) const MAX_DB_USERNAME: usize = 64;

/// The lower-cased form of a username the database accepts, or why not.
pub(crate) fn username(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() || raw.len() > MAX_DB_USERNAME {
        return Err("a username is 1 to 64 characters");
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
    {
        return Err("a username is ASCII letters, digits and . _ @ + -");
    }
    Ok(raw.to_ascii_lowercase())
}

/// Whether `name` has the form of a provider user's fallback username (`{provider}-` and 12
/// hex digits): kept for them, so that nobody takes first the name a first login needs.
pub(crate) fn looks_federated(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(head, tail)| {
        !head.is_empty() && tail.len() == 12 && tail.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl PasswordPolicy {
    /// Why `password` is too weak for `username`, in words for the client; lengths count
    /// characters, not bytes.
    pub(crate) fn check(&self, username: &str, password: &str) -> Result<(), String> {
        let chars = password.chars().count();
        if chars < self.min_length {
            return Err(format!(
                "a password needs at least {} characters",
                self.min_length
            ));
        }
        if chars > self.max_length {
            return Err(format!(
                "a password has at most {} characters",
                self.max_length
            ));
        }
        if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
            return Err("a password must not contain the username".into());
        }
        if self.reject_common && is_common(password) {
            return Err("this password is one of the most common passwords".into());
        }
        Ok(())
    }
}

/// Whether the whole password (in any case) is on zxcvbn's list of the 30,000 most used
/// passwords.
fn is_common(password: &str) -> bool {
    use zxcvbn::matching::patterns::MatchPattern;
    let estimate = zxcvbn::zxcvbn(password, &[]);
    let matches = estimate.sequence();
    // zxcvbn does not export the dictionaries' type; its name is all there is to compare.
    matches.len() == 1
        && matches!(&matches[0].pattern, MatchPattern::Dictionary(d)
            if format!("{:?}", d.dictionary_name) == "Passwords" && !d.reversed && !d.l33t)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_providers_fallback_name_is_kept_for_it() {
        assert!(looks_federated("corp-9f86d081884c"));
        assert!(looks_federated("my-idp-0123456789ab"));
        for other in [
            "alice",
            "corp-",
            "-9f86d081884c",
            "corp-9f86d081884",
            "corp-9f86d081884g",
        ] {
            assert!(!looks_federated(other), "{other}");
        }
    }
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(username("Alice.B+1@x-y_z").unwrap(), "alice.b+1@x-y_z");
        for bad in ["", "a b", "ünïcode", "semi;colon", &"a".repeat(65)] {
            assert!(username(bad).is_err(), "{bad}");
        }
        assert!(username(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn each_rule_of_the_policy() {
        let p = PasswordPolicy::default();
        assert!(p.check("alice", "correct horse battery").is_ok());
        assert!(p
            .check("alice", "short")
            .unwrap_err()
            .contains("at least 12"));
        assert!(p
            .check("alice", &"x".repeat(129))
            .unwrap_err()
            .contains("at most 128"));
        assert!(p
            .check("alice", "my-ALICE-password")
            .unwrap_err()
            .contains("username"));
        // On the list whole, in any case; a listed word inside a longer password is not.
        for common in ["password1234", "qwertyuiop123", "PASSWORD1234"] {
            assert!(p.check("alice", common).is_err(), "{common}");
        }
        assert!(p.check("alice", "iloveyou1234").is_ok());
        assert!(p
            .check("alice", "password1234")
            .unwrap_err()
            .contains("most common"));
        let lax = PasswordPolicy {
            reject_common: false,
            ..p
        };
        assert!(lax.check("alice", "password1234").is_ok());
        // Lengths are characters: twelve of them, more bytes.
        assert!(p.check("alice", "ééééééééééé€").is_ok());
    }
}
