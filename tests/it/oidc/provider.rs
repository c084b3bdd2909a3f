//! The real OpenID Provider of the tests: node's certified `oidc-provider`, run by
//! `tests/oidc-provider/provider.mjs` on a free port (its packages installed by
//! `examples/test.sh`), with its clients registered once the gateway's address is known.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{json, Value};

/// A running provider, stopped on drop (its stdin closing stops it too).
pub struct OpenIdProvider {
    pub issuer: String,
    child: Child,
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// The accounts every test signs in with: alice (staff, admins), bob (staff), carol (two
/// factors at the provider, an unverified email).
pub fn accounts() -> Value {
    json!({
        "alice": {"password": "alice-pw", "amr": ["pwd"], "claims": {
            "email": "alice@example.test", "email_verified": true, "name": "Alice Liddell",
            "preferred_username": "alice", "groups": ["staff", "admins"]}},
        "bob": {"password": "bob-pw", "amr": ["pwd"], "claims": {
            "email": "bob@example.test", "email_verified": true, "name": "Bob",
            "preferred_username": "bob", "groups": ["staff"]}},
        "carol": {"password": "carol-pw", "amr": ["pwd", "otp"], "claims": {
            "email": "carol@example.test", "email_verified": false, "name": "Carol",
            "preferred_username": "carol", "groups": ["staff"]}},
    })
}

impl OpenIdProvider {
    /// Starts a provider with the test accounts and no client yet.
    pub async fn start() -> OpenIdProvider {
        let node_modules = harness().join("node_modules/oidc-provider");
        assert!(
            node_modules.exists(),
            "the test OpenID Provider's packages are missing: run `bash examples/test.sh` \
             (or `npm ci --prefix tests/oidc-provider`)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("provider.json");
        let body = json!({"host": "127.0.0.1", "port": 0, "testEndpoints": true,
                          "clients": [], "accounts": accounts()});
        std::fs::write(&config, body.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(harness().join("provider.mjs"))
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .expect("node runs (the tests need Node.js: examples/test.sh installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let err = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            panic!("the OpenID Provider did not start: {line}\n{err}")
        });
        OpenIdProvider {
            issuer: started["issuer"].as_str().unwrap().to_string(),
            child,
            _stdin: stdin,
            _dir: dir,
        }
    }

    /// Registers (replacing every earlier one) these clients.
    pub async fn register(&self, clients: Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/__test/clients", self.issuer))
            .header("content-type", "application/json")
            .body(clients.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 204, "{}", r.text().await.unwrap_or_default());
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
