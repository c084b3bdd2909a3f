//! Pipeline step 4: a path is refused or normalised, and a normalised one is a fixed point
//! with no dot-segment, no encoded `/`, `\` or NUL, nothing a later reader could split again.
//! Input: the path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{assert_normal_form, normalize};

fuzz_target!(|raw: &str| {
    for semicolons in [false, true] {
        if let Some(n) = normalize(raw, semicolons) {
            assert_normal_form(raw, &n, semicolons);
        }
    }
});
