//! The memory backend's tests: the store's contract on one process.

use super::*;

fn store() -> (MemoryStore, Clock) {
    let clock = Clock::manual(1_000_000);
    (MemoryStore::new(clock.clone()), clock)
}

fn token<'a>(jti: &'a str, sid: &'a str, sub: &'a str, iat: u64) -> Presented<'a> {
    Presented {
        jti: Some(jti),
        sid: Some(sid),
        subject: sub,
        iat: Some(iat),
        api_key: None,
        user_key: false,
    }
}

#[tokio::test]
async fn revocations_by_jti_session_subject_and_api_key() {
    let (s, clock) = store();
    let now = clock.now();
    assert!(!s.is_revoked(&token("j1", "s1", "alice", now), clock.now()));
    s.revoke(Revocation::Jti {
        jti: "j1".into(),
        until: now + 60,
    })
    .await
    .unwrap();
    assert!(s.is_revoked(&token("j1", "s9", "bob", now), clock.now()));
    assert!(!s.is_revoked(&token("j2", "s1", "alice", now), clock.now()));

    s.revoke(Revocation::Session {
        sid: "s1".into(),
        until: now + 60,
    })
    .await
    .unwrap();
    assert!(s.is_revoked(&token("j3", "s1", "alice", now), clock.now()));

    // Revoke-all covers tokens issued in that second or before, not after.
    s.revoke(Revocation::Subject {
        subject: "carol".into(),
        at: now,
        until: now + 60,
    })
    .await
    .unwrap();
    assert!(s.is_revoked(&token("j4", "s4", "carol", now), clock.now()));
    assert!(s.is_revoked(&token("j4", "s4", "carol", now - 100), clock.now()));
    assert!(!s.is_revoked(&token("j5", "s5", "carol", now + 1), clock.now()));

    s.revoke(Revocation::ApiKey {
        id: "k1".into(),
        until: None,
    })
    .await
    .unwrap();
    let key = Presented {
        subject: "svc",
        api_key: Some("k1"),
        ..Presented::default()
    };
    assert!(s.is_revoked(&key, clock.now()));
    // A deleted user key's revocation lasts until every instance dropped the key.
    s.revoke(Revocation::ApiKey {
        id: "k2".into(),
        until: Some(now + 30),
    })
    .await
    .unwrap();
    let deleted = Presented {
        api_key: Some("k2"),
        ..key
    };
    assert!(s.is_revoked(&deleted, clock.now()));

    // Expired revocations are forgotten; the configured key's is not.
    clock.advance(61);
    s.prune();
    assert!(!s.is_revoked(&token("j1", "s1", "carol", now), clock.now()));
    assert!(!s.is_revoked(&deleted, clock.now()));
    assert!(s.is_revoked(&key, clock.now()));
}

/// A revoke-all of a subject's tokens spares the keys its user made; its owner's revocation
/// (disabled, deleted, revoked by an operator) ends them too, made before it, not after.
#[tokio::test]
async fn a_users_keys_end_with_their_owner_not_with_its_tokens() {
    let (s, clock) = store();
    let now = clock.now();
    let user_key = |made: u64| Presented {
        subject: "dana",
        api_key: Some("key_1"),
        iat: Some(made),
        user_key: true,
        ..Presented::default()
    };
    s.revoke(Revocation::Subject {
        subject: "dana".into(),
        at: now,
        until: now + 60,
    })
    .await
    .unwrap();
    assert!(
        !s.is_revoked(&user_key(now - 10), now),
        "a new password keeps the keys"
    );
    assert!(s.is_revoked(&token("j", "s", "dana", now), now));
    s.revoke(Revocation::Owner {
        subject: "dana".into(),
        at: now,
        until: now + 60,
    })
    .await
    .unwrap();
    assert!(s.is_revoked(&user_key(now - 10), now));
    assert!(s.is_revoked(&user_key(now), now));
    assert!(
        !s.is_revoked(&user_key(now + 1), now),
        "a key made afterwards"
    );
}

fn info(sid: &str, subject: &str, at: u64) -> SessionInfo {
    SessionInfo {
        sid: sid.into(),
        subject: subject.into(),
        created_at: at,
        last_used_at: at,
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("curl/8".into()),
    }
}

#[tokio::test]
async fn refresh_rotation_and_reuse() {
    let (s, clock) = store();
    let now = clock.now();
    let until = now + 100;
    s.start_session("r1", until, &info("s1", "alice", now))
        .await
        .unwrap();
    assert_eq!(
        s.rotate_refresh("s1", "r1", "r2", until, now + 5, 0).await,
        Ok(Rotation::Rotated)
    );
    assert_eq!(
        s.rotate_refresh("s1", "r1", "r3", until, now + 6, 0).await,
        Ok(Rotation::Reused)
    );
    assert_eq!(
        s.rotate_refresh("s2", "r1", "r3", until, now + 6, 0).await,
        Ok(Rotation::Unknown)
    );
    clock.advance(101);
    assert_eq!(
        s.rotate_refresh("s1", "r2", "r3", until, now + 101, 0)
            .await,
        Ok(Rotation::Unknown)
    );
}

#[tokio::test]
async fn within_the_grace_a_spent_token_gets_its_successor() {
    let (s, clock) = store();
    let now = clock.now();
    let until = now + 100;
    s.start_session("r1", until, &info("s1", "alice", now))
        .await
        .unwrap();
    let rotate = |presented: &'static str, next: &'static str, at: u64| {
        let s = &s;
        async move { s.rotate_refresh("s1", presented, next, until, at, 10).await }
    };
    assert_eq!(rotate("r1", "r2", now).await, Ok(Rotation::Rotated));
    assert_eq!(
        rotate("r1", "r3", now + 10).await,
        Ok(Rotation::Successor("r2".into()))
    );
    assert_eq!(rotate("r1", "r3", now + 11).await, Ok(Rotation::Reused));
    // Once the successor is spent in turn, the first token is plain reuse.
    assert_eq!(rotate("r2", "r3", now + 12).await, Ok(Rotation::Rotated));
    assert_eq!(rotate("r1", "r4", now + 12).await, Ok(Rotation::Reused));
    assert_eq!(
        rotate("r2", "r4", now + 13).await,
        Ok(Rotation::Successor("r3".into()))
    );
}

#[tokio::test]
async fn a_subjects_live_sessions_with_their_last_use() {
    let (s, clock) = store();
    let now = clock.now();
    for (sid, subject) in [("s1", "alice"), ("s2", "bob"), ("s3", "alice")] {
        s.start_session("r", now + 100, &info(sid, subject, now))
            .await
            .unwrap();
    }
    s.start_session("r", now + 10, &info("s4", "alice", now))
        .await
        .unwrap();
    s.rotate_refresh("s1", "r", "r2", now + 100, now + 7, 0)
        .await
        .unwrap();
    s.end_session("s3").await.unwrap();
    let live = s.sessions("alice", now + 20).await.unwrap();
    let mut expected = info("s1", "alice", now);
    expected.last_used_at = now + 7;
    assert_eq!(live, vec![expected], "s3 ended, s4 expired, s2 is bob's");
}

/// One failed attempt: begun, evaluated, failed.
async fn fail(s: &MemoryStore, user: &str) -> Option<u64> {
    assert_eq!(s.begin_attempt(user, 3, 60).await, Ok(Attempt::Allowed));
    s.attempt_failed(user, 3, 60).await.unwrap()
}

#[tokio::test]
async fn lockout_after_max_failures_until_it_passes() {
    let (s, clock) = store();
    for _ in 0..2 {
        assert_eq!(fail(&s, "alice").await, None);
    }
    let until = fail(&s, "alice").await;
    assert_eq!(until, Some(clock.now() + 60));
    assert_eq!(
        s.begin_attempt("alice", 3, 60).await,
        Ok(Attempt::Locked(until.unwrap()))
    );
    assert_eq!(s.begin_attempt("bob", 3, 60).await, Ok(Attempt::Allowed));
    clock.advance(60);
    // The lock has passed and the count started again.
    assert_eq!(fail(&s, "alice").await, None);
    s.clear_failures("alice").await.unwrap();
    assert_eq!(fail(&s, "alice").await, None);
    assert_eq!(fail(&s, "alice").await, None);
    // Failures far apart do not add up.
    clock.advance(61);
    assert_eq!(fail(&s, "alice").await, None);
}

#[tokio::test]
async fn attempts_are_counted_before_they_are_evaluated() {
    let (s, _) = store();
    // Ten at once: three are let through, the rest refused unevaluated.
    let mut allowed = 0;
    for _ in 0..10 {
        if s.begin_attempt("carol", 3, 60).await.unwrap() == Attempt::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
    // One given back (it asked for a second factor) makes room for one more.
    s.return_attempt("carol").await.unwrap();
    assert_eq!(s.begin_attempt("carol", 3, 60).await, Ok(Attempt::Allowed));
    assert!(matches!(
        s.begin_attempt("carol", 3, 60).await,
        Ok(Attempt::Locked(_))
    ));
    assert!(s.attempt_failed("carol", 3, 60).await.unwrap().is_some());
}

#[tokio::test]
async fn single_use_markers_and_mfa_tokens() {
    let (s, clock) = store();
    let until = clock.now() + 30;
    assert_eq!(s.spend("totp:alice:1", until).await, Ok(true));
    assert_eq!(s.spend("totp:alice:1", until).await, Ok(false));

    s.put_mfa("m1", "alice", until).await.unwrap();
    for _ in 0..4 {
        assert_eq!(s.mfa_attempt("m1", 5).await, Ok(Some("alice".into())));
        s.mfa_attempt_failed("m1", 5).await.unwrap();
    }
    assert_eq!(s.mfa_attempt("m1", 5).await, Ok(Some("alice".into())));
    s.mfa_attempt_failed("m1", 5).await.unwrap();
    assert_eq!(
        s.mfa_attempt("m1", 5).await,
        Ok(None),
        "dead after 5 wrong codes"
    );

    // Twenty codes at once against one token: five are checked.
    s.put_mfa("m4", "alice", until).await.unwrap();
    let mut checked = 0;
    for _ in 0..20 {
        if s.mfa_attempt("m4", 5).await.unwrap().is_some() {
            checked += 1;
        }
    }
    assert_eq!(checked, 5);

    s.put_mfa("m2", "alice", until).await.unwrap();
    assert_eq!(s.take_mfa("m2").await, Ok(true));
    assert_eq!(s.take_mfa("m2").await, Ok(false));
    s.put_mfa("m3", "alice", until).await.unwrap();
    clock.advance(31);
    assert_eq!(s.mfa_attempt("m3", 5).await, Ok(None));
    assert_eq!(s.take_mfa("m3").await, Ok(false));
}
