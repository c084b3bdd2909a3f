//! Rate limits through the real gateway: budgets that trip exactly after the burst, the keys
//! they are counted under, the headers, and where in the pipeline they are checked.
//!
//! Rates here are per hour, so no allowance comes back during a test: the counts are exact
//! without sleeping. Refill timing is tested with governor's fake clock in `ratelimit::local`.

use serde_json::json;

use crate::support::*;

/// The key `pcs_test_metered` (digest below) with its own `rate_limit`.
const METERED_KEY: &str = "pcs_test_metered";

fn config(server_extra: &str) -> Toml {
    let digest = hex_sha256(METERED_KEY);
    toml()
        .server(server_extra)
        .table("[roles]\nuser = {}")
        .table(&format!(
            r#"[[api_keys]]
id = "metered"
key_sha256 = "{digest}"
roles = ["user"]
rate_limit = "2/h""#
        ))
        .table(
            r#"[rate_limits]
per_ip = { rate = "1/h", burst = 3, key = ["ip", "route"] }
per_user = { rate = "1/h", burst = 2, key = ["subject", "route"] }
per_tenant = { rate = "1/h", burst = 2, key = "header:X-Tenant" }
per_org = { rate = "1/h", burst = 2, key = "claim:org.id" }
wide = { rate = "10/h", key = ["ip", "route"] }
by_key = { rate = "5/h", key = "api_key" }"#,
        )
        .route(
            "ip",
            "/ip/**",
            r#"auth = "none"
rate_limit = ["per_ip"]"#,
        )
        .route("guarded", "/guarded/**", r#"rate_limit = ["per_ip"]"#)
        .route("users", "/users/**", r#"rate_limit = ["per_user"]"#)
        .route("users2", "/users2/**", r#"rate_limit = ["per_user"]"#)
        .route(
            "tenant",
            "/tenant/**",
            r#"auth = "none"
rate_limit = ["per_tenant"]"#,
        )
        .route("org", "/org/**", r#"rate_limit = ["per_org"]"#)
        .route(
            "both",
            "/both/**",
            r#"auth = "optional"
rate_limit = ["wide", "per_user"]"#,
        )
        .route(
            "keys",
            "/keys/**",
            r#"accept = ["api_key"]
rate_limit = ["by_key"]"#,
        )
}

fn hex_sha256(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn token(sub: &str, extra: serde_json::Value) -> String {
    let mut claims = access_claims(sub, &["user"]);
    for (k, v) in extra.as_object().unwrap() {
        claims.insert(k.clone(), v.clone());
    }
    bearer(&hs_token(&claims))
}

/// The four `RateLimit-*` values, in the order Limit, Remaining, Reset, Policy.
fn limits(r: &Response) -> [String; 4] {
    ["limit", "remaining", "reset", "policy"].map(|h| {
        r.header(&format!("ratelimit-{h}"))
            .unwrap_or_else(|| panic!("no RateLimit-{h} on {} {:?}", r.status, r.headers))
            .to_string()
    })
}

#[tokio::test]
async fn an_ip_budget_trips_exactly_after_the_burst_with_exact_headers() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;

    // An untrusted client's X-Forwarded-For is ignored: every spoofed address below is still
    // the one socket peer, counted in one budget.
    for (i, spoof) in ["203.0.113.1", "203.0.113.2", "198.51.100.7"]
        .iter()
        .enumerate()
    {
        let r = gw.get("/ip/x", &[("X-Forwarded-For", spoof)]).await;
        assert_eq!(r.status, 200);
        let hour = 3600 * (i + 1);
        assert_eq!(
            limits(&r),
            ["3", &(2 - i).to_string(), &hour.to_string(), "3;w=10800"]
        );
        assert_eq!(r.header("retry-after"), None);
    }
    let refused = gw.get("/ip/x", &[("X-Forwarded-For", "192.0.2.99")]).await;
    let body = refused.assert_refusal(429, "rate_limited");
    assert_eq!(body["error_description"], "rate limit exceeded");
    assert_eq!(refused.header("retry-after"), Some("3600"));
    assert_eq!(limits(&refused), ["3", "0", "10800", "3;w=10800"]);
    assert_eq!(refused.header("www-authenticate"), None);

    let audit = gw.settled_stdout().await;
    assert!(
        audit.contains("\"reason\":\"rate_limited\"") && audit.contains("\"policy\":\"per_ip\""),
        "no audit event naming the policy:\n{audit}"
    );
}

#[tokio::test]
async fn ip_policies_refuse_a_flood_before_any_credential_is_checked() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;
    let garbage = [("Authorization", "Bearer not.a.jwt")];
    for _ in 0..3 {
        let r = gw.get("/guarded/x", &garbage).await;
        r.assert_refusal(401, "invalid_token");
        // The budget is reported on refusals after it, too.
        assert!(r.header("ratelimit-remaining").is_some());
    }
    // Step 6 comes before step 7: the fourth is refused by the limit, not the token.
    gw.get("/guarded/x", &garbage)
        .await
        .assert_refusal(429, "rate_limited");
    // The key includes the route: another route of the same policy has its own budget.
    assert_eq!(gw.get("/ip/x", &[]).await.status, 200);
}

#[tokio::test]
async fn subject_budgets_are_per_caller_and_per_route() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;
    let alice = token("alice", json!({}));
    let bob = token("bob", json!({}));
    for remaining in ["1", "0"] {
        let r = gw.get("/users/1", &[("Authorization", &alice)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    gw.get("/users/1", &[("Authorization", &alice)])
        .await
        .assert_refusal(429, "rate_limited");
    // Distinct callers, distinct budgets; the same caller on another route, another budget.
    assert_eq!(
        gw.get("/users/1", &[("Authorization", &bob)]).await.status,
        200
    );
    assert_eq!(
        gw.get("/users2/1", &[("Authorization", &alice)])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn header_and_claim_keys_with_the_client_ip_when_absent() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;
    for tenant in ["a", "b"] {
        for _ in 0..2 {
            let r = gw.get("/tenant/x", &[("X-Tenant", tenant)]).await;
            assert_eq!(r.status, 200);
        }
        gw.get("/tenant/x", &[("X-Tenant", tenant)])
            .await
            .assert_refusal(429, "rate_limited");
    }
    // Without the header the caller is counted by IP: a budget of its own.
    assert_eq!(gw.get("/tenant/x", &[]).await.status, 200);

    let acme1 = token("u1", json!({"org": {"id": "acme"}}));
    let acme2 = token("u2", json!({"org": {"id": "acme"}}));
    let globex = token("u3", json!({"org": {"id": "globex"}}));
    assert_eq!(
        gw.get("/org/x", &[("Authorization", &acme1)]).await.status,
        200
    );
    assert_eq!(
        gw.get("/org/x", &[("Authorization", &acme2)]).await.status,
        200
    );
    // Two users of one organisation share its budget.
    gw.get("/org/x", &[("Authorization", &acme1)])
        .await
        .assert_refusal(429, "rate_limited");
    assert_eq!(
        gw.get("/org/x", &[("Authorization", &globex)]).await.status,
        200
    );
}

#[tokio::test]
async fn allowed_responses_show_the_policy_with_the_fewest_remaining() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;
    let alice = token("alice", json!({}));
    // `wide` (10, keyed by ip) has 9 left, `per_user` (2, by subject) has 1: per_user is shown.
    let r = gw.get("/both/x", &[("Authorization", &alice)]).await;
    assert_eq!(limits(&r), ["2", "1", "3600", "2;w=7200"]);
    // An anonymous caller on an optional route is counted by IP under `per_user` too.
    let r = gw.get("/both/x", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(limits(&r), ["2", "1", "3600", "2;w=7200"]);
    let r = gw.get("/both/x", &[]).await;
    assert_eq!(limits(&r), ["2", "0", "7200", "2;w=7200"]);
    let r = gw.get("/both/x", &[]).await;
    r.assert_refusal(429, "rate_limited");
    assert_eq!(limits(&r), ["2", "0", "7200", "2;w=7200"]);
}

#[tokio::test]
async fn an_api_keys_own_rate_limit_applies_after_the_routes() {
    let gw = Gateway::start(&config("").build(), start_echo().await).await;
    let key = [("X-API-Key", METERED_KEY)];
    // by_key (5/h) has 4 then 3 left; the key's own 2/h has 1 then 0: the key's own is shown.
    for remaining in ["1", "0"] {
        let r = gw.get("/keys/x", &key).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-limit"), Some("2"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    let r = gw.get("/keys/x", &key).await;
    r.assert_refusal(429, "rate_limited");
    assert_eq!(r.header("ratelimit-policy"), Some("2;w=3600"));
    assert_eq!(r.header("retry-after"), Some("1800"));
    assert!(gw
        .settled_stdout()
        .await
        .contains("\"policy\":\"api_key:metered\""));
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let gw = Gateway::start(
        &config(r#"trusted_proxies = ["127.0.0.1/32"]"#).build(),
        start_echo().await,
    )
    .await;
    for _ in 0..3 {
        let r = gw.get("/ip/x", &[("X-Forwarded-For", "203.0.113.1")]).await;
        assert_eq!(r.status, 200);
    }
    gw.get("/ip/x", &[("X-Forwarded-For", "203.0.113.1")])
        .await
        .assert_refusal(429, "rate_limited");
    // Behind the trusted proxy, another client is another budget.
    let r = gw.get("/ip/x", &[("X-Forwarded-For", "203.0.113.2")]).await;
    assert_eq!(r.status, 200);
    // The right-most untrusted address counts: a client prepending a fake one changes nothing.
    gw.get("/ip/x", &[("X-Forwarded-For", "192.0.2.1, 203.0.113.1")])
        .await
        .assert_refusal(429, "rate_limited");
}

#[test]
fn bad_rate_limit_config_is_refused_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["127.0.0.1:8080"]

[rate_limits]
zero = { rate = "0/s", key = "ip" }
empty = { rate = "5/s", burst = 0, key = "ip" }
odd = { rate = "5/fortnight", key = ["ip", "cookie"] }
shared = { rate = "5/s", key = "ip", scope = "global" }

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:9"]

[[routes]]
path = "/**"
upstream = "echo"
auth = "none"
rate_limit = ["zero", "nope"]
"#,
    )
    .unwrap();
    let out = cli(&["check", "-c", &path.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in [
        "gateway.toml:5:17: rate_limits.zero.rate: rate `0/s` is zero: it would refuse every request",
        "gateway.toml:6:33: rate_limits.empty.burst: burst must be between 1 and 4294967295",
        "gateway.toml:7:16: rate_limits.odd.rate: rate `5/fortnight`: unknown unit `fortnight` (s, min, h, d)",
        "gateway.toml:7:44: rate_limits.odd.key[1]: `cookie` is not one of ip, subject, api_key, route, header:NAME, claim:PATH",
        "gateway.toml:8:46: rate_limits.shared.scope: scope \"global\" needs the shared store",
        "gateway.toml:18:23: routes[0].rate_limit[1]: unknown rate-limit policy `nope` (not in [rate_limits])",
    ] {
        assert!(stderr.contains(e), "missing `{e}` in:\n{stderr}");
    }
}

/// Every IPv6 host has a /64 to itself: an `ip` budget counts the network, not the address,
/// or a client rotating addresses would have 2^64 budgets. The login budget too.
#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let config = config("trusted_proxies = [\"127.0.0.1\"]")
        .table("[login]\nrate_limit = \"2/h\"")
        .build();
    let gw = Gateway::start_with_files(&config, start_echo().await, &[("users.toml", "")]).await;
    let mut seen = Vec::new();
    for ip in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:dead:beef:0:3",
        "2001:db8:1:2:ffff::4",
    ] {
        seen.push(gw.get("/ip/x", &[("X-Forwarded-For", ip)]).await.status);
    }
    assert_eq!(seen, [200, 200, 200, 429], "one budget of 3 for the /64");
    // Another /64 has its own; IPv4 counts by the address.
    let r = gw
        .get("/ip/x", &[("X-Forwarded-For", "2001:db8:1:3::1")])
        .await;
    assert_eq!(r.status, 200);
    for _ in 0..3 {
        assert_eq!(
            gw.get("/ip/x", &[("X-Forwarded-For", "192.0.2.1")])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        gw.get("/ip/x", &[("X-Forwarded-For", "192.0.2.2")])
            .await
            .status,
        200
    );

    // The login budget: two logins per hour for the whole /64.
    let mut seen = Vec::new();
    for ip in ["2001:db8:9:9::1", "2001:db8:9:9::2", "2001:db8:9:9:ffff::3"] {
        let r = gw
            .request(
                "POST",
                "/auth/login",
                &[
                    ("X-Forwarded-For", ip),
                    ("Content-Type", "application/json"),
                ],
                r#"{"username": "u", "password": "p"}"#,
            )
            .await;
        seen.push(r.status);
    }
    assert_eq!(seen, vec![401, 401, 429]);
}
