//! Accounts: users and what proves them (password hashes and the pool that checks them, TOTP
//! secrets and backup codes), with nothing of HTTP or the config in them.

pub(crate) mod db;
pub(crate) mod decoy;
pub(crate) mod directory;
mod follow;
pub(crate) mod keyring;
pub(crate) mod mfa;
pub(crate) mod password;
pub mod policy;
pub(crate) mod sealed;
pub(crate) mod users;
