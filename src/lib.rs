//! Portcullis: a reverse-proxy authentication gateway on Pingora.
//!
//! The modules follow the request: `config` is compiled once; `proxy` runs the pipeline of
//! SPEC section 3 through Pingora's phases, using `policy` (routes, roles) and `auth`
//! (credentials, JWTs), `ratelimit` and `store` (revocations and other shared state);
//! `endpoints` serves the built-in login endpoints of `login`; `error` is the one refusal
//! type and its wire form.

pub mod admin;
pub mod app;
pub mod auth;
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
pub mod store;
