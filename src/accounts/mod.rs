//! Accounts: users and what proves them (password hashes and the pool that checks them, TOTP
//! secrets and backup codes), where the login flows find them (`source`), and the one service
//! that changes them (`service`), with nothing of HTTP or the config in them.

pub(crate) mod db;
pub(crate) mod decoy;
pub(crate) mod directory;
pub(crate) mod follow;
pub(crate) mod keyring;
pub(crate) mod mfa;
pub(crate) mod password;
pub(crate) mod policy;
pub(crate) mod sealed;
pub(crate) mod service;
pub(crate) mod source;
pub(crate) mod trail;
pub(crate) mod users;
