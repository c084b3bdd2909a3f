//! Who the caller is: where a credential is found, how it is verified, what identity it yields.

pub mod apikey;
pub(crate) mod cache;
pub(crate) mod credentials;
pub(crate) mod dpop;
pub(crate) mod facts;
pub(crate) mod identity;
pub(crate) mod internal;
pub(crate) mod jwks;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod oidc;

pub use identity::{AuthMethod, Identity};

/// 32 random bytes, base64url: a single-use token (an OpenID `state`, `nonce` or PKCE
/// verifier, a reset or verification token).
pub(crate) fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
