//! What a request may do: compiled routes (matcher), roles -> permissions, ownership rules.

pub mod roles;
pub mod route;

pub use roles::RoleGraph;
pub use route::{AuthMode, CredentialKind, Owner, PathPattern, Route, RouteMatch};
