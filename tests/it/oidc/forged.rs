//! Every refusal of the callback and of back-channel logout, with answers a certified
//! provider would never send (the forging provider), and the redirects that must never leave
//! the gateway's origins.

use serde_json::json;

use super::forge::{ClaimsChange, Forge, Signing};
use super::*;
use crate::login::claims;

const ADMIN: &str = "Bearer oidc-admin-token-0123456789";

/// A gateway on the forging provider (its issuer over TLS with the test CA when `tls`).
async fn start_forged(extra: &str, db: bool, tls: bool) -> (Forge, Gateway) {
    let forge = Forge::start(tls).await;
    let extra = match tls {
        true => format!("ca_file = \"{{KEYS}}/ca_cert.pem\"\n{extra}"),
        false => extra.to_string(),
    };
    let gw = Gateway::start(
        &config(&forge.issuer, &extra, db).build(),
        start_echo().await,
    )
    .await;
    ready(&gw).await;
    (forge, gw)
}

fn base(gw: &Gateway) -> String {
    format!("http://{}", gw.addr)
}

/// Starts a sign-in and follows it to the gateway's callback URL (not called yet).
async fn callback_url(browser: &mut Browser, gw: &Gateway, rd: &str) -> String {
    let start = format!("{}/auth/oidc/corp/start?rd={rd}", base(gw));
    let stop = format!("{}/auth/oidc/corp/callback", base(gw));
    let (url, _) = browser.follow(&start, &stop).await;
    assert!(url.starts_with(&stop), "{url}");
    url
}

/// A whole sign-in through the forging provider: the callback's answer.
async fn forged_sign_in(gw: &Gateway, rd: &str) -> (Browser, Hop) {
    let mut browser = Browser::new();
    let url = callback_url(&mut browser, gw, rd).await;
    let hop = browser.get(&url).await;
    (browser, hop)
}

fn refused(hop: &Hop, status: u16, error: &str) {
    assert_eq!(hop.status, status, "{}", hop.body);
    assert_eq!(hop.json()["error"], error, "{}", hop.body);
    assert!(hop.cookie("sess").is_none(), "a refusal sets no session");
    assert!(hop.cookie("portcullis_oidc").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn state_is_single_use_and_bound_to_the_browser_that_started() {
    let (_forge, gw) = start_forged("", false, false).await;
    let mut browser = Browser::new();
    let url = callback_url(&mut browser, &gw, "/app/").await;
    // Another browser (no binding cookie, or another one) cannot finish it ...
    let mut other = Browser::new();
    callback_url(&mut other, &gw, "/app/").await;
    refused(&other.get(&url).await, 400, "invalid_request");
    // ... and the state is spent by that attempt: the browser that started cannot either.
    refused(&browser.get(&url).await, 400, "invalid_request");
    // A fresh one works once, then replaying it is refused.
    let url = callback_url(&mut browser, &gw, "/app/").await;
    assert_eq!(browser.get(&url).await.status, 302);
    refused(&browser.get(&url).await, 400, "invalid_request");
    // No state at all, or an unknown one.
    let cb = format!("{}/auth/oidc/corp/callback", base(&gw));
    refused(
        &browser.get(&format!("{cb}?code=x")).await,
        400,
        "invalid_request",
    );
    refused(
        &browser.get(&format!("{cb}?code=x&state=nope")).await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn the_callbacks_iss_and_the_providers_error_are_checked() {
    let (forge, gw) = start_forged("", false, false).await;
    forge.set(|s| s.callback_iss = Some("https://evil.example".into()));
    refused(&forged_sign_in(&gw, "/").await.1, 400, "invalid_request");
    // The provider says it always sends `iss`: leaving it out is refused.
    forge.set(|s| s.callback_iss = None);
    refused(&forged_sign_in(&gw, "/").await.1, 400, "invalid_request");
    let own = forge.issuer.clone();
    forge.set(|s| {
        s.callback_iss = Some(own);
        s.error = Some((
            "access_denied".into(),
            "The user said no\r\n<script>".into(),
        ));
    });
    let (_, hop) = forged_sign_in(&gw, "/").await;
    refused(&hop, 401, "access_denied");
    assert_eq!(hop.json()["error_description"], "The user said no<script>");
}

#[tokio::test]
async fn every_id_token_check_refuses_with_invalid_grant() {
    let (forge, gw) = start_forged("", false, false).await;
    let now = now();
    let cases: Vec<(&str, Signing, ClaimsChange)> = vec![
        (
            "expired",
            Signing::Good,
            Box::new(move |c| {
                c.insert("exp".into(), json!(now - 600));
            }),
        ),
        (
            "another audience",
            Signing::Good,
            Box::new(|c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
        ),
        (
            "another nonce",
            Signing::Good,
            Box::new(|c| {
                c.insert("nonce".into(), json!("replayed-nonce"));
            }),
        ),
        (
            "no nonce",
            Signing::Good,
            Box::new(|c| {
                c.remove("nonce");
            }),
        ),
        (
            "another issuer",
            Signing::Good,
            Box::new(|c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }),
        ),
        (
            "azp of another client",
            Signing::Good,
            Box::new(|c| {
                c.insert("aud".into(), json!(["gateway", "other"]));
                c.insert("azp".into(), json!("other"));
            }),
        ),
        (
            "issued in the future",
            Signing::Good,
            Box::new(move |c| {
                c.insert("iat".into(), json!(now + 3600));
            }),
        ),
        ("unsigned", Signing::Unsigned, Box::new(|_| {})),
        (
            "HMAC with the client secret",
            Signing::Hmac,
            Box::new(|_| {}),
        ),
        ("a stranger's key", Signing::Stranger, Box::new(|_| {})),
    ];
    for (case, signing, change) in cases {
        forge.set(|s| {
            s.signing = signing;
            s.claims = change;
        });
        let (_, hop) = forged_sign_in(&gw, "/").await;
        assert_eq!(hop.status, 401, "{case}: {}", hop.body);
        refused(&hop, 401, "invalid_grant");
    }
    // Several audiences are fine while one is the client and azp names it.
    forge.set(|s| {
        s.signing = Signing::Good;
        s.claims = Box::new(|c| {
            c.insert("aud".into(), json!(["gateway", "other"]));
            c.insert("azp".into(), json!("gateway"));
        });
    });
    assert_eq!(forged_sign_in(&gw, "/").await.1.status, 302);
}

#[tokio::test]
async fn rd_never_leaves_the_gateways_origins() {
    let extra = "allowed_redirects = [\"https://app.example\"]";
    let (_forge, gw) = start_forged(extra, false, false).await;
    let own = base(&gw);
    for (rd, lands) in [
        ("%2Fapp%2Fx%3Fa%3D1", format!("{own}/app/x?a=1")),
        (
            "https%3A%2F%2Fapp.example%2Fhome",
            "https://app.example/home".to_string(),
        ),
        ("%2F%2Fevil.example%2F", format!("{own}/")),
        ("%2F%5Cevil.example", format!("{own}/")),
        ("%2F%09%2Fevil.example", format!("{own}/")),
        ("https%3A%2F%2Fevil.example%2F", format!("{own}/")),
        (
            "https%3A%2F%2Fapp.example.evil.example%2F",
            format!("{own}/"),
        ),
        ("javascript%3Aalert(1)", format!("{own}/")),
    ] {
        let (_, hop) = forged_sign_in(&gw, rd).await;
        assert_eq!(hop.status, 302, "{rd}: {}", hop.body);
        assert_eq!(hop.location.as_deref(), Some(lands.as_str()), "{rd}");
    }
}

#[tokio::test]
async fn later_logins_update_provider_roles_and_keep_the_admins() {
    let (forge, gw) = start_forged("", true, true).await;
    let (browser, hop) = forged_sign_in(&gw, "/").await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let c = claims(&browser.cookie(&base(&gw), "sess").unwrap());
    assert_eq!(c["roles"], json!(["user"]));
    // An admin adds a role of their own; the provider then moves the user to `admins`.
    let patch = gw
        .admin_request(
            "PATCH",
            "/admin/users/dora",
            &[
                ("Authorization", ADMIN),
                ("Content-Type", "application/json"),
            ],
            r#"{"roles": ["user", "auditor"]}"#,
        )
        .await;
    assert_eq!(
        patch.status,
        200,
        "{}",
        String::from_utf8_lossy(&patch.body)
    );
    forge.set(|s| {
        s.claims = Box::new(|c| {
            c.insert("groups".into(), json!(["admins"]));
            c.insert("name".into(), json!("Dora D."));
        })
    });
    let (browser, hop) = forged_sign_in(&gw, "/").await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let c = claims(&browser.cookie(&base(&gw), "sess").unwrap());
    assert_eq!(
        c["roles"],
        json!(["auditor", "admin"]),
        "the provider's `user` gone, the admin's `auditor` kept"
    );
    assert_eq!(c["name"], "Dora D.");
    // Disabled by an admin: refused at the next sign-in, whatever the provider says.
    gw.admin_request(
        "PATCH",
        "/admin/users/dora",
        &[
            ("Authorization", ADMIN),
            ("Content-Type", "application/json"),
        ],
        r#"{"disabled": true}"#,
    )
    .await;
    refused(&forged_sign_in(&gw, "/").await.1, 403, "access_denied");
    // A `preferred_username` that is taken: the provider's own name for the user instead.
    forge.set(|s| {
        s.claims = Box::new(|c| {
            c.insert("sub".into(), json!("another-sub"));
        })
    });
    let (browser, hop) = forged_sign_in(&gw, "/").await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let sub = claims(&browser.cookie(&base(&gw), "sess").unwrap())["sub"].clone();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"another-sub"));
    let name = format!("corp-{}", &digest[..12]);
    let user = gw
        .admin_request(
            "GET",
            &format!("/admin/users/{name}"),
            &[("Authorization", ADMIN)],
            "",
        )
        .await;
    assert_eq!(user.json()["subject"], sub);
}

#[tokio::test]
async fn back_channel_logout_tokens_are_verified_and_single_use() {
    let (forge, gw) = start_forged("", false, false).await;
    let (browser, hop) = forged_sign_in(&gw, "/").await;
    assert_eq!(hop.status, 302);
    let access = browser.cookie(&base(&gw), "sess").unwrap();
    let post = |token: String| {
        let gw = &gw;
        async move {
            let body = format!("logout_token={token}");
            gw.request(
                "POST",
                "/auth/oidc/corp/backchannel-logout",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                &body,
            )
            .await
        }
    };
    for (case, claims, signing) in [
        (
            "no event",
            json!({"sid": "forge-session-1", "events": null}),
            Signing::Good,
        ),
        (
            "a nonce",
            json!({"sid": "forge-session-1", "nonce": "n"}),
            Signing::Good,
        ),
        (
            "no jti",
            json!({"sid": "forge-session-1", "jti": null}),
            Signing::Good,
        ),
        ("neither sid nor sub", json!({}), Signing::Good),
        (
            "another audience",
            json!({"sid": "forge-session-1", "aud": "other"}),
            Signing::Good,
        ),
        (
            "expired",
            json!({"sid": "forge-session-1", "exp": now() - 600}),
            Signing::Good,
        ),
        (
            "unsigned",
            json!({"sid": "forge-session-1"}),
            Signing::Unsigned,
        ),
        (
            "a stranger's key",
            json!({"sid": "forge-session-1"}),
            Signing::Stranger,
        ),
    ] {
        post(forge.logout_token(claims, signing))
            .await
            .assert_refusal(400, "invalid_request");
        assert_eq!(
            crate::login::call(&gw, &access).await.status,
            200,
            "{case}: still signed in"
        );
    }
    let token = forge.logout_token(json!({"sid": "forge-session-1"}), Signing::Good);
    assert_eq!(post(token.clone()).await.status, 200);
    crate::login::call(&gw, &access)
        .await
        .assert_refusal(401, "invalid_token");
    post(token).await.assert_refusal(400, "invalid_request");
}

#[tokio::test]
async fn discovery_is_fetched_again_on_schedule_and_the_last_good_one_kept() {
    let forge = Forge::start(false).await;
    let toml = config(&forge.issuer, "discovery_refresh = \"10m\"", false).build();
    let gw = Gateway::start_frozen(&toml, start_echo().await, &[]).await;
    ready(&gw).await;
    assert_eq!(forged_sign_in(&gw, "/").await.1.status, 302);
    let fetched = || forge.script.lock().unwrap().discoveries;
    assert_eq!(fetched(), 1);
    gw.advance_clock(600);
    eventually("discovery fetched again", || async { fetched() == 2 }).await;
    // The provider fails: the gateway keeps the last good document, and stays ready.
    forge.set(|s| s.discovery_down = true);
    gw.advance_clock(600);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        gw.admin_request("GET", "/readyz", &[], "").await.status,
        200
    );
    let start = gw.get("/auth/oidc/corp/start", &[]).await;
    assert_eq!(
        start.status, 302,
        "a sign-in still starts on the kept document"
    );
}

#[tokio::test]
async fn a_provider_on_a_private_ca_needs_its_ca_file() {
    // Over TLS with the test CA, but no `ca_file`: never fetched, never ready.
    let forge = Forge::start(true).await;
    let gw = Gateway::start(
        &config(&forge.issuer, "", false).build(),
        start_echo().await,
    )
    .await;
    let mut waited = 0;
    let why = loop {
        let r = gw.admin_request("GET", "/readyz", &[], "").await;
        assert_eq!(r.status, 503);
        if waited >= 20 {
            break String::from_utf8_lossy(&r.body).into_owned();
        }
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert!(
        why.contains("oidc: the discovery of `corp` has not been fetched yet"),
        "{why}"
    );
    gw.get("/auth/oidc/corp/start", &[])
        .await
        .assert_refusal(503, "unavailable");
}

#[tokio::test]
async fn claims_the_id_token_lacks_come_from_userinfo_of_the_same_subject() {
    let (forge, gw) = start_forged("require = { email_verified = true }", false, false).await;
    forge.set(|s| s.userinfo_only = vec!["email", "email_verified", "groups", "name"]);
    let (browser, hop) = forged_sign_in(&gw, "/").await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let c = claims(&browser.cookie(&base(&gw), "sess").unwrap());
    assert_eq!(c["roles"], json!(["user"]), "groups from userinfo");
    assert_eq!(c["email"], "dora@example.test");
    // A userinfo answer about someone else is refused.
    forge.set(|s| s.userinfo_sub = Some("someone-else".into()));
    refused(&forged_sign_in(&gw, "/").await.1, 401, "invalid_grant");
}
