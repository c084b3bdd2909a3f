//! The per-request work of the proxy path, without the network: JWT verification (HS256 and
//! ES256), API-key lookup among 10,000 keys, rate-limit checks, route matching among 50 routes,
//! path normalisation, and the upstream header rewrite.
//!
//!     cargo bench --bench hot_path

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use pingora::http::RequestHeader;
use portcullis::hot_path::{
    apikey, find_route, normalize, parse_rate, rewrite_upstream_request, ApiKey, ApiKeys,
    AuthMethod, AuthMode, ClaimPaths, ClientHeaders, Forwarding, Identity, IdentitySettings,
    Issuer, KeyInput, KeyPart, Lifetimes, MemoryStore, PathPattern, Policy, PolicySpec, Presented,
    Quota, Revocation, RoleGraph, Route, Store, Verifier, VerifyKey, Wired,
};

const SECRET: &[u8] = b"bench-secret-0123456789-0123456789-0123";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(iss: &str) -> serde_json::Value {
    let n = now();
    serde_json::json!({"iss": iss, "sub": "user-42", "aud": "api", "typ": "access",
        "iat": n, "nbf": n, "exp": n + 3600, "roles": ["user"], "email": "u@example.com"})
}

fn verifier() -> Verifier {
    let ec_pub = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ec256_public.pem"
    ))
    .unwrap();
    let issuers = vec![
        Arc::new(Issuer {
            iss: "own".into(),
            audience: Some("api".into()),
            keys: vec![VerifyKey {
                kid: None,
                algorithms: vec![Algorithm::HS256],
                key: DecodingKey::from_secret(SECRET),
            }],
            jwks: None,
            claim_paths: ClaimPaths::default(),
            own: true,
        }),
        Arc::new(Issuer {
            iss: "ec".into(),
            audience: Some("api".into()),
            keys: vec![VerifyKey {
                kid: None,
                algorithms: vec![Algorithm::ES256],
                key: DecodingKey::from_ec_pem(&ec_pub).unwrap(),
            }],
            jwks: None,
            claim_paths: ClaimPaths::default(),
            own: false,
        }),
    ];
    let lifetimes = Lifetimes {
        leeway: 30,
        max_ttl: 30 * 86400,
    };
    Verifier::new(&issuers, &[], lifetimes)
}

fn routes() -> Vec<Arc<Route>> {
    (0..50)
        .map(|i| {
            let path = if i == 49 {
                "/api/v1/users/{id}/orders/**".to_string()
            } else {
                format!("/svc{i}/items/*/detail")
            };
            Arc::new(Route {
                name: path.clone().into(),
                auth: AuthMode::Required,
                roles_any: vec!["user".into()],
                ..Route::bare(PathPattern::parse(&path).unwrap(), vec![])
            })
        })
        .collect()
}

/// Runs a future that is ready at once (the local limiter never waits).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the local limiter does not wait"),
    }
}

fn api_keys(n: usize) -> (ApiKeys, Vec<String>) {
    let presented: Vec<String> = (0..n).map(|_| apikey::generate()).collect();
    let keys = presented
        .iter()
        .enumerate()
        .map(|(i, k)| ApiKey {
            id: format!("client-{i}"),
            digest: hex::decode(apikey::sha256_hex(k))
                .unwrap()
                .try_into()
                .unwrap(),
            subject: format!("client-{i}"),
            roles: vec!["service".into()],
            permissions: vec![],
            allowed_ips: vec![],
            expires_at: None,
            issued_at: None,
            rate_limit: None,
            grants: Default::default(),
            claims: Default::default(),
        })
        .collect();
    (ApiKeys::new(keys), presented)
}

/// A policy far above the load, so every check is an allowed one (the common case).
fn policy(key: Vec<KeyPart>) -> Policy {
    let quota = Quota::new(parse_rate("1000000/s").unwrap(), NonZeroU32::new(1_000_000));
    Policy::new(PolicySpec::new("bench", key, quota, false), None, None)
}

fn bench_api_keys_and_limits(c: &mut Criterion, identity: &Identity) {
    let (keys, presented) = api_keys(10_000);
    let client: IpAddr = "192.0.2.7".parse().unwrap();
    let mut i = 0;
    c.bench_function("verify an API key among 10,000", |b| {
        b.iter(|| {
            i = (i + 1) % presented.len();
            keys.verify(black_box(&presented[i]), Some(client), 0)
                .unwrap()
        })
    });

    let headers = http::HeaderMap::new();
    let by_ip = policy(vec![KeyPart::Ip]);
    let by_user = policy(vec![KeyPart::Subject, KeyPart::Route]);
    // 1000 distinct callers, as in the load rig, so the map is not a single hot entry.
    let ips: Vec<IpAddr> = (0..1000u32)
        .map(|n| IpAddr::from((0x0a00_0000 + n).to_be_bytes()))
        .collect();
    let mut n = 0;
    c.bench_function("rate-limit check, key = ip", |b| {
        b.iter(|| {
            n = (n + 1) % ips.len();
            let input = KeyInput {
                client_ip: Some(ips[n]),
                route: "orders",
                headers: &headers,
                caller: None,
            };
            ready(by_ip.check(black_box(&input)))
        })
    });
    c.bench_function("rate-limit check, key = [subject, route]", |b| {
        b.iter(|| {
            let input = KeyInput {
                client_ip: Some(client),
                route: "orders",
                headers: &headers,
                caller: Some(identity.caller()),
            };
            ready(by_user.check(black_box(&input)))
        })
    });
}

/// SPEC step 8's revocation check, with nothing revoked and with 100,000 revoked jtis.
fn bench_revocations(c: &mut Criterion) {
    let store = MemoryStore::new(portcullis::clock::Clock::System);
    let token = Presented {
        jti: Some("0b7e3f0e-5d6c-4d1a-9a51-3f1e2d4c5b6a"),
        sid: Some("5d0c2a7e-1b3f-4e6d-8a9c-7b5e4d3c2b1a"),
        subject: "user-42",
        iat: Some(now()),
        api_key: None,
        user_key: false,
    };
    let at = now();
    c.bench_function("revocation check, nothing revoked", |b| {
        b.iter(|| store.is_revoked(black_box(&token), at))
    });
    for i in 0..100_000u32 {
        ready(store.revoke(Revocation::Jti {
            jti: format!("revoked-{i}"),
            until: now() + 3600,
        }))
        .unwrap();
    }
    c.bench_function("revocation check, 100k jtis revoked", |b| {
        b.iter(|| store.is_revoked(black_box(&token), at))
    });
}

fn bench(c: &mut Criterion) {
    let v = verifier();
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("own"),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let ec_priv = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ec256_private.pem"
    ))
    .unwrap();
    let es = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims("ec"),
        &EncodingKey::from_ec_pem(&ec_priv).unwrap(),
    )
    .unwrap();
    let t = now();
    c.bench_function("verify HS256", |b| {
        b.iter(|| v.verify(black_box(&hs), t).unwrap())
    });
    c.bench_function("verify ES256", |b| {
        b.iter(|| v.verify(black_box(&es), t).unwrap())
    });

    let routes = routes();
    let get = http::Method::GET;
    c.bench_function("match route 50 of 50", |b| {
        b.iter(|| find_route(&routes, &get, black_box("/api/v1/users/42/orders/7")).unwrap())
    });
    c.bench_function("normalise path", |b| {
        b.iter(|| {
            normalize(
                black_box("/api/v1//users/%34%32/./orders/../orders/7"),
                false,
            )
            .unwrap()
        })
    });

    let mut role_defs = BTreeMap::new();
    role_defs.insert(
        "user".to_string(),
        (vec![], vec!["orders:read".to_string()]),
    );
    let graph = RoleGraph::build(&role_defs).unwrap();
    let identity = Identity {
        subject: "user-42".into(),
        method: AuthMethod::Jwt,
        grants: Arc::new(graph.grants(&["user".to_string()], &[])),
        claims: Arc::new(claims("own").as_object().unwrap().clone()),
        api_key: None,
        bound: false,
    };
    bench_api_keys_and_limits(c, &identity);
    bench_revocations(c);

    let ids = IdentitySettings {
        subject: Wired::of(http::HeaderName::from_static("x-user-id")),
        roles: Wired::of(http::HeaderName::from_static("x-user-roles")),
        permissions: Wired::of(http::HeaderName::from_static("x-user-permissions")),
        method: Wired::of(http::HeaderName::from_static("x-auth-method")),
        claims: vec![(
            vec!["email".into()],
            http::HeaderName::from_static("x-user-email"),
        )],
        forward_credentials: false,
        internal_token: None,
        issuer: None,
        all: vec![],
        client_headers: ClientHeaders::new(&[]),
    };
    let mut base = RequestHeader::build("GET", b"/api/v1/users/42/orders/7", None).unwrap();
    base.insert_header("host", "api.example.com").unwrap();
    base.insert_header("authorization", format!("Bearer {hs}"))
        .unwrap();
    base.insert_header("user-agent", "bench").unwrap();
    let request_id = http::HeaderValue::from_static("3f0c2b1e-0000-4000-8000-000000000000");
    let fwd = Forwarding {
        session_cookie: None,
        signer: None,
        internal_token: None,
        now: now(),
        request_id: Some(&request_id),
        peer: Some("127.0.0.1".parse().unwrap()),
        peer_trusted: false,
        tls: false,
        identity: Some(&identity),
    };
    c.bench_function("rewrite upstream headers", |b| {
        b.iter_batched(
            || base.clone(),
            |mut req| rewrite_upstream_request(&mut req, &ids, &fwd).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
