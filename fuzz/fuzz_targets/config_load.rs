//! The config loader: any text is a config or errors, each placed in the file (a line, or
//! a key path), never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::load_config;

fuzz_target!(|text: &str| {
    // Under a folder that does not exist: a file the text names is never one of the machine's.
    let path = Path::new("/nonexistent/portcullis-fuzz/gateway.toml");
    if let Err(errors) = load_config(path, text) {
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(e.line >= 1 || e.path.is_some(), "unplaced: {e}");
            assert!(!e.message.is_empty());
        }
    }
});
