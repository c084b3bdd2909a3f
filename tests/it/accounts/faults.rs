//! The database away: at start, and later.
