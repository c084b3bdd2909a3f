//! `X-Forwarded-For` behind `trusted_proxies`: an untrusted peer is the client whatever it
//! says; behind trusted ones, the client is the peer or an address the chain names, and
//! every address to its right in the chain is a trusted proxy.
//! Input: the peer's address, the trusted networks (comma-separated), then one
//! `X-Forwarded-For` value a line.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{client_ip, is_trusted};

fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let (Some(peer), Some(trusted)) = (lines.next(), lines.next()) else {
        return;
    };
    let Ok(peer) = peer.parse::<IpAddr>() else {
        return;
    };
    let trusted: Vec<&str> = trusted.split(',').collect();
    let mut headers = HeaderMap::new();
    for v in lines {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.append("x-forwarded-for", v);
        }
    }
    let client = client_ip(&trusted, peer, &headers);
    if !is_trusted(&trusted, &peer) {
        assert_eq!(client, peer);
        return;
    }
    if client == peer {
        return;
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let at = chain
        .iter()
        .rposition(|e| e.parse::<IpAddr>().ok() == Some(client))
        .expect("the client is in the chain");
    for right in &chain[at + 1..] {
        let ip: IpAddr = right.parse().expect("readable to the right of the client");
        assert!(is_trusted(&trusted, &ip), "{ip} is not trusted");
    }
});
