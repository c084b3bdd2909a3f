//! The bodies of the built-in and admin endpoints: a JSON body's fields are exactly its
//! string members, a form never names a field twice, and nothing panics.
//! Input: the `Content-Type` (an empty line: none), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{endpoint_fields, json_bodies};

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let content_type = match std::str::from_utf8(first) {
        Ok("") | Err(_) => None,
        Ok(t) => Some(t),
    };
    let accepted = json_bodies(content_type, body);
    let json = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !body.is_empty() && !json {
        assert!(!accepted[0], "a key body that is not JSON");
    }
    let Some(fields) = endpoint_fields(content_type, body) else {
        return;
    };
    if body.is_empty() {
        assert!(fields.is_empty());
    } else if json {
        let value: serde_json::Value = serde_json::from_slice(body).expect("JSON");
        let object = value.as_object().expect("an object");
        let strings = object.values().filter(|v| v.is_string()).count();
        assert_eq!(fields.len(), strings);
        for (k, v) in &fields {
            assert_eq!(object[k].as_str(), Some(v.as_str()));
        }
    } else {
        let mut names: Vec<&String> = fields.iter().map(|(k, _)| k).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fields.len(), "a form field named twice");
    }
});
