//! Accounts: users and what proves them (password hashes and the pool that checks them, TOTP
//! secrets and backup codes), with nothing of HTTP or the config in them.

// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
pub(crate) mod db;
pub(crate) mod decoy;
// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
pub(crate) mod directory;
// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
mod follow;
// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
pub(crate) mod keyring;
pub(crate) mod mfa;
pub(crate) mod password;
// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
pub mod policy;
// Wired into login, the endpoints and the admin API by the commits that follow.
#[allow(dead_code)]
pub(crate) mod sealed;
pub(crate) mod users;
