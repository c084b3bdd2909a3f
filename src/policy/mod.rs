//! What a request may do: its path normalised (step 4), compiled routes (matcher), roles ->
//! permissions, ownership rules.

pub mod path;
pub mod roles;
pub mod route;

pub use roles::RoleGraph;
pub use route::{AuthMode, CredentialKind, Owner, PathPattern, Route, RouteMatch};
