//! Route matching agrees with the naive matcher, captures included, and a pattern said to be
//! covered by another (the shadowing warning) matches nothing the other does not.
//! Input: three lines, the pattern, an earlier route's pattern, the path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{reference, PathPattern};

fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let (Some(pattern), Some(other), Some(path)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let Ok(compiled) = PathPattern::parse(pattern) else {
        return;
    };
    let got = compiled
        .matches(path)
        .map(|c| c.into_iter().map(String::from).collect::<Vec<_>>());
    assert_eq!(
        got,
        reference::route_matches(pattern, path),
        "{pattern:?} {path:?}"
    );
    if let Ok(earlier) = PathPattern::parse(other) {
        if compiled.is_covered_by(&earlier) && compiled.matches(path).is_some() {
            assert!(
                earlier.matches(path).is_some(),
                "{pattern:?} under {other:?}: {path:?}"
            );
        }
    }
});
