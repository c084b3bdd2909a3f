//! Keys of a trusted issuer fetched from its `jwks_url`: at start (readiness waits for the
//! first fetch), every `jwks_refresh`, and again when a token names a `kid` we do not know
//! (one fetch at a time, at most once per 10 s). A failed fetch keeps the last good keys and
//! is retried with backoff. The schedule reads the gateway's clock, so tests move it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;

use super::keys::{keys_from_jwks, VerifyKey};

/// An unknown kid fetches again at most this often.
pub(crate) const MIN_REFETCH: u64 = 10;
/// A JWKS document larger than this is refused.
const MAX_DOCUMENT: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an issuer's keys are fetched from (`jwks_url`, `algorithms`, `jwks_refresh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSource {
    pub url: String,
    pub algorithms: Option<Vec<Algorithm>>,
    /// Seconds between scheduled fetches (at least one).
    pub refresh: u64,
}

/// An issuer's fetched keys, kept current.
pub struct RemoteJwks {
    pub issuer: String,
    pub source: JwksSource,
    keys: ArcSwap<Vec<VerifyKey>>,
    /// Bumped on every swap: cached verifications made with older keys are void.
    generation: AtomicU64,
    fetched: AtomicBool,
    /// A token named an unknown kid.
    wanted: AtomicBool,
    schedule: Mutex<Schedule>,
    /// Why keys of the last document were left out: warned about when it changes.
    skipped: Mutex<Vec<String>>,
}

/// When a document is fetched again: every `refresh` seconds, sooner when wanted (at most
/// every [`MIN_REFETCH`]), and after a failure with a backoff of 1, 2, 4 ... s.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Clock seconds of the last attempt and of the last success (0: never).
    last_attempt: u64,
    last_success: u64,
    /// Failures in a row, for the backoff.
    failures: u32,
}

impl Schedule {
    pub(crate) fn is_due(&self, now: u64, refresh: u64, wanted: bool) -> bool {
        if self.last_attempt == 0 {
            return true;
        }
        if self.failures > 0 {
            // 1, 2, 4 ... s, never longer than the refresh interval.
            let backoff = (1u64 << self.failures.min(10)).min(refresh);
            return now >= self.last_attempt + backoff;
        }
        let since = now.saturating_sub(self.last_attempt);
        since >= refresh || (wanted && since >= MIN_REFETCH)
    }

    /// Records an attempt at `now`; the failures in a row before it.
    pub(crate) fn attempted(&mut self, now: u64, ok: bool) -> u32 {
        let before = self.failures;
        self.last_attempt = now;
        if ok {
            self.failures = 0;
            self.last_success = now;
        } else {
            self.failures += 1;
        }
        before
    }
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("issuer", &self.issuer)
            .field("url", &self.source.url)
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

impl RemoteJwks {
    pub fn new(issuer: &str, source: JwksSource) -> Self {
        RemoteJwks {
            issuer: issuer.to_string(),
            source,
            keys: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            fetched: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            schedule: Mutex::default(),
            skipped: Mutex::default(),
        }
    }

    /// The current keys (the last good fetch).
    pub fn keys(&self) -> Arc<Vec<VerifyKey>> {
        self.keys.load_full()
    }

    /// How many times the keys were swapped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fetched at least once.
    pub fn is_ready(&self) -> bool {
        self.fetched.load(Ordering::Acquire)
    }

    /// Called when a token names a kid none of the keys has.
    pub fn want_refresh(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    /// Whether a fetch is due at `now` (clock seconds).
    pub fn is_due(&self, now: u64) -> bool {
        let s = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        s.is_due(
            now,
            self.source.refresh,
            self.wanted.load(Ordering::Acquire),
        )
    }

    /// Fetches and, if the document is good, swaps the keys in.
    pub async fn fetch(&self, client: &reqwest::Client, now: u64) {
        self.wanted.store(false, Ordering::Release);
        let result = self.download(client).await;
        let mut s = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        let failures = s.attempted(now, result.is_ok());
        match result {
            Ok(keys) => {
                if failures > 0 {
                    tracing::info!(issuer = %self.issuer, keys = keys.len(), "JWKS fetched again");
                } else {
                    tracing::debug!(issuer = %self.issuer, keys = keys.len(), "JWKS fetched");
                }
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.fetched.store(true, Ordering::Release);
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(
                        issuer = %self.issuer,
                        url = %self.source.url,
                        error = %e,
                        kept = self.keys.load().len(),
                        "JWKS fetch failed: the last good keys stay"
                    );
                }
            }
        }
    }

    async fn download(&self, client: &reqwest::Client) -> Result<Vec<VerifyKey>, String> {
        let response = client
            .get(&self.source.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        // Read no further than the limit, whatever the length the server announces (or not).
        let body = read_limited(response, MAX_DOCUMENT).await?;
        let found = keys_from_jwks(&body, self.source.algorithms.as_deref())?;
        let mut skipped = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
        if *skipped != found.skipped {
            for why in &found.skipped {
                tracing::warn!(issuer = %self.issuer, url = %self.source.url, "JWKS key {why}");
            }
            *skipped = found.skipped;
        }
        Ok(found.keys)
    }
}

/// A response's body, refused past `limit` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err("answer too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err("answer too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP client for every JWKS fetch: rustls, the system's roots, no redirects to other
/// schemes.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS client with the default settings builds")
}
