//! Recovery, verification and the audit trail (docs/CONFIG.md, `[mail]` and `[audit]`)
//! through the real gateway, a real SMTP server (`SmtpSink`) and a real database (SQLite,
//! and PostgreSQL where `both!`): the mails as received, a reset end to end from the mailed
//! token, what a reset revokes, enumeration, the one-mail-a-minute rule, spent and expired
//! tokens, verification, the audit rows and the database stopped while events keep coming.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::login::{login, pair};

const FROM: &str = "Portcullis <no-reply@example.test>";

/// The accounts config with `[mail]` on `smtp` (its link to the app's reset page) and the
/// audit trail in the database.
fn mail_config(backend: &Backend, smtp: &SmtpSink, extra_mail: &str, login_extra: &str) -> Toml {
    config(backend, login_extra).table(&format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"{FROM}\"\n\
         link = \"https://app.example.test/reset?token={{token}}\"\n\
         verify_link = \"https://app.example.test/verify?token={{token}}\"\n{extra_mail}\n\n\
         [audit]\ndatabase = true",
        smtp.port
    ))
}

/// Registers `name` with `email`; the verification mail's token.
async fn registered(gw: &Gateway, smtp: &SmtpSink, name: &str, email: &str) -> String {
    let before = smtp.mails().len();
    let r = gw
        .post_json(
            "/auth/register",
            &[],
            &json!({"username": name, "password": PASSWORD, "email": email}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let mail = smtp.wait_for(before + 1).await.pop().unwrap();
    assert_eq!(mail["rcpt_tos"], json!([email]));
    token_in(&mail)
}

async fn verified(gw: &Gateway, smtp: &SmtpSink, name: &str, email: &str) {
    let token = registered(gw, smtp, name, email).await;
    let r = gw
        .post_json("/auth/email/verify", &[], &json!({"token": token}))
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

async fn forgot(gw: &Gateway, who: Value) -> Response {
    gw.post_json("/auth/password/forgot", &[], &who).await
}

async fn reset(gw: &Gateway, token: &str, new: &str) -> Response {
    gw.post_json(
        "/auth/password/reset",
        &[],
        &json!({"token": token, "new_password": new}),
    )
    .await
}

/// The stored audit rows of `username`, newest first, once `event` is among them.
async fn audit_rows(gw: &Gateway, username: &str, event: &str) -> Vec<Value> {
    for _ in 0..500 {
        let r = admin(
            gw,
            "GET",
            &format!("/admin/audit?username={username}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let rows = r.json()["events"].as_array().unwrap().clone();
        if rows.iter().any(|e| e["event"] == event) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no `{event}` row for {username}");
}

both! {
    async fn a_forgotten_password_is_reset_from_the_mailed_token(backend: Backend) {
        let smtp = SmtpSink::start(&[]).await;
        let toml = mail_config(&backend, &smtp, "", "");
        let gw = start_toml(backend, toml).await;
        verified(&gw, &smtp, "alice", "alice@example.test").await;
        let (old_access, old_refresh) = pair(&login(&gw, "alice", PASSWORD).await);
        assert_eq!(login(&gw, "alice", "wrong password!").await.status, 401);

        let r = forgot(&gw, json!({"email": "ALICE@example.test"})).await;
        assert_eq!(r.status, 202);
        let mail = smtp.wait_for(2).await.pop().unwrap();
        assert_eq!(mail["rcpt_tos"], json!(["alice@example.test"]));
        assert_eq!(mail["mail_from"], "no-reply@example.test");
        let data = mail["data"].as_str().unwrap();
        assert!(data.contains("Subject: Reset your password"), "{data}");
        assert!(data.contains("https://app.example.test/reset?token="), "{data}");
        let token = token_in(&mail);
        eprintln!("RESET MAIL to {} from {}: link https://app.example.test/reset?token={}...", mail["rcpt_tos"][0], mail["mail_from"], &token[..8]);

        // A weak password is refused and does not spend the token.
        reset(&gw, &token, "short").await.assert_refusal(400, "weak_password");
        let r = reset(&gw, &token, "a brand new passphrase 42").await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let (new_access, _) = pair(&r);
        assert_eq!(with_token(&gw, &new_access).await.status, 200);
        // Every other session and token is over; the old password too; the token is spent.
        with_token(&gw, &old_access).await.assert_refusal(401, "invalid_token");
        crate::login::refresh(&gw, &old_refresh).await.assert_refusal(401, "invalid_grant");
        assert_eq!(login(&gw, "alice", PASSWORD).await.status, 401);
        assert_eq!(login(&gw, "alice", "a brand new passphrase 42").await.status, 200);
        reset(&gw, &token, "another new passphrase 43").await.assert_refusal(400, "invalid_grant");

        let key = me(&gw, "POST", "/auth/api-keys", &new_access, Some(json!({"name": "ci"}))).await;
        assert_eq!(key.status, 201, "{}", String::from_utf8_lossy(&key.body));

        // The session's trail, through the admin API, and the user's own activity.
        let rows = audit_rows(&gw, "alice", "api_key_created").await;
        let events: Vec<&str> = rows.iter().map(|e| e["event"].as_str().unwrap()).collect();
        eprintln!("AUDIT ROWS of alice (newest first): {events:?}");
        for want in ["register", "email_verified", "login", "password_reset_requested", "password_reset", "api_key_created"] {
            assert!(events.contains(&want), "{want} in {events:?}");
        }
        assert!(rows.iter().any(|e| e["event"] == "login" && e["result"] == "failure"));
        let activity = me(&gw, "GET", "/auth/activity", &new_access, None).await;
        assert_eq!(activity.status, 200);
        assert!(activity.json()["events"].as_array().unwrap().len() >= 5);
        // No token in the rows, the API's answers or the log.
        let everything = format!("{rows:?}{}", gw.stdout());
        assert!(!everything.contains(&token), "the reset token was kept somewhere");
    }
}

/// A gateway on SQLite with `[mail]` on `smtp`, its clock frozen (the test moves it).
async fn frozen(smtp: &SmtpSink, extra_mail: &str, login_extra: &str) -> Gateway {
    let toml = mail_config(&Backend::Sqlite, smtp, extra_mail, login_extra).build();
    let gw = Gateway::start_frozen(&toml, start_echo().await, &[]).await;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw
}

#[tokio::test]
async fn forgot_tells_nothing_of_who_exists_in_its_answer_or_its_time() {
    let smtp = SmtpSink::start(&[]).await;
    let toml = mail_config(&Backend::Sqlite, &smtp, "", "");
    let gw = start_toml(Backend::Sqlite, toml).await;
    verified(&gw, &smtp, "alice", "alice@example.test").await;
    let cases = [
        ("a user with a verified email", json!({"username": "alice"})),
        ("an unknown username", json!({"username": "nobody-here"})),
        ("an unknown email", json!({"email": "nobody@example.test"})),
    ];
    let mut medians = Vec::new();
    for (case, who) in &cases {
        let mut times = Vec::new();
        let mut bodies = std::collections::BTreeSet::new();
        for _ in 0..25 {
            let started = Instant::now();
            let r = forgot(&gw, who.clone()).await;
            times.push(started.elapsed());
            assert_eq!(r.status, 202, "{case}");
            bodies.insert(r.body.clone());
        }
        assert_eq!(bodies.len(), 1, "{case}: one answer");
        assert_eq!(
            bodies.first().unwrap(),
            &Vec::<u8>::new(),
            "{case}: an empty body"
        );
        times.sort();
        medians.push((case, times[times.len() / 2]));
    }
    eprintln!("ENUMERATION median time of 25 forgot requests each: {medians:?}");
    let (fastest, slowest) = (
        medians.iter().map(|m| m.1).min().unwrap(),
        medians.iter().map(|m| m.1).max().unwrap(),
    );
    // The answer goes before any token or mail is made: the medians differ by noise only.
    assert!(
        slowest.saturating_sub(fastest) < Duration::from_millis(5),
        "{medians:?}"
    );
    // Of the 25 requests for alice, one mail: at most one a minute.
    let mails = smtp.wait_for(2).await;
    let rows = audit_rows(&gw, "alice", "password_reset_requested").await;
    let throttled = rows.iter().filter(|r| r["result"] == "throttled").count();
    assert!(throttled >= 1, "{rows:?}");
    assert_eq!(mails.len(), 2, "the verification mail and one reset mail");
}

#[tokio::test]
async fn one_reset_mail_a_minute_a_newer_token_voids_the_older_and_tokens_expire() {
    let smtp = SmtpSink::start(&[]).await;
    let gw = frozen(&smtp, "", "").await;
    verified(&gw, &smtp, "alice", "alice@example.test").await;
    assert_eq!(forgot(&gw, json!({"username": "alice"})).await.status, 202);
    let first = token_in(&smtp.wait_for(2).await[1]);
    // Within the minute: no token, no mail (the audit row says so, no waiting on a clock).
    assert_eq!(forgot(&gw, json!({"username": "alice"})).await.status, 202);
    let rows = audit_rows(&gw, "alice", "password_reset_requested").await;
    assert!(rows.iter().any(|r| r["result"] == "throttled"), "{rows:?}");
    assert_eq!(smtp.mails().len(), 2);
    // A minute later, a second mail; its token voids the first.
    gw.advance_clock(61);
    assert_eq!(forgot(&gw, json!({"username": "alice"})).await.status, 202);
    let second = token_in(&smtp.wait_for(3).await[2]);
    assert_ne!(first, second);
    reset(&gw, &first, "a brand new passphrase 42")
        .await
        .assert_refusal(400, "invalid_grant");
    // The operator's token voids the mailed one in turn; it expires after 30 minutes.
    let r = admin(&gw, "POST", "/admin/users/alice/password-reset", None).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let link = body["link"].as_str().unwrap();
    let by_admin = body["token"].as_str().unwrap().to_string();
    assert_eq!(
        link,
        format!("https://app.example.test/reset?token={by_admin}")
    );
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    reset(&gw, &second, "a brand new passphrase 42")
        .await
        .assert_refusal(400, "invalid_grant");
    gw.advance_clock(30 * 60 + 1);
    reset(&gw, &by_admin, "a brand new passphrase 42")
        .await
        .assert_refusal(400, "invalid_grant");
    // A fresh one, in time, works; spent, it does not work again.
    let r = admin(&gw, "POST", "/admin/users/alice/password-reset", None).await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        reset(&gw, &token, "a brand new passphrase 42").await.status,
        200
    );
    reset(&gw, &token, "another passphrase 43")
        .await
        .assert_refusal(400, "invalid_grant");
    // Malformed input is refused plainly.
    forgot(&gw, json!({}))
        .await
        .assert_refusal(400, "invalid_request");
    forgot(&gw, json!({"username": "a", "email": "b"}))
        .await
        .assert_refusal(400, "invalid_request");
    reset(&gw, "", "x")
        .await
        .assert_refusal(400, "invalid_request");
}

#[tokio::test]
async fn a_locked_account_gets_its_mail_and_the_reset_clears_the_lockout() {
    let smtp = SmtpSink::start(&[]).await;
    let gw = frozen(&smtp, "", "max_failed_attempts = 3\nlockout = \"1h\"").await;
    verified(&gw, &smtp, "alice", "alice@example.test").await;
    for _ in 0..3 {
        login(&gw, "alice", "wrong password!").await;
    }
    login(&gw, "alice", PASSWORD)
        .await
        .assert_refusal(429, "account_locked");
    assert_eq!(forgot(&gw, json!({"username": "alice"})).await.status, 202);
    let token = token_in(&smtp.wait_for(2).await[1]);
    assert_eq!(
        reset(&gw, &token, "a brand new passphrase 42").await.status,
        200
    );
    assert_eq!(
        login(&gw, "alice", "a brand new passphrase 42")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn verification_before_login_and_an_admins_new_email_is_unverified() {
    let smtp = SmtpSink::start(&[]).await;
    let login_extra =
        "registration = { enabled = true, roles = [\"user\"], require_verified_email = true }";
    let toml = mail_config(&Backend::Sqlite, &smtp, "", "")
        .build()
        .replace(
            "registration = { enabled = true, roles = [\"user\"] }",
            login_extra,
        );
    let gw = Gateway::start_frozen(&toml, start_echo().await, &[]).await;
    // No email, no registration: it could never be verified.
    let r = gw
        .post_json(
            "/auth/register",
            &[],
            &json!({"username": "nomail", "password": PASSWORD}),
        )
        .await;
    r.assert_refusal(400, "invalid_request");
    let token = registered(&gw, &smtp, "bob", "bob@example.test").await;
    // The right password, an unverified email: refused, and told only now.
    login(&gw, "bob", "wrong password!")
        .await
        .assert_refusal(401, "invalid_credentials");
    login(&gw, "bob", PASSWORD)
        .await
        .assert_refusal(403, "email_unverified");
    // Resend by name, a minute later (one verification mail a minute): a new token, which
    // voids the first.
    gw.advance_clock(61);
    let r = gw
        .post_json("/auth/email/resend", &[], &json!({"username": "bob"}))
        .await;
    assert_eq!(r.status, 202);
    let again = token_in(&smtp.wait_for(2).await[1]);
    gw.post_json("/auth/email/verify", &[], &json!({"token": token}))
        .await
        .assert_refusal(400, "invalid_grant");
    let r = gw
        .post_json("/auth/email/verify", &[], &json!({"token": again}))
        .await;
    assert_eq!(r.status, 204);
    let (access, _) = pair(&login(&gw, "bob", PASSWORD).await);
    assert_eq!(crate::login::claims(&access)["email_verified"], true);
    // Spent.
    gw.post_json("/auth/email/verify", &[], &json!({"token": again}))
        .await
        .assert_refusal(400, "invalid_grant");
    // An operator changes the email: unverified again, and the login waits for it.
    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/bob",
        Some(json!({"claims": {"email": "bob@new.example.test", "email_verified": true}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["claims"]["email_verified"], false);
    login(&gw, "bob", PASSWORD)
        .await
        .assert_refusal(403, "email_unverified");
}

#[tokio::test]
async fn mail_goes_out_over_starttls_or_smtps_with_credentials_and_retries() {
    let cert = keys_dir().join("tls_cert.pem");
    let key = keys_dir().join("tls_key.pem");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let ca = format!("ca_file = \"{}\"", keys_dir().join("ca_cert.pem").display());
    for (case, args, scheme, extra) in [
        (
            "STARTTLS required, with a login",
            vec![
                "--starttls",
                cert,
                key,
                "--require-starttls",
                "--auth",
                "mailer:s3cret",
            ],
            "smtp://mailer:s3cret@",
            format!("starttls = \"required\"\n{ca}"),
        ),
        ("SMTPS", vec!["--smtps", cert, key], "smtps://", ca.clone()),
        (
            "a transient failure first",
            vec!["--fail", "1"],
            "smtp://",
            String::new(),
        ),
    ] {
        let smtp = SmtpSink::start(&args).await;
        let toml = mail_config(&Backend::Sqlite, &smtp, &extra, "")
            .build()
            .replace("smtp://127.0.0.1", &format!("{scheme}127.0.0.1"));
        // The certificate names `localhost` and 127.0.0.1; the URL names the address.
        let gw = Gateway::start(&toml, start_echo().await).await;
        registered(&gw, &smtp, "carol", "carol@example.test").await;
        let mail = &smtp.mails()[0];
        eprintln!("MAIL {case}: tls {} auth {}", mail["tls"], mail["auth"]);
        if case != "a transient failure first" {
            assert_eq!(mail["tls"], true, "{case}");
        }
        let logs = gw.stdout();
        assert!(
            !logs.contains("s3cret"),
            "{case}: the SMTP password in the log"
        );
    }
}

#[tokio::test]
async fn audit_rows_keep_coming_and_nothing_blocks_while_the_database_is_away() {
    let db = PgDatabase::create().await;
    let relay = super::faults::Relay::start(super::faults::postgres_addr(&db)).await;
    let url = super::faults::through(&db, &relay);
    let toml = config(&Backend::Sqlite, "")
        .table("[audit]\ndatabase = true")
        .build()
        .replace("sqlite://users.db", &url);
    let gw = Gateway::start(&toml, start_echo().await).await;
    let (access, _) = crate::accounts::signed_up(&gw, "dave").await;
    assert_eq!(with_token(&gw, &access).await.status, 200);
    audit_rows(&gw, "dave", "login").await;
    relay.cut();
    // Refusals keep being answered at once, and logged; their rows cannot be stored.
    let started = Instant::now();
    for _ in 0..50 {
        gw.get("/api/x", &[("Authorization", "Bearer not.a.token")])
            .await
            .assert_refusal(401, "invalid_token");
    }
    let took = started.elapsed();
    eprintln!("DATABASE AWAY: 50 refusals answered in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let dropped = || async {
        let m = gw.admin_request("GET", "/metrics", &[], "").await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        text.lines()
            .find(|l| l.starts_with("portcullis_audit_dropped_total "))
            .and_then(|l| l.split(' ').nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    for _ in 0..1000 {
        if dropped().await > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dropped().await > 0.0, "the rows not stored are counted");
    assert!(
        gw.stdout().matches("\"event\":\"refused\"").count() >= 50,
        "still in the log"
    );
    relay.restore();
    // Back: rows are stored again.
    for _ in 0..1000 {
        let bad = "Bearer back.again.token";
        gw.get("/api/x", &[("Authorization", bad)]).await;
        let r = admin(&gw, "GET", "/admin/audit?event=refused&limit=1", None).await;
        if r.status == 200 && !r.json()["events"].as_array().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no audit row stored after the database came back");
}

#[tokio::test]
async fn the_trail_pages_filters_and_forgets_rows_past_the_retention() {
    let smtp = SmtpSink::start(&[]).await;
    let toml = mail_config(&Backend::Sqlite, &smtp, "", "")
        .build()
        .replace("database = true", "database = true\nretention = \"1h\"");
    let gw = Gateway::start_frozen(&toml, start_echo().await, &[]).await;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(gw.admin).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let token = registered(&gw, &smtp, "frank", "frank@example.test").await;
    for _ in 0..3 {
        login(&gw, "frank", "wrong password!").await;
    }
    audit_rows(&gw, "frank", "login").await;
    // Resend with the user's own token, then by email: one mail a minute.
    gw.advance_clock(61);
    let (access, _) = pair(&login(&gw, "frank", PASSWORD).await);
    let r = gw
        .request(
            "POST",
            "/auth/email/resend",
            &[("Authorization", &bearer(&access))],
            "",
        )
        .await;
    assert_eq!(r.status, 202);
    smtp.wait_for(2).await;
    let r = gw
        .post_json(
            "/auth/email/resend",
            &[],
            &json!({"email": "FRANK@example.test"}),
        )
        .await;
    assert_eq!(r.status, 202);
    gw.post_json("/auth/email/verify", &[], &json!({"token": token}))
        .await
        .assert_refusal(400, "invalid_grant");
    // Pages of two, newest first, by keyset; filters by event.
    let page = |q: String| {
        let gw = &gw;
        async move {
            let r = admin(
                gw,
                "GET",
                &format!("/admin/audit?username=frank&limit=2{q}"),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.json()
        }
    };
    let first = page(String::new()).await;
    let next = first["next"].as_str().unwrap().to_string();
    let second = page(format!("&after={next}")).await;
    let ids = |p: &Value| -> Vec<i64> {
        p["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert!(a[0] > a[1] && a[1] > b[0] && b[0] > b[1], "{a:?} {b:?}");
    let failures = admin(&gw, "GET", "/admin/audit?username=frank&event=login", None)
        .await
        .json();
    assert!(failures["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event"] == "login"));
    admin(&gw, "GET", "/admin/audit?limit=501", None)
        .await
        .assert_refusal(400, "invalid_request");
    admin(&gw, "GET", "/admin/audit?after=x", None)
        .await
        .assert_refusal(400, "invalid_request");
    // Two hours on, the next rows written prune those past the hour of retention.
    gw.advance_clock(2 * 3600);
    login(&gw, "frank", "wrong password!").await;
    for _ in 0..500 {
        let rows = admin(&gw, "GET", "/admin/audit?username=frank", None)
            .await
            .json();
        let rows = rows["events"].as_array().unwrap().clone();
        if rows.len() == 1 {
            assert_eq!(rows[0]["event"], "login");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("rows past the retention were kept");
}

#[tokio::test]
async fn a_reset_logs_in_as_a_login_does_and_an_old_address_is_void() {
    let smtp = SmtpSink::start(&[]).await;
    let toml = mail_config(&Backend::Sqlite, &smtp, "", "");
    let gw = start_toml(Backend::Sqlite, toml).await;
    verified(&gw, &smtp, "gina", "gina@example.test").await;
    let (access, _) = pair(&login(&gw, "gina", PASSWORD).await);
    let secret = me(&gw, "POST", "/auth/mfa/setup", &access, None)
        .await
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let code = super::self_service::totp(&secret, now());
    let enabled = me(
        &gw,
        "POST",
        "/auth/mfa/enable",
        &access,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(enabled.status, 200);
    // A reset is no way around the second factor: the password changes, the session waits
    // for the code (400, as the reset's other refusals and /auth/token answer: RFC 6749).
    let r = admin(&gw, "POST", "/admin/users/gina/password-reset", None).await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = reset(&gw, &token, "a brand new passphrase 42").await;
    let body = r.assert_refusal(400, "mfa_required");
    assert!(body["mfa_token"].is_string());
    login(&gw, "gina", PASSWORD)
        .await
        .assert_refusal(401, "invalid_credentials");
    // A token mailed to the old address neither resets nor verifies once the admin changed it.
    let r = admin(&gw, "POST", "/admin/users/gina/password-reset", None).await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/gina",
        Some(json!({"claims": {"email": "gina@new.example.test"}})),
    )
    .await;
    assert_eq!(r.status, 200);
    reset(&gw, &token, "another passphrase 43")
        .await
        .assert_refusal(400, "invalid_grant");
    // Another site's page cannot start mails (nor spend the visitor's login budget).
    let r = gw
        .request(
            "POST",
            "/auth/password/forgot",
            &[
                ("Content-Type", "application/json"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            r#"{"username": "gina"}"#,
        )
        .await;
    r.assert_refusal(403, "invalid_origin");
    // The activity is the security events, with where they came from.
    // (the next step's code: the one of this step was spent by the setup)
    let code = super::self_service::totp(&secret, now() + 30);
    let body = json!({"username": "gina", "password": "a brand new passphrase 42", "totp": code});
    let (access, _) = pair(&gw.post_json("/auth/login", &[], &body).await);
    let activity = me(&gw, "GET", "/auth/activity", &access, None).await.json();
    let events = activity["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["event"] != "refresh"), "{activity}");
    let login_row = events
        .iter()
        .find(|e| e["event"] == "login" && e["result"] == "success");
    let login_row = login_row.expect("the login");
    assert_eq!(login_row["client_ip"], "127.0.0.1");
}
