//! Who the caller is: where a credential is found, how it is verified, what identity it yields.

pub mod apikey;
pub(crate) mod cache;
pub(crate) mod credentials;
pub(crate) mod facts;
pub(crate) mod identity;
pub(crate) mod internal;
pub(crate) mod jwks;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod oidc;

pub use identity::{AuthMethod, Identity};
