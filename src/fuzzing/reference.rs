//! Simple, slow implementations written from the documents, for the properties to compare
//! the gateway's against.

/// RFC 3986 section 5.2.4, step by step as written.
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_string();
    let mut output = String::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_string(); // A
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_string(); // A
        } else if input.starts_with("/./") {
            input.replace_range(..3, "/"); // B
        } else if input == "/." {
            input = "/".into(); // B
        } else if input.starts_with("/../") {
            input.replace_range(..4, "/"); // C
            pop_segment(&mut output);
        } else if input == "/.." {
            input = "/".into(); // C
            pop_segment(&mut output);
        } else if input == "." || input == ".." {
            input.clear(); // D
        } else {
            // E: the first segment, with its leading "/", up to the next "/".
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input.replace_range(..end, "");
        }
    }
    output
}

/// Removes the output's last segment and the "/" before it.
fn pop_segment(output: &mut String) {
    let cut = output.rfind('/').unwrap_or(0);
    output.truncate(cut);
}

/// What the gateway's normalisation is meant to be, for a path it does not refuse: escapes of
/// unreserved characters decoded and others upper-cased (RFC 3986 6.2.2.1, 6.2.2.2), repeated
/// slashes merged (as nginx's `merge_slashes`), then 5.2.4; an empty result is `/`.
pub fn normalize(path: &str) -> String {
    let mut decoded = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        decoded.push_str(&rest[..i]);
        let hex = &rest[i + 1..i + 3];
        let byte = u8::from_str_radix(hex, 16).expect("a valid escape");
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            decoded.push(byte as char);
        } else {
            decoded.push('%');
            decoded.push_str(&hex.to_ascii_uppercase());
        }
        rest = &rest[i + 3..];
    }
    decoded.push_str(rest);
    while decoded.contains("//") {
        decoded = decoded.replace("//", "/");
    }
    match remove_dot_segments(&decoded) {
        empty if empty.is_empty() => "/".into(),
        out => out,
    }
}

/// Whether `path` matches the route pattern `pattern` (docs/CONFIG.md, "Routes"), and its
/// captures: segment by segment, `*` and `{name}` one non-empty segment, `**` (last) any
/// number, literals themselves.
pub fn route_matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let pattern: Vec<&str> = pattern.strip_prefix('/')?.split('/').collect();
    let path: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut captures = Vec::new();
    segments_match(&pattern, &path, &mut captures).then_some(captures)
}

fn segments_match(pattern: &[&str], path: &[&str], captures: &mut Vec<String>) -> bool {
    let Some((first, pattern_rest)) = pattern.split_first() else {
        return path.is_empty();
    };
    if *first == "**" {
        return true;
    }
    let Some((seg, path_rest)) = path.split_first() else {
        return false;
    };
    let wildcard = *first == "*" || (first.starts_with('{') && first.ends_with('}'));
    if wildcard && seg.is_empty() || !wildcard && first != seg {
        return false;
    }
    if first.starts_with('{') {
        captures.push(seg.to_string());
    }
    segments_match(pattern_rest, path_rest, captures)
}

#[cfg(test)]
mod tests {
    use super::remove_dot_segments;

    /// RFC 3986 section 5.2.4's own examples, and section 5.4's.
    #[test]
    fn the_rfc_examples() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        for (input, out) in [
            ("/b/c/./g", "/b/c/g"),
            ("/b/c/../g", "/b/g"),
            ("/b/c/../../g", "/g"),
            ("/b/c/../../../g", "/g"),
            ("/b/c/.", "/b/c/"),
            ("/b/c/..", "/b/"),
            ("/b/c/g.", "/b/c/g."),
            ("/b/c/..g", "/b/c/..g"),
            ("/b/c/./../g", "/b/g"),
            ("/b/c/g/../h", "/b/c/h"),
        ] {
            assert_eq!(remove_dot_segments(input), out, "{input}");
        }
    }
}
