//! The Lua scripts, one file each in `scripts/`: loaded once, invoked by digest.

use redis::Script;

pub(super) struct Scripts {
    pub(super) revoke: Script,
    pub(super) prune: Script,
    pub(super) rotate: Script,
    pub(super) attempt: Script,
    pub(super) attempt_failed: Script,
    pub(super) attempt_returned: Script,
    pub(super) mfa_attempt: Script,
    pub(super) mfa_failed: Script,
    pub(super) mfa_take: Script,
    pub(super) gcra: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            revoke: Script::new(include_str!("scripts/revoke.lua")),
            prune: Script::new(include_str!("scripts/prune.lua")),
            rotate: Script::new(include_str!("scripts/rotate.lua")),
            attempt: Script::new(include_str!("scripts/attempt.lua")),
            attempt_failed: Script::new(include_str!("scripts/attempt_failed.lua")),
            attempt_returned: Script::new(include_str!("scripts/attempt_returned.lua")),
            mfa_attempt: Script::new(include_str!("scripts/mfa_attempt.lua")),
            mfa_failed: Script::new(include_str!("scripts/mfa_failed.lua")),
            mfa_take: Script::new(include_str!("scripts/mfa_take.lua")),
            gcra: Script::new(include_str!("scripts/gcra.lua")),
        }
    }
}
