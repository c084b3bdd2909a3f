//! What a request may do: its path normalised (step 4), compiled routes (matcher), roles ->
//! permissions, ownership rules.

pub(crate) mod cors;
pub(crate) mod path;
pub(crate) mod roles;
pub(crate) mod route;

pub use roles::RoleGraph;
pub(crate) use route::{AuthMode, CredentialKind, Route};
