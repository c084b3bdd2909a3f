//! DPoP proofs (RFC 9449 section 4.3): an accepted proof is a `dpop+jwt` for this method and
//! URL, recent, bound to the token when one is presented, with a public key only.
//! Input: the proof.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{canonical_htu, dpop_proof};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The seeds (fuzz/seeds/dpop_proof) were made for this request at this time.
const NOW: u64 = 1_800_000_000;
const HTU: &str = "https://api.example/resource";
const TOKEN: &str = "an-access-token";

fn part(p: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON")
}

fuzz_target!(|proof: &str| {
    check(proof, None);
    check(proof, Some(TOKEN));
});

fn check(proof: &str, token: Option<&str>) {
    let Ok(jkt) = dpop_proof(proof, "POST", HTU, token, NOW) else {
        return;
    };
    assert_eq!(jkt.len(), 43, "a SHA-256 thumbprint");
    let mut parts = proof.split('.');
    let (header, claims) = (part(parts.next().unwrap()), part(parts.next().unwrap()));
    assert_eq!(header["typ"], "dpop+jwt");
    assert!(
        header["jwk"].get("d").is_none(),
        "a private key was accepted"
    );
    assert_eq!(claims["htm"], "POST");
    let htu = claims["htu"].as_str().expect("htu");
    assert_eq!(canonical_htu(htu).as_deref(), Some(HTU));
    let iat = claims["iat"].as_u64().expect("iat");
    assert!(iat.abs_diff(NOW) <= 305, "iat {iat}");
    if let Some(token) = token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        assert_eq!(claims["ath"], ath);
    }
}
