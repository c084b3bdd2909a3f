//! Accounts: users and what proves them (password hashes and the pool that checks them, TOTP
//! secrets and backup codes), with nothing of HTTP or the config in them.

pub mod decoy;
pub mod mfa;
pub mod password;
pub mod users;
