//! Garbage at the endpoints of an OpenID Provider's sign-in (SPEC section 10: start,
//! callback, logout, back-channel logout), with a real provider, and at the decision
//! listener (section 9): the described request's method and target, broken every way.

use serde_json::json;

use super::table::{body_probes, Auth, Endpoint};
use super::*;
use crate::oidc;

/// Query values that are no `rd`, `state`, `code` or `iss` of anyone's.
fn junk_values() -> Vec<String> {
    vec![
        format!("%00{MARKER}"),
        format!("%FF%FE{MARKER}"),
        format!("%C3%A9{MARKER}"),
        format!("/%0D%0ASet-Cookie:{MARKER}"),
        format!("//evil.test/{MARKER}"),
        format!("javascript:{MARKER}"),
        format!("{MARKER}{}", "w".repeat(12 * 1024)),
        String::new(),
    ]
}

fn oidc_probes() -> Vec<Probe> {
    let base = "/auth/oidc/corp";
    let mut out = Vec::new();
    for v in junk_values() {
        let get = |target: String, want: &[u16]| {
            Probe::new(format!("GET {target:.100}"), Door::Proxy, "GET", &target).expect(want)
        };
        // `rd` is never trusted: anything but an own path or allowed origin becomes `/`.
        out.push(get(format!("{base}/start?rd={v}"), &[302]));
        out.push(get(format!("{base}/logout?rd={v}"), &[302]));
        // No state of this browser's: 400 invalid_request (a provider's `error` without
        // one is still no answer to a sign-in of this browser's).
        out.push(get(
            format!("{base}/callback?state={v}&code={SECRET}&iss={v}"),
            &[400],
        ));
        out.push(get(
            format!("{base}/callback?error={v}&error_description={v}&state={v}"),
            &[400, 401],
        ));
    }
    for (target, want) in [
        (format!("{base}/callback"), 400),
        ("/auth/oidc/nope/start".to_string(), 404),
        ("/auth/oidc/corp/nope".to_string(), 404),
        ("/auth/oidc/gbg%00/start".to_string(), 400),
        ("/auth/oidc/%FF/start".to_string(), 404),
    ] {
        out.push(Probe::new(format!("GET {target}"), Door::Proxy, "GET", &target).expect(&[want]));
    }
    let backchannel = Endpoint {
        door: Door::Proxy,
        method: "POST",
        path: "/auth/oidc/corp/backchannel-logout",
        auth: Auth::Anyone,
        form: true,
        body: json!({ "logout_token": SECRET }),
        wrong: &[400],
    };
    out.extend(body_probes(&backchannel, "", &mut 0));
    out
}

#[tokio::test]
async fn the_providers_endpoints_answer_garbage_with_a_json_4xx() {
    let (_op, gw) = oidc::start("", true).await;
    let mut checks = Checks::new();
    let sent = send_all(&gw, oidc_probes(), &mut checks).await;
    eprintln!("GARBAGE {sent} probes on the OpenID Provider endpoints");
    still_well(&gw, &mut checks).await;
}

/// `rd` holding a character that is no header value as it is (`é`): the callback's
/// `Location` is still a redirect, never a 5xx after the user signed in.
#[tokio::test]
async fn a_non_ascii_rd_still_ends_in_a_redirect() {
    let (op, gw) = oidc::start("", true).await;
    let mut browser = oidc::Browser::new();
    let start = "/auth/oidc/corp/start?rd=/caf%C3%A9?q=%C3%BC";
    let hop = oidc::sign_in(&mut browser, &gw, start, &op, "alice", "alice-pw").await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let location = hop.location.unwrap_or_default();
    assert!(location.ends_with("/caf%C3%A9?q=%C3%BC"), "{location}");
}

fn decision_probes(at: SocketAddr) -> Vec<Probe> {
    let mut out = Vec::new();
    let ask = |case: &str, headers: &[(&'static str, &str)], want: &[u16]| {
        let mut p = Probe::new(format!("decision {case}"), Door::Decision(at), "GET", "/");
        for (k, v) in headers {
            p = p.header(k, v);
        }
        p.expect(want)
    };
    let long = format!("/api/{}", "v".repeat(12 * 1024));
    for target in [
        "/api/a%00b",
        "/api/caf\u{e9}",
        "/api/a#b",
        "/api/a b",
        "/api/a\tb",
        "api/x",
        "http://evil.test/api/x",
        "/api/a;b",
        "/api/%2e%2e;/x",
        "/api/a%2Fb",
        "/api/a%5Cb",
        "/api/a\\b",
        "",
    ] {
        let headers = [("X-Original-Method", "GET"), ("X-Original-URI", target)];
        out.push(ask(&format!("target {target:?}"), &headers, &[400]));
    }
    for method in ["", "G\u{e9}T", "GET GET"] {
        let headers = [("X-Original-Method", method), ("X-Original-URI", "/api/x")];
        out.push(ask(&format!("method {method:?}"), &headers, &[400]));
    }
    let control = [("X-Original-Method", "\u{1}"), ("X-Original-URI", "/api/x")];
    out.push(ask("method \\x01", &control, &[]).refused_by_pingora());
    out.push(ask("no source", &[], &[400]));
    out.push(ask("no method", &[("X-Original-URI", "/api/x")], &[400]));
    out.push(ask("no target", &[("X-Original-Method", "GET")], &[400]));
    let secret = format!("Bearer {SECRET}");
    let headers = [("X-Original-Method", "GET"), ("X-Original-URI", "/api/x")];
    out.push(ask(
        "a long target",
        &[("X-Original-Method", "GET"), ("X-Original-URI", &long)],
        &[401],
    ));
    out.push(ask(
        "a garbage token",
        &[headers[0], headers[1], ("Authorization", &secret)],
        &[401],
    ));
    let mut big = ask("a 1 MiB body", &headers, &[401]);
    big.body = vec![0xFF; 1 << 20];
    out.push(big);
    out
}

#[tokio::test]
async fn the_decision_listener_answers_garbage_descriptions_with_a_json_4xx() {
    let (gw, at) = crate::decision::start(start_echo().await, "x-original").await;
    let mut checks = Checks::new();
    let sent = send_all(&gw, decision_probes(at), &mut checks).await;
    eprintln!("GARBAGE {sent} probes on the decision listener");
    still_well(&gw, &mut checks).await;
}
