//! Two gateways on one Redis behind one origin: a sign-in started on one is finished by the
//! other, and the provider's back-channel logout, received by one, ends the session on both
//! within a second. Nothing secret of the exchange reaches either log.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_login_started_on_one_instance_finishes_on_the_other_and_back_channel_logout_ends_it_on_both(
) {
    let redis = RedisServer::start().await;
    let op = OpenIdProvider::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"oidc-it:\"",
        redis.url()
    );
    let echo = start_echo().await;
    let a = Gateway::start(&config(&op.issuer, "", false).table(&store).build(), echo).await;
    // One origin for both (a load balancer's): B's redirect_uri is A's address.
    let b_toml = config(&op.issuer, "", false).table(&store).build().replace(
        "http://{LISTEN}/auth/oidc",
        &format!("http://{}/auth/oidc", a.addr),
    );
    let b = Gateway::start(&b_toml, echo).await;
    op.register(json!([client(&a)])).await;
    ready(&a).await;
    ready(&b).await;
    let (origin_a, origin_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));

    // Started on A ...
    let mut browser = Browser::new();
    let (at, _) = browser
        .follow(
            &format!("{origin_a}/app/report"),
            &format!("{}/interaction/", op.issuer),
        )
        .await;
    let posted = browser
        .post_form(
            &format!("{at}/login"),
            &[("login", "alice"), ("password", "alice-pw")],
        )
        .await;
    let (callback, _) = browser.follow(&posted.location.unwrap(), &origin_a).await;
    assert!(callback.starts_with(&format!("{origin_a}/auth/oidc/corp/callback?")));
    // ... finished on B, which the load balancer chose for the callback.
    let binding = browser.cookie(&origin_a, "portcullis_oidc").unwrap();
    browser.set_cookie(&origin_b, "portcullis_oidc", &binding);
    let on_b = browser.get(&callback.replace(&origin_a, &origin_b)).await;
    assert_eq!(on_b.status, 302, "{}", on_b.body);
    assert_eq!(
        on_b.location.as_deref(),
        Some(&*format!("{origin_b}/app/report"))
    );
    let access = browser.cookie(&origin_b, "sess").unwrap();
    let refresh = browser.cookie(&origin_b, "sess_refresh").unwrap();
    eprintln!("TWO INSTANCES: sign-in started on A ({origin_a}), finished on B ({origin_b}): 302 to /app/report");
    for gw in [&a, &b] {
        assert_eq!(crate::login::call(gw, &access).await.status, 200);
    }

    // The user signs out at the provider, which tells A over the back channel.
    let end = browser
        .get(&format!("{}/session/end?client_id=gateway", op.issuer))
        .await;
    let xsrf = end.body.split("name=\"xsrf\" value=\"").nth(1).unwrap();
    let xsrf = xsrf.split('"').next().unwrap().to_string();
    let confirmed = Instant::now();
    let done = browser
        .post_form(
            &format!("{}/session/end/confirm", op.issuer),
            &[("xsrf", &xsrf), ("logout", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mut took = Vec::new();
    for (name, gw) in [("A", &a), ("B", &b)] {
        loop {
            if crate::login::call(gw, &access).await.status == 401 {
                took.push((name, confirmed.elapsed()));
                break;
            }
            assert!(
                confirmed.elapsed() < Duration::from_secs(1),
                "{name} still accepts the session after 1 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!("BACK-CHANNEL LOGOUT: session refused on {took:?} after the provider's logout");
    crate::login::refresh(&b, &refresh)
        .await
        .assert_refusal(401, "invalid_grant");

    // No code, token or secret in any log line of either instance.
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    for (name, gw) in [("A", &a), ("B", &b)] {
        let logs = gw.stdout();
        assert!(
            logs.contains("\"event\":\"login\"") || name == "A",
            "{name}: {logs}"
        );
        for (what, secret) in [
            ("the code", code.as_str()),
            ("the access token", access.as_str()),
            ("the refresh token", refresh.as_str()),
            ("the client secret", SECRET),
            ("the binding cookie", binding.as_str()),
        ] {
            assert!(!logs.contains(secret), "{what} is in {name}'s log");
        }
        // Nor the ID token: no JWT at all.
        assert!(!logs.contains("eyJ"), "a JWT in {name}'s log");
    }
}
