//! The runtime's upkeep, run in the background: upstream health checks, and the pruning of
//! idle rate-limit keys and expired shared state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Runtime;
use crate::store::Store;

/// How often idle rate-limit keys and expired shared state are forgotten. Between two runs
/// the limiters hold at most the keys seen in that time plus those whose bucket is still
/// refilling.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Active health checks for every upstream that configures one, on the current runtime.
pub(crate) async fn health_checks(
    runtime: Arc<ArcSwap<Runtime>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next_due: HashMap<String, Instant> = HashMap::new();
    loop {
        let rt = runtime.load_full();
        let now = Instant::now();
        for pool in &rt.upstreams {
            let (Some(hc), Some(checker)) = (&pool.settings.health_check, pool.health_checker())
            else {
                continue;
            };
            let due = next_due.entry(pool.name().to_string()).or_insert(now);
            if *due <= now {
                pool.check_health(checker.as_ref()).await;
                *due = Instant::now() + hc.interval;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Drops every rate-limit key whose bucket is full again, so that a flood of distinct client
/// IPs leaves nothing behind once it stops, and whatever in the store has expired.
pub(crate) async fn pruning(
    runtime: Arc<ArcSwap<Runtime>>,
    store: Arc<dyn Store>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        let rt = runtime.load_full();
        let store = store.clone();
        // A flood's map can take milliseconds to sweep: keep that off the event loop.
        let swept = tokio::task::spawn_blocking(move || {
            store.prune();
            for policy in &rt.policies {
                policy.limiter().prune();
            }
            rt.policies
                .iter()
                .map(|p| p.limiter().tracked_keys())
                .sum::<usize>()
        })
        .await;
        if let Ok(keys) = swept {
            tracing::debug!(keys, "rate-limit keys after pruning");
        }
    }
}
