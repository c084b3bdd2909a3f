//! The validator's own cases; the integration tests run `check` on whole files.

use super::*;

fn errors_of(toml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    match load(&path) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|e| {
                    let s = e.to_string();
                    s[s.find("gateway.toml").unwrap()..].to_string()
                })
                .collect()
        }
    }
}

const BASE: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "0123456789abcdef0123456789abcdef"

[roles]
user = {}

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/**"
upstream = "app"
"#;

#[test]
fn a_good_config_loads() {
    assert_eq!(errors_of(BASE), Vec::<String>::new());
}

#[test]
fn every_error_is_reported_with_its_place() {
    let bad = r#"
[server]
listen = ["127.0.0.1:8080"]
bogus = true

[tokens]
issuer = "portcullis"
secret = "short"

[roles]
a = { inherits = ["b"] }
b = { inherits = ["a"] }

[[upstreams]]
name = "app"
targets = ["127.0.0.1:9001"]

[[routes]]
path = "/x"
upstream = "nowhere"
roles_any = ["ghost"]
"#;
    let errs = errors_of(bad);
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(
        has("gateway.toml:4:1: server.bogus: unknown field `bogus`"),
        "{errs:#?}"
    );
    assert!(
        has("gateway.toml:8:10: tokens.secret: an HS secret needs at least 32 bytes"),
        "{errs:#?}"
    );
    assert!(has("roles.a: role `a` inherits itself"), "{errs:#?}");
    assert!(
        has("gateway.toml:20:12: routes[0].upstream: unknown upstream `nowhere`"),
        "{errs:#?}"
    );
    assert!(
        has("routes[0].roles_any[0]: unknown role `ghost`"),
        "{errs:#?}"
    );
}
