//! Portcullis: a reverse-proxy authentication gateway on Pingora.
//!
//! The modules sit in layers, each importing only from those below (docs/ARCHITECTURE.md):
//! basics (`error`, `clock`, `headers`, `units`, `claims`, `logs`, `metrics`); the domain
//! (`policy`, `auth`, `ratelimit`, `store`, `upstream`, `accounts`), which knows nothing of
//! the config or of Pingora's sessions; `config` (the file, validated: plain data); `runtime`
//! (the state that lives with one config); `login`; what answers requests (`response`,
//! `endpoints`, `proxy`, `admin`); and `app` and `reload`, which build and run the server.

#![warn(unreachable_pub)]

pub mod accounts;
mod admin;
pub mod app;
pub mod auth;
mod claims;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
mod endpoints;
mod error;
pub mod headers;
mod login;
pub mod logs;
mod metrics;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
mod reload;
mod response;
mod runtime;
pub mod store;
pub mod units;
pub mod upstream;
