//! What an unknown username's password is checked against, so that its refusal takes as long
//! as a wrong password's (docs/CONFIG.md, `[login]`), whatever algorithms and costs the users' hashes have.
//!
//! One decoy hash per algorithm and cost among the users. Each unknown name is given one of
//! them by a keyed digest of the name, in proportion to how many users have that cost: a name
//! answers the same way each time, as a real user's would, and the times of unknown names are
//! spread like the users' own. The key is a digest of the users' hashes: stable across
//! restarts, unknown outside.

use sha2::{Digest, Sha256};

use super::password::{default_dummy, PasswordHash};

#[derive(Debug, Default)]
pub(crate) struct Decoys {
    key: [u8; 32],
    /// (users with this cost and every class before it, a decoy of this cost)
    classes: Vec<(u64, PasswordHash)>,
}

impl Decoys {
    /// From the users' hashes, in file order.
    pub(crate) fn new<'a>(hashes: impl IntoIterator<Item = &'a PasswordHash>) -> Self {
        let mut key = Sha256::new();
        // class -> (users, a hash of that class), in order of first appearance
        let mut counts: Vec<(String, u64, &PasswordHash)> = Vec::new();
        for h in hashes {
            key.update(h.phc_string().as_bytes());
            let class = h.cost_class();
            match counts.iter_mut().find(|(c, _, _)| *c == class) {
                Some(entry) => entry.1 += 1,
                None => counts.push((class, 1, h)),
            }
        }
        let mut total = 0;
        let classes = counts
            .into_iter()
            .map(|(_, n, h)| {
                total += n;
                (total, h.decoy())
            })
            .collect();
        Decoys {
            key: key.finalize().into(),
            classes,
        }
    }

    /// The decoy for `username`: always the same one for the same name.
    pub(crate) fn for_username(&self, username: &str) -> &PasswordHash {
        let Some(&(total, _)) = self.classes.last() else {
            return default_dummy();
        };
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(username.as_bytes())
            .finalize();
        let pick = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % total;
        self.classes
            .iter()
            .find(|(upto, _)| pick < *upto)
            .map(|(_, h)| h)
            .unwrap_or_else(|| default_dummy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spread_over_the_users_costs_and_keep_theirs() {
        let bcrypt = |cost| {
            let h = bcrypt::hash_with_result("x", cost).unwrap();
            PasswordHash::parse(&h.format_for_version(bcrypt::Version::TwoB)).unwrap()
        };
        // Three users at cost 4, one at cost 5.
        let users = [bcrypt(4), bcrypt(4), bcrypt(5), bcrypt(4)];
        let decoys = Decoys::new(&users);
        let mut at_5 = 0;
        for i in 0..400 {
            let name = format!("nobody-{i}");
            let d = decoys.for_username(&name);
            assert_eq!(d.cost_class(), decoys.for_username(&name).cost_class());
            if d.cost_class() == "bcrypt:5" {
                at_5 += 1;
            }
        }
        // A quarter of the names, give or take.
        assert!((60..140).contains(&at_5), "{at_5}");
        assert!(Decoys::default()
            .for_username("x")
            .cost_class()
            .starts_with("argon2id"));
    }
}
