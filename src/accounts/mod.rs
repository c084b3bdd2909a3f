//! Accounts: users and what proves them (password hashes and the pool that checks them, TOTP
//! secrets and backup codes), with nothing of HTTP or the config in them.

pub(crate) mod decoy;
pub(crate) mod mfa;
pub(crate) mod password;
pub(crate) mod users;
