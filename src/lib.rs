//! Portcullis: a reverse-proxy authentication gateway on Pingora.
//!
//! The modules sit in layers, each importing only from those below (docs/ARCHITECTURE.md):
//! basics (`error`, `clock`, `headers`, `units`, `claims`, `logs`, `metrics`); the domain
//! (`policy`, `auth`, `ratelimit`, `store`, `upstream`, `accounts`), which knows nothing of
//! the config or of Pingora's sessions; `config` (the file, validated: plain data); `runtime`
//! (the state that lives with one config); `login`; what answers requests (`response`,
//! `endpoints`, `proxy`, `admin`); and `app` and `reload`, which build and run the server.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod auth;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod headers;
pub mod login;
pub mod logs;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod response;
pub mod runtime;
pub mod store;
pub mod units;
pub mod upstream;
