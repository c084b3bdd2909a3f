//! users.toml: any text is users or errors, each placed in the file, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::load_users;

fuzz_target!(|text: &str| {
    let path = Path::new("/nonexistent/portcullis-fuzz/users.toml");
    if let Err(errors) = load_users(path, text) {
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(e.line >= 1 || e.path.is_some(), "unplaced: {e}");
        }
    }
});
