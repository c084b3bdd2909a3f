//! `portcullis check` on the keys of section 7: each error at its place in the file.

use crate::support::*;

#[test]
fn check_reports_users_db_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let write_and_check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = cli(&["check", "-c", &path.to_string_lossy()], None);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = write_and_check(
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "it-secret-0123456789-0123456789-0123456789"

[roles]
user = {}

[login]
users_db = "mysql://db/users"
users_file = "users.toml"
db_key = "short"
registration = { enabled = true, roles = ["ghost"] }
password_policy = { min_length = 4, max_length = 2 }
"#,
    );
    assert_eq!(code, Some(1));
    for e in [
        "gateway.toml:12:12: login.users_db: must be sqlite://PATH or postgres://USER@HOST/DATABASE",
        "gateway.toml:12:12: login.users_db: users_db and users_file exclude each other",
        "gateway.toml:15:43: login.registration.roles[0]: unknown role `ghost`",
        "gateway.toml:16:34: login.password_policy.min_length: must be at least 8",
        "gateway.toml:16:50: login.password_policy.max_length: must be at least min_length",
    ] {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
    let (code, err) = write_and_check(
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "it-secret-0123456789-0123456789-0123456789"

[login]
users_db = "sqlite://users.db"
db_key = "too-short"
"#,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("gateway.toml:10:10: login.db_key: needs at least 32 bytes (this one has 9)"),
        "{err}"
    );
    let (code, err) = write_and_check(
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "it-secret-0123456789-0123456789-0123456789"

[login]
db_key = "0123456789-0123456789-0123456789"
"#,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("gateway.toml:9:10: login.db_key: needs users_db"),
        "{err}"
    );
    // check validates and does not connect: a valid SQLite file need not exist yet.
    let (code, err) = write_and_check(
        r#"[server]
listen = ["127.0.0.1:8080"]

[tokens]
issuer = "portcullis"
secret = "it-secret-0123456789-0123456789-0123456789"

[login]
users_db = "postgres://nobody@127.0.0.1:1/none"
db_key = "0123456789-0123456789-0123456789"
"#,
    );
    assert_eq!(code, Some(0), "{err}");
}
