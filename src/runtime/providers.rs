//! The `[[oidc]]` providers as the runtime keeps them: each one's discovery document and keys
//! (from its `jwks_uri`, exactly as a trusted issuer's `jwks_url`), fetched at start
//! (readiness waits for both), refetched every `discovery_refresh` and kept on failure. A
//! reload carries a provider's fetched state over while its issuer and CA are unchanged.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::auth::jwks::{read_limited, JwksSource, RemoteJwks, Schedule};
use crate::auth::oidc::Discovery;
use crate::config::OidcSettings;

/// A discovery document larger than this is refused.
const MAX_DOCUMENT: usize = 256 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the provider's keys are fetched again (sooner on an unknown kid).
const KEYS_REFRESH: u64 = 3600;

/// One provider: its settings (this config's) and what was fetched of it (carried over).
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub(crate) settings: Arc<OidcSettings>,
    pub(crate) fetched: Arc<Fetched>,
}

/// What is fetched of a provider, and the HTTP client that fetches it and calls its token
/// endpoint (with the provider's own CA, when it has one).
pub(crate) struct Fetched {
    issuer: String,
    refresh: u64,
    pub(crate) client: reqwest::Client,
    discovery: ArcSwapOption<Discovery>,
    keys: ArcSwapOption<RemoteJwks>,
    schedule: Mutex<Schedule>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("issuer", &self.issuer)
            .field("discovered", &self.discovery.load().is_some())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The provider of `settings`: `previous`'s fetched state when it is the same provider.
    pub(crate) fn new(settings: &Arc<OidcSettings>, previous: &[Provider]) -> Provider {
        let kept = previous.iter().find(|p| *p.settings == **settings);
        let fetched = match kept {
            Some(p) => p.fetched.clone(),
            None => Arc::new(Fetched::new(settings)),
        };
        Provider {
            settings: settings.clone(),
            fetched,
        }
    }

    /// The last good discovery document.
    pub(crate) fn discovery(&self) -> Option<Arc<Discovery>> {
        self.fetched.discovery.load_full()
    }

    /// The provider's keys, once its discovery named where they are.
    pub(crate) fn keys(&self) -> Option<Arc<RemoteJwks>> {
        self.fetched.keys.load_full()
    }

    /// Why it is not ready yet, if it is not.
    pub(crate) fn not_ready(&self) -> Option<String> {
        let name = &self.settings.name;
        if self.discovery().is_none() {
            return Some(format!(
                "oidc: the discovery of `{name}` has not been fetched yet"
            ));
        }
        if !self.keys().is_some_and(|k| k.is_ready()) {
            return Some(format!(
                "oidc: the keys of `{name}` have not been fetched yet"
            ));
        }
        None
    }
}

impl Fetched {
    fn new(settings: &OidcSettings) -> Fetched {
        Fetched {
            issuer: settings.issuer.clone(),
            refresh: settings.discovery_refresh,
            client: client(settings.ca_certs.as_deref()),
            discovery: ArcSwapOption::empty(),
            keys: ArcSwapOption::empty(),
            schedule: Mutex::default(),
        }
    }

    /// Fetches what is due at `now` (clock seconds): the discovery document, then the keys.
    pub(crate) async fn upkeep(&self, now: u64) {
        let due = {
            let s = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
            s.is_due(now, self.refresh, false)
        };
        if due {
            let result = self.download().await;
            let mut s = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
            let failures = s.attempted(now, result.is_ok());
            drop(s);
            match result {
                Ok(found) => self.swap_in(found),
                Err(e) if failures == 0 => {
                    let issuer = &self.issuer;
                    tracing::warn!(%issuer, error = %e, "OpenID discovery failed: the last good document stays");
                }
                Err(_) => {}
            }
        }
        if let Some(keys) = self.keys.load_full() {
            if keys.is_due(now) {
                keys.fetch(&self.client, now).await;
            }
        }
    }

    /// A new document; the key set follows it when it names another `jwks_uri` or other
    /// algorithms.
    fn swap_in(&self, found: Discovery) {
        let same_keys = self
            .discovery
            .load()
            .as_ref()
            .is_some_and(|d| d.jwks_uri == found.jwks_uri && d.algorithms == found.algorithms);
        if !same_keys || self.keys.load().is_none() {
            let source = JwksSource {
                url: found.jwks_uri.clone(),
                algorithms: Some(found.algorithms.clone()),
                refresh: KEYS_REFRESH,
            };
            let keys = RemoteJwks::new(&self.issuer, source);
            self.keys.store(Some(Arc::new(keys)));
        }
        if self.discovery.load().as_deref() != Some(&found) {
            tracing::info!(issuer = %self.issuer, "OpenID discovery fetched");
        }
        self.discovery.store(Some(Arc::new(found)));
    }

    async fn download(&self) -> Result<Discovery, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = self
            .client
            .get(&url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = read_limited(response, MAX_DOCUMENT).await?;
        Discovery::parse(&body, &self.issuer)
    }
}

/// The provider's client: rustls, its CA when it has one (else the system's roots), and no
/// redirects (a provider's endpoints answer where discovery says they are).
fn client(ca_certs: Option<&[Vec<u8>]>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
    if let Some(ders) = ca_certs {
        // The provider's CA alone: a private CA is not one more root among the system's.
        let certs = ders
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        builder = builder.tls_certs_only(certs);
    }
    builder.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenID provider's client could not be built: using the defaults");
        reqwest::Client::new()
    })
}
