//! The background fetch of every `jwks_url` of the current runtime (docs/CONFIG.md): when a set
//! is due (at start, every `jwks_refresh`, on an unknown kid at most every 10 s), on the
//! gateway's clock, so that tests move the schedule rather than wait for it; and of every
//! `[[oidc]]` provider's discovery document and keys, on the same schedule.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Runtime;
use crate::auth::jwks::client;
use crate::clock::Clock;

/// Fetches what is due, every 100 ms, until `shutdown` changes.
pub(crate) async fn run(
    runtime: Arc<ArcSwap<Runtime>>,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = client();
    loop {
        let now = clock.now();
        let sets = runtime.load().remote_jwks.clone();
        for set in sets.iter().filter(|s| s.is_due(now)) {
            set.fetch(&client, now).await;
        }
        let providers = runtime.load().providers.clone();
        for provider in &providers {
            provider.fetched.upkeep(now).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
