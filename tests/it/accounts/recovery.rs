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

        // The session's trail, through the admin API, and the user's own activity.
        let rows = audit_rows(&gw, "alice", "password_reset").await;
        let events: Vec<&str> = rows.iter().map(|e| e["event"].as_str().unwrap()).collect();
        eprintln!("AUDIT ROWS of alice (newest first): {events:?}");
        for want in ["register", "email_verified", "login", "password_reset_requested", "password_reset"] {
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
