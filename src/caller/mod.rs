//! Who is calling: the one place a request's credential becomes an identity or a refusal,
//! for the proxy, the decision listener and the built-in endpoints alike (steps 7 and 8 of
//! the request pipeline in docs/ARCHITECTURE.md): the credential found among the kinds that
//! count, verified (through the token cache), checked against the revocations, and, for the
//! session cookie, the CSRF rule. A new credential kind is one new arm of [`identify`]: the
//! sender-constrained ones (client certificates, DPoP) are in [`bound`].

pub(crate) mod bound;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::accounts::keyring::KeyRing;
use crate::auth::cache::CachedToken;
use crate::auth::credentials::{self, Credential};
use crate::auth::facts::{Binding, TokenFacts};
use crate::auth::identity::VerifiedJwt;
use crate::auth::{AuthMethod, Identity};
use crate::client_tls::ClientCert;
use crate::config::OnFailure;
use crate::error::{ApiKeyError, GatewayError, TokenError};
use crate::policy::cors::{self, Site};
use crate::policy::route::{AuthMode, CredentialKind};
use crate::policy::Route;
use crate::runtime::Runtime;
use crate::store::{Presented, Store};

/// Longer tokens are verified on every request rather than cached, so that the cache's
/// memory stays bounded by its entry count (16,384 x at most 8 KiB of claims).
const MAX_CACHED_TOKEN_BYTES: usize = 8 * 1024;

/// What identifying reads of a request (for a decision: of the request it describes).
#[derive(Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    /// A WebSocket (or other) upgrade: the cookie's origin rule applies to it as to an
    /// unsafe method.
    pub upgrade: bool,
    pub client_ip: Option<IpAddr>,
    /// How the gateway's own origin is told, and the request's authority (HTTP/2).
    pub site: Site,
    pub authority: Option<&'a str>,
    /// The session cookie's access token, renewed in passing: it stands for the one the
    /// request carried (or did not carry, expired).
    pub renewed: Option<&'a str>,
    /// The answer reaches the browser itself (the proxy's, not a decision's): a session
    /// cookie may be renewed on it.
    pub sets_cookies: bool,
    /// The request's path, normalised (pipeline step 4): a DPoP proof's `htu` names it.
    pub path: Option<&'a str>,
    /// The connection's verified client certificate (never in decision mode).
    pub client_cert: Option<&'a ClientCert>,
}

/// Which credentials count, and whether one is needed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accept<'a> {
    kinds: &'a [CredentialKind],
    /// `None` ignores every credential (`auth = "none"`).
    mode: AuthMode,
    /// `sender_constrained`: only credentials bound to the sender count.
    bound_only: bool,
}

impl<'a> Accept<'a> {
    /// What a route accepts.
    pub(crate) fn route(route: &'a Route) -> Self {
        Accept {
            kinds: &route.accept,
            mode: route.auth,
            bound_only: route.sender_constrained,
        }
    }

    /// A built-in endpoint's: these kinds, one of them required.
    pub(crate) fn required(kinds: &'a [CredentialKind]) -> Self {
        Accept {
            kinds,
            mode: AuthMode::Required,
            bound_only: false,
        }
    }

    pub(crate) fn counts(&self, kind: CredentialKind) -> bool {
        self.mode != AuthMode::None && self.kinds.contains(&kind)
    }
}

/// Why a caller was not identified, and who it was when its credential verified (a cookie
/// from a foreign origin): a refusal is logged with who was refused.
#[derive(Debug)]
pub(crate) struct Unidentified {
    pub error: GatewayError,
    pub identity: Option<Identity>,
    /// The credential refused was the session cookie (an expired one is renewed in passing).
    pub by_cookie: bool,
}

impl From<GatewayError> for Unidentified {
    fn from(error: GatewayError) -> Self {
        Unidentified {
            error,
            identity: None,
            by_cookie: false,
        }
    }
}

impl From<Unidentified> for GatewayError {
    fn from(u: Unidentified) -> Self {
        u.error
    }
}

/// The caller of `asked`, verified and not revoked; `Ok(None)` for an anonymous caller that
/// `accept` lets through. `user_keys` are the keys users made (`users_db`). A DPoP proof's
/// single use is the one step that may ask the store over the network.
pub(crate) async fn identify(
    runtime: &Runtime,
    store: &dyn Store,
    user_keys: Option<&KeyRing>,
    asked: &Asked<'_>,
    accept: Accept<'_>,
    now: u64,
) -> Result<Option<Identity>, Unidentified> {
    let (identity, proof) = verify(runtime, store, user_keys, asked, accept, now)?;
    if let Some(proof) = proof {
        bound::spend(store, &runtime.config, &proof).await?;
    }
    Ok(identity)
}

/// `identify` but for the spending of the proof it returns.
fn verify(
    runtime: &Runtime,
    store: &dyn Store,
    user_keys: Option<&KeyRing>,
    asked: &Asked<'_>,
    accept: Accept<'_>,
    now: u64,
) -> Result<(Option<Identity>, Option<bound::Proof>), Unidentified> {
    let config = &runtime.config;
    let cookie = config.session_cookie();
    let mut credential = credentials::find(asked.headers, |k| accept.counts(k), cookie)?;
    if let (Some(token), None | Some(Credential::Cookie(_))) = (asked.renewed, &credential) {
        if accept.counts(CredentialKind::Cookie) {
            credential = Some(Credential::Cookie(token));
        }
    }
    // The certificate is a credential only when the request carries no other (a client
    // that has one presents it on every request of the connection).
    let certificate = match (&credential, accept.counts(CredentialKind::Mtls)) {
        (None, true) => bound::certificate(config, store, asked, now)?,
        _ => None,
    };
    if let Some(identity) = certificate {
        check_fresh(config, store)?;
        return Ok((Some(identity), None));
    }
    let Some(credential) = credential else {
        return match accept.mode {
            AuthMode::Required => Err(GatewayError::MissingCredentials.into()),
            AuthMode::Optional | AuthMode::None => Ok((None, None)),
        };
    };
    let by_cookie = |error| Unidentified {
        error,
        identity: None,
        by_cookie: true,
    };
    let (mut identity, binding) = match credential {
        Credential::Bearer(token) => verify_jwt(runtime, store, token, now, AuthMethod::Jwt)?,
        Credential::Dpop(token) => verify_jwt(runtime, store, token, now, AuthMethod::Dpop)?,
        Credential::Cookie(token) => {
            verify_jwt(runtime, store, token, now, AuthMethod::Cookie).map_err(by_cookie)?
        }
        Credential::ApiKey(key) => (
            verify_api_key(runtime, store, user_keys, key, asked, now)?,
            Binding::default(),
        ),
    };
    let proof = bound::check_binding(config, asked, &credential, &binding, now);
    let proof = match identity.method {
        AuthMethod::Cookie => proof.map_err(by_cookie)?,
        _ => proof?,
    };
    identity.bound = binding.is_bound();
    if accept.bound_only && !identity.bound {
        return Err(GatewayError::InvalidToken(TokenError::NotSenderConstrained).into());
    }
    check_fresh(config, store)?;
    if identity.method == AuthMethod::Cookie {
        if let Err(error) = check_cookie_origin(runtime, asked) {
            let identity = Some(identity);
            return Err(Unidentified {
                error,
                identity,
                by_cookie: true,
            });
        }
    }
    Ok((Some(identity), proof))
}

/// A credential that verified is only as good as the revocations it was checked against.
fn check_fresh(config: &crate::config::Config, store: &dyn Store) -> Result<(), GatewayError> {
    if !store.is_fresh(config.store.max_staleness) && config.store.on_failure == OnFailure::Closed {
        return Err(GatewayError::Unavailable);
    }
    Ok(())
}

/// The CSRF rule: the session cookie rides along on cross-site requests, so an unsafe one,
/// or a WebSocket upgrade (cross-site WebSocket hijacking), must come from the gateway's own
/// origin or one `[cors]` allows.
fn check_cookie_origin(runtime: &Runtime, asked: &Asked<'_>) -> Result<(), GatewayError> {
    if !asked.upgrade && cors::is_safe(asked.method) {
        return Ok(());
    }
    check_origin(runtime, asked)
}

/// Login CSRF: with a session cookie configured, a login (or a registration) from a page of
/// a foreign origin would sign the victim's browser into the attacker's account. A request
/// that names its origin (`Origin`, else `Referer`) must name the gateway's own or an allowed
/// one; one that names none (not a browser's) is not affected.
pub(crate) fn check_login_origin(runtime: &Runtime, asked: &Asked<'_>) -> Result<(), GatewayError> {
    let names_one = asked.headers.contains_key(http::header::ORIGIN)
        || asked.headers.contains_key(http::header::REFERER);
    if runtime.config.session_cookie().is_none() || !names_one {
        return Ok(());
    }
    check_origin(runtime, asked)
}

/// The request's `Origin` (else `Referer`) is the gateway's own or one `[cors]` allows.
fn check_origin(runtime: &Runtime, asked: &Asked<'_>) -> Result<(), GatewayError> {
    let own = asked.site.own_origin(asked.headers, asked.authority);
    let allowed = runtime.config.cors.as_ref();
    match cors::cross_site_allowed(asked.headers, own.as_deref(), allowed) {
        true => Ok(()),
        false => Err(GatewayError::InvalidOrigin),
    }
}

fn verify_api_key(
    runtime: &Runtime,
    store: &dyn Store,
    user_keys: Option<&KeyRing>,
    presented: &str,
    asked: &Asked<'_>,
    now: u64,
) -> Result<Identity, GatewayError> {
    // The config's keys, then those users made (held in memory: no database round trip).
    let client_ip = asked.client_ip;
    // A configured key carries its grants; a key users made is granted by the ring, under
    // this request's roles.
    let mut verified = runtime
        .config
        .api_keys
        .verify(presented, client_ip, now)
        .map(|key| {
            let grants = key.grants.clone();
            (key, grants)
        });
    let mut made_by_user = false;
    if let (Err(ApiKeyError::Unknown), Some(ring)) = (&verified, user_keys) {
        verified = ring.verify(presented, client_ip, now, &runtime.config.roles);
        made_by_user = true;
    }
    let (key, grants) = verified.map_err(GatewayError::InvalidApiKey)?;
    let presented = Presented {
        subject: &key.subject,
        api_key: Some(&key.id),
        // A key a user made ends with its deletion, or a revocation of its owner (disabled,
        // deleted, revoked by an operator), not with a revocation of the owner's tokens (a new
        // password keeps the user's keys). A configured key counts as issued at the epoch:
        // any revoke-all covers it.
        iat: key.issued_at,
        user_key: made_by_user,
        ..Presented::default()
    };
    if store.is_revoked(&presented, now) {
        return Err(GatewayError::InvalidApiKey(ApiKeyError::Revoked));
    }
    Ok(Identity {
        subject: key.subject.clone(),
        method: AuthMethod::ApiKey,
        grants,
        claims: key.claims.clone(),
        api_key: Some(key),
        bound: false,
    })
}

/// The token's caller and what the token is bound to.
fn verify_jwt(
    runtime: &Runtime,
    store: &dyn Store,
    token: &str,
    now: u64,
    method: AuthMethod,
) -> Result<(Identity, Binding), GatewayError> {
    let cache = &runtime.token_cache;
    let cacheable = token.len() <= MAX_CACHED_TOKEN_BYTES;
    let hit = cacheable
        .then(|| cache.get(token, now, VerifiedJwt::keys_generation))
        .flatten();
    let verified = match hit {
        Some(hit) => hit,
        None => {
            let entry = verify_uncached(runtime, token, now)?;
            match cacheable {
                true => cache.insert(token, entry, now),
                false => Arc::new(entry),
            }
        }
    };
    let v = &verified.value;
    // Revocation is never cached: checked on every request.
    let presented = Presented {
        jti: v.jti.as_deref(),
        sid: v.sid.as_deref(),
        subject: &v.subject,
        iat: v.iat,
        api_key: None,
        user_key: false,
    };
    if store.is_revoked(&presented, now) {
        return Err(GatewayError::InvalidToken(TokenError::Revoked));
    }
    let identity = Identity {
        subject: v.subject.clone(),
        method,
        grants: v.grants.clone(),
        claims: v.claims.clone(),
        api_key: None,
        bound: false,
    };
    Ok((identity, v.binding.clone()))
}

/// A token verified and made ready for the cache: what every later request with the same
/// token needs (grants included), until `exp` plus leeway.
fn verify_uncached(
    runtime: &Runtime,
    token: &str,
    now: u64,
) -> Result<CachedToken<VerifiedJwt>, GatewayError> {
    let token = runtime
        .verifier
        .verify(token, now)
        .map_err(GatewayError::InvalidToken)?;
    let facts = TokenFacts::of(&token.claims);
    let dies_at = facts.exp.unwrap_or(now) + runtime.verifier.leeway;
    let remote = token
        .claims
        .get("iss")
        .and_then(|v| v.as_str())
        .and_then(|iss| runtime.verifier.remote_keys(iss));
    let binding = Binding::of(&token.claims).map_err(GatewayError::InvalidToken)?;
    let value = VerifiedJwt {
        binding,
        jti: facts.jti.map(str::to_string),
        sid: facts.sid.map(str::to_string),
        iat: facts.iat,
        grants: Arc::new(
            runtime
                .config
                .roles
                .grants(&token.roles, &token.permissions),
        ),
        subject: token.subject,
        claims: Arc::new(token.claims),
        remote,
    };
    Ok(CachedToken {
        keys_generation: value.keys_generation(),
        value,
        dies_at,
    })
}
