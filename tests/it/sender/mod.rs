//! Sender-constrained credentials (docs/CONFIG.md, "Client certificates and DPoP"): client
//! certificates made by rcgen and presented by a rustls client, DPoP proofs made by the npm
//! registry's `dpop` package.

mod dpop;
mod mtls;
