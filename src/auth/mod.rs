//! Who the caller is: where a credential is found, how it is verified, what identity it yields.

pub mod apikey;
pub mod cache;
pub mod credentials;
pub mod identity;
pub mod internal;
pub mod jwks;
pub mod jwt;
pub mod keys;

pub use identity::{AuthMethod, Identity};
