use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;

fn keys(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The P-256 test key's public JWK (the uncompressed point ends its SPKI).
fn ec_jwk() -> Map<String, Value> {
    let pem = keys("ec256_public.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let point = &der[der.len() - 64..];
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[..32]),
        URL_SAFE_NO_PAD.encode(&point[32..]),
    );
    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
        .as_object()
        .unwrap()
        .clone()
}

/// A proof signed by the P-256 test key, its header written as given (members a library's
/// JWK type would drop included).
fn proof_with(jwk: &Map<String, Value>, typ: &str, claims: Value) -> String {
    let key = EncodingKey::from_ec_pem(keys("ec256_private.pem").as_bytes()).unwrap();
    signed(Algorithm::ES256, "ES256", &key, jwk, typ, claims)
}

fn signed(
    alg: Algorithm,
    name: &str,
    key: &EncodingKey,
    jwk: &Map<String, Value>,
    typ: &str,
    claims: Value,
) -> String {
    let header = json!({"typ": typ, "alg": name, "jwk": jwk});
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", enc(&header), enc(&claims));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{sig}")
}

fn claims() -> Value {
    json!({"jti": "j1", "htm": "GET", "htu": "https://api.example/orders?x=1", "iat": NOW,
           "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(b"the-token"))})
}

fn settings(require_nonce: bool) -> DpopSettings {
    DpopSettings {
        algorithms: vec![Algorithm::ES256, Algorithm::EdDSA],
        max_age: 60,
        require_nonce,
    }
}

fn expected() -> Expected<'static> {
    Expected {
        method: "GET",
        htu: "https://api.example/orders",
        access_token: Some("the-token"),
        now: NOW,
        leeway: 5,
    }
}

fn nonces() -> Nonces {
    Nonces::new([7; 32], 60)
}

#[test]
fn a_good_proof_gives_its_keys_thumbprint() {
    let jwk = ec_jwk();
    let p = verify(
        &proof_with(&jwk, "dpop+jwt", claims()),
        &settings(false),
        &nonces(),
        &expected(),
    );
    let p = p.unwrap();
    // The thumbprint agrees with jsonwebtoken's own RFC 7638 implementation.
    let theirs: jsonwebtoken::jwk::Jwk = serde_json::from_value(Value::Object(jwk)).unwrap();
    let theirs = theirs
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap();
    assert_eq!(p.jkt, theirs);
    assert_eq!((p.jti.as_str(), p.usable_until), ("j1", NOW + 66));
}

#[test]
fn every_mismatch_is_refused() {
    let jwk = ec_jwk();
    let refused = |typ: &str, c: Value, e: Expected<'_>| {
        let p = proof_with(&jwk, typ, c);
        verify(&p, &settings(false), &nonces(), &e).unwrap_err()
    };
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        c
    };
    let cases = [
        ("jwt", claims(), "typ must be dpop+jwt"),
        (
            "dpop+jwt",
            with("htm", json!("POST")),
            "htm does not match the request",
        ),
        (
            "dpop+jwt",
            with("htu", json!("https://api.example/other")),
            "htu does not match",
        ),
        (
            "dpop+jwt",
            with("htu", json!("http://api.example/orders")),
            "htu does not match",
        ),
        ("dpop+jwt", with("iat", json!(NOW - 70)), "iat outside"),
        ("dpop+jwt", with("iat", json!(NOW + 30)), "iat outside"),
        ("dpop+jwt", with("ath", json!("x")), "ath does not match"),
        ("dpop+jwt", with("jti", json!("")), "missing jti"),
    ];
    for (typ, c, why) in cases {
        match refused(typ, c, expected()) {
            ProofError::Invalid(d) => assert!(d.contains(why), "{d} vs {why}"),
            other => panic!("{other:?}"),
        }
    }
    // The URL is compared canonically: case, default port, query ignored.
    let same = with("htu", json!("HTTPS://API.example:443/orders#f"));
    let p = proof_with(&jwk, "dpop+jwt", same);
    assert!(verify(&p, &settings(false), &nonces(), &expected()).is_ok());
}

#[test]
fn keys_that_do_not_fit_are_refused() {
    let mut private = ec_jwk();
    private.insert("d".into(), json!("AAAA"));
    let p = proof_with(&private, "dpop+jwt", claims());
    let e = verify(&p, &settings(false), &nonces(), &expected()).unwrap_err();
    assert_eq!(e, ProofError::Invalid("the jwk holds private key members"));
    // Signed by another key than the one it names.
    let mut other = ec_jwk();
    other.insert("x".into(), json!(URL_SAFE_NO_PAD.encode([1u8; 32])));
    let p = proof_with(&other, "dpop+jwt", claims());
    assert!(verify(&p, &settings(false), &nonces(), &expected()).is_err());
    // An algorithm outside `algorithms`.
    let only_ed = DpopSettings {
        algorithms: vec![Algorithm::EdDSA],
        ..settings(false)
    };
    let p = proof_with(&ec_jwk(), "dpop+jwt", claims());
    let e = verify(&p, &only_ed, &nonces(), &expected()).unwrap_err();
    assert_eq!(e, ProofError::Invalid("algorithm not accepted"));
    // A symmetric "proof" names no public key at all.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("dpop+jwt".into());
    let hs =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&[7u8; 32])).unwrap();
    assert!(verify(&hs, &settings(false), &nonces(), &expected()).is_err());
}

#[test]
fn nonces_are_asked_for_and_age_out() {
    let jwk = ec_jwk();
    let n = nonces();
    let p = proof_with(&jwk, "dpop+jwt", claims());
    assert_eq!(
        verify(&p, &settings(true), &n, &expected()).unwrap_err(),
        ProofError::UseNonce
    );
    let mut c = claims();
    c["nonce"] = json!(n.current(NOW - 60));
    let p = proof_with(&jwk, "dpop+jwt", c.clone());
    assert!(verify(&p, &settings(true), &n, &expected()).is_ok());
    c["nonce"] = json!(n.current(NOW - 120));
    let p = proof_with(&jwk, "dpop+jwt", c);
    assert_eq!(
        verify(&p, &settings(true), &n, &expected()).unwrap_err(),
        ProofError::UseNonce
    );
    assert_ne!(Nonces::new([8; 32], 60).current(NOW), n.current(NOW));
}

#[test]
fn an_ed25519_proof_verifies_and_its_thumbprint_agrees() {
    // The Ed25519 test key's public JWK (the key ends its SPKI).
    let pem = keys("ed25519_public.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let x = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x})
        .as_object()
        .unwrap()
        .clone();
    let key = EncodingKey::from_ed_pem(keys("ed25519_private.pem").as_bytes()).unwrap();
    let proof = signed(Algorithm::EdDSA, "EdDSA", &key, &jwk, "dpop+jwt", claims());
    let p = verify(&proof, &settings(false), &nonces(), &expected()).unwrap();
    let theirs: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).unwrap();
    let theirs = theirs
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap();
    assert_eq!(p.jkt, theirs);
    // The same key named as another algorithm's, or a curve it is not.
    let wrong = signed(Algorithm::EdDSA, "ES256", &key, &jwk, "dpop+jwt", claims());
    assert!(verify(&wrong, &settings(false), &nonces(), &expected()).is_err());
    let mut x448 = jwk.clone();
    x448.insert("crv".into(), json!("Ed448"));
    let wrong = signed(Algorithm::EdDSA, "EdDSA", &key, &x448, "dpop+jwt", claims());
    assert!(verify(&wrong, &settings(false), &nonces(), &expected()).is_err());
}
