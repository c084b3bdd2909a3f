//! The queries against a real SQLite file (PostgreSQL is exercised by the integration tests,
//! which make a database of their own).

use super::keys::{self, KeyRow};
use super::users::{self, UserPatch, UserRow};
use super::*;

fn user(name: &str) -> UserRow {
    UserRow {
        username: name.into(),
        subject: format!("u-{name}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        roles: vec!["user".into()],
        claims: serde_json::Map::new(),
        totp_secret: None,
        totp_pending: None,
        backup_codes: vec![],
        disabled: false,
        created_at: 1000,
        updated_at: 1000,
    }
}

fn key(id: &str, owner: &str) -> KeyRow {
    KeyRow {
        id: id.into(),
        username: owner.into(),
        name: "ci".into(),
        prefix: "pcs_abcd".into(),
        key_sha256: format!("{:064x}", id.len()),
        roles: vec!["user".into()],
        allowed_ips: vec!["10.0.0.0/8".into()],
        expires_at: Some(5000),
        created_at: 1000,
        last_used_at: None,
    }
}

#[tokio::test]
async fn users_keys_and_changes_round_trip_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let db = Db::new(&url);
    db.check_and_load(&mut Vec::new()).await.unwrap();
    // A second start migrates nothing and fails nothing.
    db.check_and_load(&mut Vec::new()).await.unwrap();
    db.run(|pool, kind| async move {
        let before = changes::last(&pool).await?;
        users::insert(&pool, kind, &user("alice")).await?;
        assert_eq!(
            users::insert(&pool, kind, &user("alice")).await,
            Err(DbError::Taken)
        );
        users::insert(&pool, kind, &user("al_x")).await?;
        users::insert(&pool, kind, &user("bob")).await?;
        assert_eq!(users::get(&pool, "alice").await?, Some(user("alice")));
        assert_eq!(
            users::by_subject(&pool, "u-bob").await?.unwrap().username,
            "bob"
        );
        assert_eq!(users::get(&pool, "carol").await?, None);

        let patch = UserPatch {
            roles: Some(vec!["admin".into()]),
            disabled: Some(true),
            totp_pending: Some(Some("v1:sealed".into())),
            ..UserPatch::default()
        };
        let changed = users::update(&pool, kind, "alice", &patch, 2000)
            .await?
            .unwrap();
        assert_eq!(changed.roles, ["admin"]);
        assert!(changed.disabled);
        assert_eq!(changed.totp_pending.as_deref(), Some("v1:sealed"));
        assert_eq!(changed.updated_at, 2000);
        assert_eq!(
            users::update(&pool, kind, "nobody", &patch, 2000).await?,
            None
        );

        // The prefix's `_` is a literal, not LIKE's wildcard.
        let names = |rows: Vec<UserRow>| rows.into_iter().map(|u| u.username).collect::<Vec<_>>();
        assert_eq!(
            names(users::list(&pool, "al", "", 10).await?),
            ["al_x", "alice"]
        );
        assert_eq!(names(users::list(&pool, "al_", "", 10).await?), ["al_x"]);
        assert_eq!(names(users::list(&pool, "", "al_x", 1).await?), ["alice"]);

        keys::insert(&pool, kind, &key("k1", "bob"), "u-bob", 25)
            .await?
            .unwrap();
        // Alice is disabled: no key is stored for her; one made before stays, not live.
        let refused = keys::insert(&pool, kind, &key("k22", "alice"), "u-alice", 25).await?;
        assert_eq!(refused, Err(keys::NotStored::Owner));
        let toggle = |disabled| UserPatch {
            disabled: Some(disabled),
            ..UserPatch::default()
        };
        users::update(&pool, kind, "alice", &toggle(false), 2000).await?;
        keys::insert(&pool, kind, &key("k22", "alice"), "u-alice", 25)
            .await?
            .unwrap();
        users::update(&pool, kind, "alice", &toggle(true), 2000).await?;
        assert_eq!(keys::of_user(&pool, "bob").await?, vec![key("k1", "bob")]);
        // Alice is disabled: her key is not live.
        let mut live = Vec::new();
        keys::each_live(&pool, &mut live).await?;
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].subject, "u-bob");
        assert!(keys::live(&pool, "k22").await?.is_none());
        assert!(
            !keys::delete(&pool, kind, "alice", "k1", 3000).await?,
            "not hers"
        );
        keys::touch(&pool, &[("k1".into(), 4000)]).await?;
        assert_eq!(
            keys::of_user(&pool, "bob").await?[0].last_used_at,
            Some(4000)
        );
        assert!(keys::delete(&pool, kind, "bob", "k1", 3000).await?);
        assert!(users::delete(&pool, kind, "alice", 3000).await?);
        assert!(
            keys::of_user(&pool, "alice").await?.is_empty(),
            "her keys went with her"
        );

        let seen = changes::since(&pool, before, 0).await?;
        let names: Vec<_> = seen.iter().map(|c| (c.kind, c.name.as_str())).collect();
        use changes::ChangeKind::{Key, User};
        assert_eq!(
            names,
            [
                (User, "alice"),
                (User, "al_x"),
                (User, "bob"),
                (User, "alice"),
                (Key, "k1"),
                (User, "alice"),
                (Key, "k22"),
                (User, "alice"),
                (Key, "k1"),
                (User, "alice")
            ]
        );
        let last = changes::last(&pool).await?;
        assert!(changes::since(&pool, last, 100_000).await?.is_empty());
        assert_eq!(
            changes::since(&pool, last, 3005).await?.len(),
            2,
            "the lookback"
        );
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let db = Db::new("postgres://nobody@127.0.0.1:1/none");
    assert!(matches!(
        db.check_and_load(&mut Vec::new()).await,
        Err(DbError::Unavailable(_))
    ));
    let r = db
        .run(|pool, _| async move { users::get(&pool, "a").await })
        .await;
    assert!(matches!(r, Err(DbError::Unavailable(_))), "{r:?}");
}

/// A change of a kind this version does not know (a newer one wrote it) is passed over:
/// the follower reads on rather than taking the database for down.
#[tokio::test]
async fn a_change_of_an_unknown_kind_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let db = Db::new(&url);
    db.check_and_load(&mut Vec::new()).await.unwrap();
    db.run(|pool, kind| async move {
        sqlx::query("INSERT INTO portcullis_changes (kind, name, at) VALUES ('group', 'g', 1)")
            .execute(&pool)
            .await?;
        users::insert(&pool, kind, &user("alice")).await?;
        let seen = changes::since(&pool, 0, 0).await?;
        let names: Vec<_> = seen.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["alice"]);
        Ok(())
    })
    .await
    .unwrap();
}

/// Unknown names are checked against a decoy of the users' own algorithm and cost: users
/// imported with bcrypt keep it until they log in, and an unknown name must not answer
/// faster than theirs.
#[tokio::test]
async fn unknown_names_get_a_decoy_of_the_users_cost() {
    use crate::accounts::directory::Directory;
    use crate::accounts::password::PasswordHash;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let directory = Directory::open(&url, "a-db-key-of-at-least-32-bytes-long").unwrap();
    let bcrypt = bcrypt::hash_with_result("pw", 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    let mut imported = user("bea");
    imported.password_hash = bcrypt.clone();
    directory.insert(imported).await.unwrap();
    directory.refresh_decoys().await.unwrap();
    let class = PasswordHash::parse(&bcrypt).unwrap().cost_class();
    for name in ["nobody", "zed", "x"] {
        assert_eq!(directory.decoy(name).cost_class(), class, "{name}");
    }
}

/// A key is stored only for the owner it was asked for, enabled, under the cap: one asked for
/// a user deleted since (and a new user of the name) or disabled is not.
#[tokio::test]
async fn a_key_is_stored_only_for_its_live_owner_under_the_cap() {
    use super::keys::NotStored;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let db = Db::new(&url);
    db.check_and_load(&mut Vec::new()).await.unwrap();
    db.run(|pool, kind| async move {
        users::insert(&pool, kind, &user("vlad")).await?;
        users::delete(&pool, kind, "vlad", 1001).await?;
        let mut later = user("vlad");
        later.subject = "u-vlad-2".into();
        users::insert(&pool, kind, &later).await?;
        let stale = keys::insert(&pool, kind, &key("k1", "vlad"), "u-vlad", 25).await?;
        assert_eq!(stale, Err(NotStored::Owner), "the deleted owner's key");
        let disabled = UserPatch {
            disabled: Some(true),
            ..UserPatch::default()
        };
        users::update(&pool, kind, "vlad", &disabled, 1002).await?;
        let off = keys::insert(&pool, kind, &key("k2", "vlad"), "u-vlad-2", 25).await?;
        assert_eq!(off, Err(NotStored::Owner), "a disabled owner's key");
        let enabled = UserPatch {
            disabled: Some(false),
            ..UserPatch::default()
        };
        users::update(&pool, kind, "vlad", &enabled, 1003).await?;
        keys::insert(&pool, kind, &key("k3", "vlad"), "u-vlad-2", 2)
            .await?
            .unwrap();
        keys::insert(&pool, kind, &key("k44", "vlad"), "u-vlad-2", 2)
            .await?
            .unwrap();
        let full = keys::insert(&pool, kind, &key("k555", "vlad"), "u-vlad-2", 2).await?;
        assert_eq!(full, Err(NotStored::Full));
        assert_eq!(keys::of_user(&pool, "vlad").await?.len(), 2);
        Ok::<(), DbError>(())
    })
    .await
    .unwrap();
}
