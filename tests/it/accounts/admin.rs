//! The admin users API: each endpoint's success, refusals and bad input; what disabling,
//! deleting and a new password do to a user's sessions and keys.

use serde_json::json;

use super::*;
use crate::login::{login, pair, refresh};

fn names(r: &Response) -> Vec<String> {
    r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

both! {
    async fn users_are_created_listed_read_changed_and_deleted(backend: Backend) {
        let gw = start(backend).await;
        let r = admin(&gw, "POST", "/admin/users", Some(json!({
            "username": "Mia", "password": PASSWORD, "subject": "u-mia",
            "roles": ["auditor"], "claims": {"email": "mia@example.com"}
        }))).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let mia = r.json();
        assert_eq!(mia["username"], "mia");
        assert_eq!(mia["mfa"], false);
        assert!(!r.body.windows(7).any(|w| w == b"argon2i"), "no hash shown");
        for n in ["nia", "nib", "nic", "oscar"] {
            assert_eq!(admin(&gw, "POST", "/admin/users", Some(json!({"username": n, "password": PASSWORD}))).await.status, 201);
        }
        let page = admin(&gw, "GET", "/admin/users?prefix=ni&limit=2", None).await;
        assert_eq!(names(&page), ["nia", "nib"]);
        assert_eq!(page.json()["next"], "nib");
        let page = admin(&gw, "GET", "/admin/users?prefix=ni&limit=2&after=nib", None).await;
        assert_eq!(names(&page), ["nic"]);
        assert_eq!(page.json()["next"], serde_json::Value::Null);
        assert_eq!(names(&admin(&gw, "GET", "/admin/users", None).await).len(), 5);

        let one = admin(&gw, "GET", "/admin/users/MIA", None).await;
        assert_eq!(one.json()["claims"]["email"], "mia@example.com");
        // Roles changed by the admin apply to tokens issued afterwards.
        let (before, _) = pair(&login(&gw, "mia", PASSWORD).await);
        let r = admin(&gw, "PATCH", "/admin/users/mia", Some(json!({"roles": ["user"]}))).await;
        assert_eq!(r.json()["roles"], json!(["user"]));
        assert_eq!(with_token(&gw, &before).await.echo().headers["x-user-roles"], ["auditor"]);
        let (after, _) = pair(&login(&gw, "mia", PASSWORD).await);
        assert_eq!(with_token(&gw, &after).await.echo().headers["x-user-roles"], ["user"]);

        assert_eq!(admin(&gw, "DELETE", "/admin/users/mia", None).await.status, 204);
        admin(&gw, "GET", "/admin/users/mia", None).await.assert_refusal(404, "not_found");
        with_token(&gw, &after).await.assert_refusal(401, "invalid_token");
        login(&gw, "mia", PASSWORD).await.assert_refusal(401, "invalid_credentials");
        let audit = gw.settled_stdout().await;
        for action in ["user_created", "user_changed", "user_deleted"] {
            assert!(audit.contains(action), "{action} audited");
        }
        assert!(!audit.contains(PASSWORD) && !audit.contains(ADMIN));
    }
}

#[tokio::test]
async fn disabling_a_user_ends_its_sessions_and_keys() {
    let gw = start(Backend::Sqlite).await;
    let (access, refresh_token) = signed_up(&gw, "noah").await;
    let key = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "k"})),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(with_key(&gw, &key).await.status, 200);
    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/noah",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.json()["disabled"], true);
    with_token(&gw, &access)
        .await
        .assert_refusal(401, "invalid_token");
    with_key(&gw, &key)
        .await
        .assert_refusal(401, "invalid_token");
    assert_eq!(refresh(&gw, &refresh_token).await.status, 401);
    login(&gw, "noah", PASSWORD)
        .await
        .assert_refusal(401, "invalid_credentials");
    // Enabled again: the keys stay ended (disabling deleted them), old tokens stay dead.
    admin(
        &gw,
        "PATCH",
        "/admin/users/noah",
        Some(json!({"disabled": false})),
    )
    .await;
    with_key(&gw, &key)
        .await
        .assert_refusal(401, "invalid_token");
    with_token(&gw, &access)
        .await
        .assert_refusal(401, "invalid_token");
    pair(&login(&gw, "noah", PASSWORD).await);
}

#[tokio::test]
async fn a_password_set_by_the_admin_ends_the_users_sessions() {
    let gw = start(Backend::Sqlite).await;
    let (access, _) = signed_up(&gw, "olga").await;
    let new = "an admin chose this one 42";
    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/olga",
        Some(json!({"password": new})),
    )
    .await;
    assert_eq!(r.status, 200);
    with_token(&gw, &access)
        .await
        .assert_refusal(401, "invalid_token");
    login(&gw, "olga", PASSWORD)
        .await
        .assert_refusal(401, "invalid_credentials");
    pair(&login(&gw, "olga", new).await);
}

#[tokio::test]
async fn mfa_reset_removes_the_second_factor() {
    let gw = start(Backend::Sqlite).await;
    let (access, _) = signed_up(&gw, "pia").await;
    let secret = me(&gw, "POST", "/auth/mfa/setup", &access, None)
        .await
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let code = super::self_service::totp(&secret, now());
    assert_eq!(
        me(
            &gw,
            "POST",
            "/auth/mfa/enable",
            &access,
            Some(json!({"code": code}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        admin(&gw, "GET", "/admin/users/pia", None).await.json()["mfa"],
        true
    );
    login(&gw, "pia", PASSWORD)
        .await
        .assert_refusal(401, "mfa_required");
    assert_eq!(
        admin(&gw, "POST", "/admin/users/pia/mfa/reset", None)
            .await
            .status,
        204
    );
    pair(&login(&gw, "pia", PASSWORD).await);
}

#[tokio::test]
async fn refusals_and_bad_input() {
    let gw = start(Backend::Sqlite).await;
    assert_eq!(
        admin(
            &gw,
            "POST",
            "/admin/users",
            Some(json!({"username": "quinn", "password": PASSWORD}))
        )
        .await
        .status,
        201
    );
    let mut checks = Checks::new();
    for (method, path, body, status) in [
        (
            "POST",
            "/admin/users",
            json!({"username": "QUINN", "password": PASSWORD}),
            409,
        ),
        (
            "POST",
            "/admin/users",
            json!({"username": "rae", "password": "short"}),
            400,
        ),
        ("POST", "/admin/users", json!({"username": "rae"}), 400),
        (
            "POST",
            "/admin/users",
            json!({"username": "rae", "password": PASSWORD, "roles": ["ghost"]}),
            400,
        ),
        (
            "POST",
            "/admin/users",
            json!({"username": "rae", "password": PASSWORD, "claims": {"sub": "x"}}),
            400,
        ),
        (
            "POST",
            "/admin/users",
            json!({"username": "rae", "password": PASSWORD, "colour": "red"}),
            400,
        ),
        (
            "POST",
            "/admin/users",
            json!({"username": "r a e", "password": PASSWORD}),
            400,
        ),
        ("PATCH", "/admin/users/quinn", json!({"roles": "user"}), 400),
        (
            "PATCH",
            "/admin/users/quinn",
            json!({"disabled": "yes"}),
            400,
        ),
        (
            "PATCH",
            "/admin/users/nobody",
            json!({"disabled": true}),
            404,
        ),
        ("DELETE", "/admin/users/nobody", json!(null), 404),
        ("POST", "/admin/users/nobody/mfa/reset", json!(null), 404),
        ("GET", "/admin/users?limit=501", json!(null), 400),
        ("GET", "/admin/users?limit=zero", json!(null), 400),
        ("GET", "/admin/users?prefix=%00", json!(null), 400),
        ("GET", "/admin/users?after=a%20b", json!(null), 400),
        ("PUT", "/admin/users/quinn", json!(null), 405),
    ] {
        let body = (!body.is_null()).then_some(body);
        let r = admin(&gw, method, path, body.clone()).await;
        checks.eq((method, path, &body), r.status, status);
    }
    let r = gw
        .admin_request(
            "POST",
            "/admin/users",
            &[("Content-Type", "application/json")],
            "{",
        )
        .await;
    checks.eq("no admin token", r.status, 401);
    let r = gw
        .admin_request(
            "POST",
            "/admin/users",
            &[
                ("Authorization", &format!("Bearer {ADMIN}")),
                ("Content-Type", "application/json"),
            ],
            "{",
        )
        .await;
    checks.eq("broken JSON", r.status, 400);
    // A weak password says which rule it broke, as registration does.
    let r = admin(
        &gw,
        "POST",
        "/admin/users",
        Some(json!({"username": "sam", "password": "sam-is-my-long-password"})),
    )
    .await;
    checks.eq(
        "weak password's rule",
        r.json()["error_description"].clone(),
        json!("a password must not contain the username"),
    );
    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/quinn",
        Some(json!({"password": "short"})),
    )
    .await;
    checks.eq(
        "weak new password's rule",
        r.json()["error_description"].clone(),
        json!("a password needs at least 12 characters"),
    );
    // A name in the path may be percent-encoded.
    let r = admin(
        &gw,
        "POST",
        "/admin/users",
        Some(json!({"username": "tess@example.org", "password": PASSWORD})),
    )
    .await;
    checks.eq("a name with @", r.status, 201);
    let r = admin(&gw, "GET", "/admin/users/tess%40example.org", None).await;
    checks.eq("%40 in the path", r.status, 200);
}

/// A user's API keys never grant more than the user has now: roles an admin takes away
/// leave the keys too, and a token issued before the change cannot make a key with them.
#[tokio::test]
async fn a_key_never_grants_more_than_its_owner_has_now() {
    let toml =
        config(&Backend::Sqlite, "").route("audit", "/audit/**", r#"roles_any = ["auditor"]"#);
    let gw = start_toml(Backend::Sqlite, toml).await;
    let r = admin(
        &gw,
        "POST",
        "/admin/users",
        Some(json!({"username": "pat", "password": PASSWORD, "roles": ["admin"]})),
    )
    .await;
    assert_eq!(r.status, 201);
    let (access, _) = pair(&login(&gw, "pat", PASSWORD).await);
    let new_key = |roles: serde_json::Value| {
        let access = access.clone();
        let gw = &gw;
        async move {
            me(
                gw,
                "POST",
                "/auth/api-keys",
                &access,
                Some(json!({"name": "k", "roles": roles})),
            )
            .await
        }
    };
    let made = new_key(json!(["auditor"])).await;
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    let key = made.json()["key"].as_str().unwrap().to_string();
    let audit = |key: String| {
        let gw = &gw;
        async move { gw.get("/audit/x", &[("X-API-Key", &key)]).await }
    };
    assert_eq!(audit(key.clone()).await.status, 200);

    let r = admin(
        &gw,
        "PATCH",
        "/admin/users/pat",
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!(r.status, 200);
    audit(key.clone())
        .await
        .assert_refusal(403, "insufficient_scope");
    with_key(&gw, &key)
        .await
        .assert_refusal(403, "insufficient_scope");
    // The access token still says admin until it expires; it cannot mint an auditor key.
    new_key(json!(["auditor"]))
        .await
        .assert_refusal(403, "insufficient_scope");
    let plain = me(
        &gw,
        "POST",
        "/auth/api-keys",
        &access,
        Some(json!({"name": "p"})),
    )
    .await;
    assert_eq!(plain.json()["roles"], json!(["user"]));
    // Given back, the role is the key's again.
    admin(
        &gw,
        "PATCH",
        "/admin/users/pat",
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(audit(key).await.status, 200);
}

/// With users_db, lockouts count the lower-cased name: an unlock of any spelling clears it.
#[tokio::test]
async fn unlock_clears_a_lockout_whatever_the_spelling() {
    let gw = start(Backend::Sqlite).await;
    assert_eq!(register(&gw, "rick", PASSWORD).await.status, 201);
    for _ in 0..5 {
        login(&gw, "Rick", "wrong password")
            .await
            .assert_refusal(401, "invalid_credentials");
    }
    login(&gw, "rick", PASSWORD)
        .await
        .assert_refusal(429, "account_locked");
    let r = admin(
        &gw,
        "POST",
        "/admin/unlock",
        Some(json!({"username": "RICK"})),
    )
    .await;
    assert_eq!(r.status, 204);
    pair(&login(&gw, "rick", PASSWORD).await);
}

#[tokio::test]
async fn two_registrations_of_one_name_at_once_one_wins() {
    let gw = start(Backend::postgres().await).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let addr = gw.addr;
        let body = json!({"username": "race", "password": format!("{PASSWORD} {i}")}).to_string();
        tasks.push(tokio::spawn(async move {
            let raw = format!(
                "POST /auth/register HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            send_raw(addr, raw.as_bytes()).await.status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

/// `portcullis users import` and `users add` write the database the gateway then serves.
#[tokio::test]
async fn users_imported_and_added_by_the_cli_log_in_and_old_hashes_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&Backend::Sqlite, "")
        .build()
        .replace("{LISTEN}", "127.0.0.1:1")
        .replace("{ADMIN}", "127.0.0.1:2")
        .replace("{UPSTREAM}", "127.0.0.1:3");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &toml).unwrap();
    let users = format!(
        "[[users]]\nusername = \"Wendy\"\npassword_hash = \"{}\"\nroles = [\"user\"]\nsubject = \"u-wendy\"\nclaims = {{ team = \"ops\" }}\n\
         [[users]]\nusername = \"vera\"\npassword_hash = \"{}\"\nroles = [\"user\"]\ntotp_secret = \"{VERA_TOTP}\"\n",
        bcrypt::hash(PASSWORD, 4).unwrap(),
        bcrypt::hash(PASSWORD, 4).unwrap()
    );
    std::fs::write(dir.path().join("old-users.toml"), users).unwrap();
    let config_arg = path.to_string_lossy().to_string();
    let import = dir
        .path()
        .join("old-users.toml")
        .to_string_lossy()
        .to_string();
    let out = cli(&["users", "import", &import, "-c", &config_arg], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 user(s)"));
    let again = cli(&["users", "import", &import, "-c", &config_arg], None);
    assert!(String::from_utf8_lossy(&again.stdout).contains("(2 already there)"));
    let out = cli(
        &["users", "add", "Xena", "--roles", "user", "-c", &config_arg],
        Some("the sea is wide and deep\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let weak = cli(
        &["users", "add", "yuri", "-c", &config_arg],
        Some("short\n"),
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("weak password"));
    let ghost = cli(
        &["users", "add", "zed", "--roles", "ghost", "-c", &config_arg],
        Some("a long enough pass 1\n"),
    );
    assert!(String::from_utf8_lossy(&ghost.stderr).contains("unknown role `ghost`"));

    // The gateway on that database (the same file: the config's directory).
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "sqlite://users.db",
        &format!("sqlite://{}", dir.path().join("users.db").display()),
    );
    let gw = Gateway::start(
        &toml
            .replace("127.0.0.1:1", "{LISTEN}")
            .replace("127.0.0.1:2", "{ADMIN}")
            .replace("127.0.0.1:3", "{UPSTREAM}"),
        start_echo().await,
    )
    .await;
    let (access, _) = pair(&login(&gw, "wendy", PASSWORD).await);
    let echo = with_token(&gw, &access).await.echo();
    assert_eq!(echo.headers["x-user-id"], ["u-wendy"]);
    pair(&login(&gw, "xena", "the sea is wide and deep").await);
    let logs = gw.settled_stdout().await;
    assert!(
        logs.contains("password_rehashed"),
        "the bcrypt hash was replaced at login"
    );
    // Still the same password, now under argon2id.
    pair(&login(&gw, "wendy", PASSWORD).await);
    let db = format!("sqlite://{}", dir.path().join("users.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM portcullis_users WHERE username = 'wendy'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    // A user with MFA who goes on through `POST /auth/mfa` is rehashed too.
    let r = login(&gw, "vera", PASSWORD).await;
    r.assert_refusal(401, "mfa_required");
    let mfa_token = r.json()["mfa_token"].as_str().unwrap().to_string();
    let code = super::self_service::totp(VERA_TOTP, now());
    let done = gw
        .post_json(
            "/auth/mfa",
            &[],
            &json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    pair(&done);
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM portcullis_users WHERE username = 'vera'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

const VERA_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
