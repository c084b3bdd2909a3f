//! JWT verification with one HS256 key: a token is accepted only when that key signed it
//! (checked here with HMAC on its own) under the pinned algorithm, and never with `alg: none`.
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey};
use libfuzzer_sys::fuzz_target;
use portcullis::hot_path::{ClaimPaths, Issuer, Lifetimes, Verifier, VerifyKey};

/// The seeds (fuzz/seeds/jwt_verify) are signed with it, at NOW.
const SECRET: &[u8] = b"fuzz-secret-0123456789-0123456789-01";
const NOW: u64 = 1_800_000_000;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let issuer = Arc::new(Issuer {
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
        });
        let lifetimes = Lifetimes {
            leeway: 30,
            max_ttl: 86_400,
        };
        Verifier::new(&[issuer], &[], lifetimes)
    })
}

fuzz_target!(|token: &str| {
    let Ok(verified) = verifier().verify(token, NOW) else {
        return;
    };
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let header = signed.split('.').next().expect("a header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    assert_eq!(header["alg"], "HS256", "{token:?}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(signed.as_bytes());
    let expected = mac.finalize().into_bytes();
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("a base64url signature");
    assert_eq!(
        given.as_slice(),
        expected.as_slice(),
        "accepted a token the key did not sign"
    );
    assert!(!verified.subject.is_empty());
});
