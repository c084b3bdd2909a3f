//! Headless Chromium (Debian's package, driven by playwright-core) signs in the way a person
//! does: it opens a protected page, lands on the provider's login form, signs in, and sees the
//! page with its identity. The screenshot is kept in `target/oidc-chromium.png`.

use std::process::Command;

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn chromium_opens_a_protected_page_signs_in_at_the_provider_and_sees_it() {
    let (op, gw) = start("", true).await;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "headless Chromium is missing: `bash examples/test.sh` installs Debian's chromium"
    );
    let url = format!("http://{}/app/hello?from=chromium", gw.addr);
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oidc-chromium.png");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider/browser.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args([url.as_str(), "alice", "alice-pw"])
            .arg(&shot)
            .env("CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "CHROMIUM: login form at {}, back at {}",
        seen["form"], seen["url"]
    );
    assert!(seen["form"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/interaction/", op.issuer)));
    assert_eq!(
        seen["url"],
        json!(format!("http://{}/app/hello?from=chromium", gw.addr))
    );
    // The page is the upstream's answer to the signed-in user: the echo of what it received.
    let page: Value = serde_json::from_str(seen["text"].as_str().unwrap()).unwrap();
    assert_eq!(page["path"], "/app/hello");
    let user = page["headers"]["x-user-id"][0].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(user).is_ok(), "{page}");
    // The session's cookies stay at the gateway (the provider's, of the same host, pass).
    let cookies = page["headers"]["cookie"].to_string();
    assert!(!cookies.contains("sess="), "{cookies}");
    assert!(!cookies.contains("sess_refresh="), "{cookies}");
}
