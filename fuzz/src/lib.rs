//! How the targets read their inputs: lines, so that a seed is readable and an input the
//! fuzzer found can be pasted into a unit test as it is.

/// The input's lines (split on `\n`, a trailing `\r` kept: it is part of the fuzzing).
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n').collect()
}

/// `name: value` lines as header fields; a line without `: ` is skipped.
pub fn fields<'a>(lines: &[&'a [u8]]) -> Vec<(&'a [u8], &'a [u8])> {
    lines
        .iter()
        .filter_map(|l| {
            let at = l.windows(2).position(|w| w == b": ")?;
            Some((&l[..at], &l[at + 2..]))
        })
        .collect()
}

/// The header map of `name: value` lines, fields that are no valid header left out.
pub fn header_map(lines: &[&[u8]]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in fields(lines) {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    headers
}
