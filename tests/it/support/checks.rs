//! Checks that all run: a table of cases reports every case that failed, not only the first.

use std::fmt::Debug;

/// Collects failed checks and panics with all of them when dropped (unless the test is
/// already panicking).
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    pub fn eq<T: PartialEq + Debug>(&mut self, case: impl Debug, got: T, want: T) {
        if got != want {
            self.0.push(format!("{case:?}: got {got:?}, want {want:?}"));
        }
    }

    pub fn that(&mut self, case: impl Debug, ok: bool) {
        if !ok {
            self.0.push(format!("{case:?}"));
        }
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        if !self.0.is_empty() && !std::thread::panicking() {
            panic!(
                "{} check(s) failed:\n  {}",
                self.0.len(),
                self.0.join("\n  ")
            );
        }
    }
}
