//! Wall-clock seconds for everything that has an expiry: tokens, lockouts, MFA tokens,
//! revocations. One type, so that tests can move time instead of sleeping: a gateway built
//! in-process is given a manual clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system time.
    #[default]
    System,
    /// A fixed time that tests set and advance.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    pub fn manual(now: u64) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(now)))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        match self {
            Clock::System => system_now(),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock on; the system clock ignores it.
    pub fn advance(&self, secs: u64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_when_told() {
        assert!(Clock::System.now() > 1_700_000_000);
        let manual = Clock::manual(100);
        manual.advance(5);
        assert_eq!(manual.now(), 105);
    }
}
