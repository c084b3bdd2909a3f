//! Portcullis: a reverse-proxy authentication gateway on Pingora.
//!
//! The modules sit in layers, each importing only from those below (docs/ARCHITECTURE.md):
//! basics (`error`, `clock`, `headers`, `units`, `claims`, `logs`, `metrics`,
//! `strict_json`); the domain
//! (`policy`, `auth`, `ratelimit`, `store`, `upstream`, `accounts`), which knows nothing of
//! the config or of Pingora's sessions; `config` (the file, validated: plain data); `runtime`
//! (the state that lives with one config); `caller` (who is calling) and `services` (what
//! every door shares); `login`; what answers requests (`response`, `endpoints`, `proxy`,
//! `admin`); and `app` and `reload`, which build and run the server.
//!
//! The public surface is what the binary (`cli`, `commands`, `logs`) and the integration
//! tests (`app`, `clock`, `config`) use, [`hot_path`] for the benchmarks and [`fuzzing`] for the
//! fuzz targets and properties.

#![warn(unreachable_pub)]

mod accounts;
mod admin;
pub mod app;
mod audit;
mod auth;
mod caller;
mod claims;
pub mod cli;
mod client_tls;
pub mod clock;
pub mod commands;
pub mod config;
mod endpoints;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod login;
pub mod logs;
mod mail;
mod metrics;
mod policy;
mod proxy;
mod ratelimit;
mod reload;
mod response;
mod runtime;
mod services;
mod store;
mod strict_json;
mod units;
mod upstream;

/// The per-request pieces the benchmarks (`benches/hot_path.rs`) measure, and nothing else:
/// not an API.
#[doc(hidden)]
pub mod hot_path {
    pub use crate::auth::apikey::{self, ApiKey, ApiKeys};
    pub use crate::auth::jwt::{ClaimPaths, Issuer, Lifetimes, Verifier};
    pub use crate::auth::keys::VerifyKey;
    pub use crate::auth::{AuthMethod, Identity};
    pub use crate::config::IdentitySettings;
    pub use crate::headers::{ClientHeaders, Wired};
    pub use crate::policy::path::normalize;
    pub use crate::policy::route::{find_route, AuthMode, PathPattern, Route};
    pub use crate::policy::RoleGraph;
    pub use crate::proxy::forward::{rewrite_upstream_request, Forwarding};
    pub use crate::ratelimit::{KeyInput, KeyPart, Policy, PolicySpec, Quota};
    pub use crate::store::{MemoryStore, Presented, Revocation, Store};
    pub use crate::units::parse_rate;
    pub use crate::upstream::UpstreamId;
}
