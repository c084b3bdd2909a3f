//! What lives with one config: the state built from a [`Config`] and the runtime it replaces.
//!
//! A config is plain data; the runtime adds what changes while it serves: the rate-limit
//! buckets, the keys fetched from `jwks_url`s, the upstream pools with their health, the cache
//! of verified tokens and of internal identity tokens. On a reload the new runtime carries over
//! what the new config describes the same way (a policy's buckets, a JWKS source's keys, an
//! upstream's health), so that a reload resets no budget and refetches nothing.

pub(crate) mod jwks;
pub(crate) mod providers;
pub(crate) mod tasks;

use std::sync::Arc;

use crate::auth::cache::TokenCache;
use crate::auth::identity::VerifiedJwt;
use crate::auth::internal::InternalToken;
use crate::auth::jwks::RemoteJwks;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::policy::Route;
use crate::ratelimit::{Policy, PolicyId, SharedBuckets, Stage};
use crate::upstream::{UpstreamId, UpstreamPool};
pub(crate) use providers::Provider;

/// Verified tokens kept per runtime: enough for the active tokens of a busy deployment.
const TOKEN_CACHE_CAPACITY: usize = 16_384;

#[derive(Debug)]
pub struct Runtime {
    pub config: Arc<Config>,
    /// Every issuer, with the keys fetched for those that have a `jwks_url`.
    pub verifier: Verifier,
    /// The `jwks_url` key sets, fetched in the background ([`jwks::run`]).
    pub remote_jwks: Vec<Arc<RemoteJwks>>,
    /// Verified tokens, by digest. A reload starts it empty.
    pub token_cache: TokenCache<VerifiedJwt>,
    /// By [`PolicyId`]: the config's policies, counting.
    pub policies: Vec<Policy>,
    /// By [`UpstreamId`].
    pub upstreams: Vec<Arc<UpstreamPool>>,
    pub internal_token: Option<InternalToken>,
    /// The `[[oidc]]` providers, their discovery and keys fetched in the background.
    pub(crate) providers: Vec<Provider>,
}

impl Runtime {
    /// The runtime of `config`; `previous` is the one it replaces (its state is carried over
    /// where the config is unchanged), `shared` the store's shared buckets (`scope = "global"`).
    pub fn new(
        config: Config,
        previous: Option<&Runtime>,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Runtime {
        let remote_jwks = remote_jwks(&config, previous);
        let verifier = Verifier::new(&config.issuers, &remote_jwks, config.lifetimes);
        let policies = config
            .rate_limits
            .iter()
            .map(|spec| {
                let kept = previous.and_then(|p| p.policies.iter().find(|k| k.spec == *spec));
                Policy::new(spec.clone(), kept, shared.as_ref())
            })
            .collect();
        let upstreams = config
            .upstreams
            .iter()
            .map(|settings| {
                let kept =
                    previous.and_then(|p| p.upstreams.iter().find(|u| u.settings == *settings));
                match kept {
                    Some(pool) => pool.clone(),
                    None => Arc::new(UpstreamPool::new(settings.clone())),
                }
            })
            .collect();
        let internal_token = config
            .identity
            .internal_token
            .as_ref()
            .map(InternalToken::new);
        let before = previous.map_or(&[][..], |p| p.providers.as_slice());
        let providers = config
            .oidc
            .iter()
            .map(|settings| Provider::new(settings, before))
            .collect();
        Runtime {
            providers,
            config: Arc::new(config),
            verifier,
            remote_jwks,
            token_cache: TokenCache::new(TOKEN_CACHE_CAPACITY),
            policies,
            upstreams,
            internal_token,
        }
    }

    pub fn policy(&self, id: PolicyId) -> &Policy {
        &self.policies[id.0]
    }

    pub fn upstream(&self, id: UpstreamId) -> &Arc<UpstreamPool> {
        &self.upstreams[id.0]
    }

    /// The route's policies checked at `stage`, with their positions in its list.
    pub fn route_limits<'a>(
        &'a self,
        route: &'a Route,
        stage: Stage,
    ) -> impl Iterator<Item = (usize, &'a Policy)> + 'a {
        route
            .rate_limits
            .iter()
            .enumerate()
            .map(|(i, id)| (i, self.policy(*id)))
            .filter(move |(_, p)| p.spec.stage == stage)
    }

    /// Readiness reasons: trusted issuers whose `jwks_url` has not been fetched yet, and
    /// providers whose discovery or keys have not.
    pub fn jwks_not_ready(&self) -> Vec<String> {
        let issuers = self
            .remote_jwks
            .iter()
            .filter(|r| !r.is_ready())
            .map(|r| format!("jwks: the keys of `{}` have not been fetched yet", r.issuer));
        let providers = self.providers.iter().filter_map(Provider::not_ready);
        issuers.chain(providers).collect()
    }

    /// The `[[oidc]]` provider named `name`.
    pub(crate) fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.settings.name == name)
    }
}

/// One key set per issuer with a `jwks_url`: the previous runtime's when its source is the same.
fn remote_jwks(config: &Config, previous: Option<&Runtime>) -> Vec<Arc<RemoteJwks>> {
    config
        .issuers
        .iter()
        .filter_map(|issuer| {
            let source = issuer.jwks.as_ref()?;
            let kept = previous.and_then(|p| {
                p.remote_jwks
                    .iter()
                    .find(|r| r.issuer == issuer.iss && r.source == *source)
            });
            Some(match kept {
                Some(k) => k.clone(),
                None => Arc::new(RemoteJwks::new(&issuer.iss, source.clone())),
            })
        })
        .collect()
}
