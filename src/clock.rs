//! Wall-clock seconds for everything that has an expiry: tokens, lockouts, MFA tokens,
//! revocations. One type, so that tests can move time instead of sleeping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Names a file holding the Unix time the gateway is to believe: a frozen clock, moved by
/// rewriting the file. For the integration tests, which run the real binary and must move
/// its clock (a lockout's expiry) without waiting. While the file is missing or unreadable,
/// the system time is used. Setting it is announced in the log at start.
pub const TEST_CLOCK_ENV: &str = "PORTCULLIS_TEST_CLOCK_FILE";

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system time.
    #[default]
    System,
    /// The time written in a file, read at every call.
    File(Arc<PathBuf>),
    /// A fixed time that tests set and advance.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// `System`, or `File` when [`TEST_CLOCK_ENV`] is set.
    pub fn from_env() -> Self {
        match std::env::var_os(TEST_CLOCK_ENV) {
            Some(path) => Clock::File(Arc::new(path.into())),
            None => Clock::System,
        }
    }

    pub fn manual(now: u64) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(now)))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        match self {
            Clock::System => system_now(),
            Clock::File(path) => std::fs::read_to_string(path.as_path())
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or_else(system_now),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock on; other clocks ignore it.
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
    fn a_file_sets_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let clock = Clock::File(Arc::new(path.clone()));
        assert!(
            clock.now() > 1_700_000_000,
            "the system time while there is no file"
        );
        std::fs::write(&path, "1800000000\n").unwrap();
        assert_eq!(clock.now(), 1_800_000_000);
        let manual = Clock::manual(100);
        manual.advance(5);
        assert_eq!(manual.now(), 105);
    }
}
