//! The sign-in, refresh and logout flows against the certified provider.

use serde_json::{json, Value};

use super::*;
use crate::login::claims;

/// The echo of `path` on the gateway, as the browser's session cookie reaches it.
async fn page(browser: &mut Browser, gw: &Gateway, path: &str) -> (u16, Value) {
    let hop = browser.get(&format!("http://{}{path}", gw.addr)).await;
    let body = serde_json::from_str(&hop.body).unwrap_or(Value::Null);
    (hop.status, body)
}

fn origin(gw: &Gateway) -> String {
    format!("http://{}", gw.addr)
}

#[tokio::test]
async fn a_browser_signs_in_at_the_provider_and_reaches_the_page_with_its_identity() {
    let (op, gw) = start("", true).await;
    let mut browser = Browser::new();
    let callback = sign_in(
        &mut browser,
        &gw,
        "/app/orders?id=7",
        &op,
        "alice",
        "alice-pw",
    )
    .await;
    // Back where it started, with both session cookies and the binding cookie cleared.
    assert_eq!(callback.status, 302, "{}", callback.body);
    assert_eq!(
        callback.location.as_deref(),
        Some(&*format!("{}/app/orders?id=7", origin(&gw)))
    );
    assert!(callback.cookie("sess").is_some() && callback.cookie("sess_refresh").is_some());
    assert!(callback
        .cookie("portcullis_oidc")
        .unwrap()
        .contains("Max-Age=0"));
    let access = browser.cookie(&origin(&gw), "sess").unwrap();
    let c = claims(&access);
    assert_eq!(c["amr"], json!(["fed"]));
    assert_eq!(c["idp"], "corp");
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(c["roles"], json!(["user", "admin"]));
    // The user is one of the database, with its own subject (not the provider's `sub`).
    let subject = c["sub"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&subject).is_ok(), "{subject}");
    let (status, echo) = page(&mut browser, &gw, "/app/orders?id=7").await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["x-user-id"][0], subject);
    let user = gw
        .admin_request(
            "GET",
            "/admin/users/alice",
            &[("Authorization", "Bearer oidc-admin-token-0123456789")],
            "",
        )
        .await;
    assert_eq!(user.status, 200, "{}", String::from_utf8_lossy(&user.body));
    assert_eq!(user.json()["subject"], subject);

    // A second sign-in (the provider remembers the browser: no form) is the same user.
    browser.forget(&origin(&gw), "sess");
    browser.forget(&origin(&gw), "sess_refresh");
    let (callback, _) = browser
        .follow(
            &format!("{}/app/again", origin(&gw)),
            &format!("{}/auth/oidc/corp/callback", origin(&gw)),
        )
        .await;
    let again = browser.get(&callback).await;
    assert_eq!(again.status, 302, "{}", again.body);
    let c = claims(&browser.cookie(&origin(&gw), "sess").unwrap());
    assert_eq!(c["sub"], subject.as_str());
}

#[tokio::test]
async fn browsers_are_sent_to_the_provider_and_api_clients_get_401() {
    let (_op, gw) = start("", true).await;
    let html = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let r = gw.get("/app/reports?year=2026", &html).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("/auth/oidc/corp/start?rd=%2Fapp%2Freports%3Fyear%3D2026")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    for (case, method, headers) in [
        ("an API client", "GET", vec![("Accept", "application/json")]),
        ("fetch's */*", "GET", vec![("Accept", "*/*")]),
        ("no Accept", "GET", vec![]),
        ("a form post", "POST", html.to_vec()),
    ] {
        let r = gw.request(method, "/app/reports", &headers, "").await;
        assert_eq!(r.status, 401, "{case}");
    }
    // A route that does not redirect keeps its 401 for browsers too.
    gw.get("/api/orders", &html)
        .await
        .assert_refusal(401, "missing_credentials");
    // A session cookie that is no good any more (expired beyond renewal, revoked, forged)
    // sends the browser to sign in again, its cookies cleared.
    let r = gw
        .get(
            "/app/x",
            &[("Accept", "text/html"), ("Cookie", "sess=not.a.token")],
        )
        .await;
    assert_eq!(r.status, 302);
    let cleared: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
}

#[tokio::test]
async fn without_users_db_the_provider_alone_says_who_and_the_session_renews() {
    let (op, gw) = start("", false).await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &gw, "/app/", &op, "bob", "bob-pw").await;
    assert_eq!(callback.status, 302, "{}", callback.body);
    let c = claims(&browser.cookie(&origin(&gw), "sess").unwrap());
    assert_eq!(c["sub"], "bob");
    assert_eq!(c["roles"], json!(["user"]));
    assert_eq!(c["name"], "Bob");
    // The refresh token carries the provider's roles and claims to the next pair.
    let refresh = browser.cookie(&origin(&gw), "sess_refresh").unwrap();
    let r = crate::login::refresh(&gw, &refresh).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let next = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(
        (next["sub"].clone(), next["roles"].clone()),
        (json!("bob"), json!(["user"]))
    );
    assert_eq!(
        (next["amr"].clone(), next["idp"].clone()),
        (json!(["fed"]), json!("corp"))
    );
    assert_eq!(next["name"], "Bob");
    // The provider's groups are mapped again under the config of the day.
    let mut text = std::fs::read_to_string(gw.config_path()).unwrap();
    text = text.replace(r#""staff" = ["user"]"#, r#""staff" = ["user", "auditor"]"#);
    let before = gw.settled_stdout().await.matches("config reloaded").count();
    let tmp = gw.dir.path().join("gateway.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, gw.config_path()).unwrap();
    gw.wait_for_log("config reloaded", before + 1).await;
    let next_refresh = r.json()["refresh_token"].as_str().unwrap().to_string();
    let r = crate::login::refresh(&gw, &next_refresh).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let roles = claims(r.json()["access_token"].as_str().unwrap())["roles"].clone();
    assert_eq!(roles, json!(["user", "auditor"]));
}

#[tokio::test]
async fn a_second_factor_at_the_provider_shows_in_amr_and_require_is_enforced() {
    let (op, gw) = start("require = { email_verified = true }", true).await;
    // carol signs in with two methods, but her email is not verified: refused, no session.
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &gw, "/app/", &op, "carol", "carol-pw").await;
    assert_eq!(callback.status, 403, "{}", callback.body);
    assert_eq!(callback.json()["error"], "access_denied");
    assert!(callback.cookie("sess").is_none());
    let op2 = OpenIdProvider::start().await;
    let gw2 = Gateway::start(&config(&op2.issuer, "", true).build(), start_echo().await).await;
    op2.register(json!([client(&gw2)])).await;
    ready(&gw2).await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &gw2, "/app/", &op2, "carol", "carol-pw").await;
    assert_eq!(callback.status, 302, "{}", callback.body);
    let c = claims(&browser.cookie(&origin(&gw2), "sess").unwrap());
    assert_eq!(c["amr"], json!(["fed", "mfa"]));
}

#[tokio::test]
async fn logout_ends_the_session_and_goes_through_the_providers_end_session() {
    let (op, gw) = start("", true).await;
    let mut browser = Browser::new();
    sign_in(&mut browser, &gw, "/app/", &op, "alice", "alice-pw").await;
    let access = browser.cookie(&origin(&gw), "sess").unwrap();
    assert_eq!(crate::login::call(&gw, &access).await.status, 200);
    // A foreign page cannot sign the browser out (logout CSRF).
    let logout = format!("{}/auth/oidc/corp/logout", origin(&gw));
    let foreign = [("Origin", "https://evil.example")];
    let hop = browser
        .send("POST", &logout, &foreign, Some(String::new()))
        .await;
    assert_eq!(hop.status, 403, "{}", hop.body);
    assert_eq!(hop.json()["error"], "invalid_origin");
    assert_eq!(crate::login::call(&gw, &access).await.status, 200);
    // A navigation from another site does not sign the browser out either.
    let hop = browser
        .send("GET", &logout, &[("Sec-Fetch-Site", "cross-site")], None)
        .await;
    assert_eq!(hop.status, 403, "{}", hop.body);
    // Once `access_ttl` has passed, the browser holds only the refresh cookie: logout ends
    // its session all the same.
    let refresh = browser.cookie(&origin(&gw), "sess_refresh").unwrap();
    browser.forget(&origin(&gw), "sess");
    let out = browser
        .get(&format!("{}/auth/oidc/corp/logout?rd=/bye", origin(&gw)))
        .await;
    assert_eq!(out.status, 302, "{}", out.body);
    let to = url::Url::parse(out.location.as_deref().unwrap()).unwrap();
    assert!(
        to.as_str()
            .starts_with(&format!("{}/session/end?", op.issuer)),
        "{to}"
    );
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(
        q["post_logout_redirect_uri"],
        format!("{}/bye", origin(&gw))
    );
    assert_eq!(claims(&q["id_token_hint"])["aud"], "gateway");
    assert!(
        browser.cookie(&origin(&gw), "sess_refresh").is_none(),
        "cookies cleared"
    );
    crate::login::refresh(&gw, &refresh)
        .await
        .assert_refusal(401, "invalid_grant");
    // The session is over on the gateway at once.
    crate::login::call(&gw, &access)
        .await
        .assert_refusal(401, "invalid_token");
    // The provider asks to confirm, then sends the browser back to the gateway's /bye.
    let confirm = browser.get(to.as_str()).await;
    assert_eq!(confirm.status, 200);
    let xsrf = confirm
        .body
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let done = browser
        .post_form(
            &format!("{}/session/end/confirm", op.issuer),
            &[("xsrf", &xsrf), ("logout", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done
        .location
        .unwrap()
        .starts_with(&format!("{}/bye", origin(&gw))));
}

#[tokio::test]
async fn private_key_jwt_authenticates_the_gateway_with_its_published_key() {
    let op = OpenIdProvider::start().await;
    let extra = "client_key_file = \"{KEYS}/rsa_private.pem\"";
    let gw = Gateway::start(
        &config(&op.issuer, extra, false).build(),
        start_echo().await,
    )
    .await;
    let mut client = client(&gw);
    let o = client.as_object_mut().unwrap();
    o.remove("client_secret");
    o.insert(
        "token_endpoint_auth_method".into(),
        json!("private_key_jwt"),
    );
    o.insert(
        "jwks_uri".into(),
        json!(format!("{}/.well-known/jwks.json", origin(&gw))),
    );
    op.register(json!([client])).await;
    ready(&gw).await;
    // The gateway's JWKS holds the client key (kid: its thumbprint).
    let jwks = gw.get("/.well-known/jwks.json", &[]).await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &gw, "/app/", &op, "bob", "bob-pw").await;
    assert_eq!(callback.status, 302, "{}", callback.body);
    assert_eq!(
        claims(&browser.cookie(&origin(&gw), "sess").unwrap())["sub"],
        "bob"
    );
}
