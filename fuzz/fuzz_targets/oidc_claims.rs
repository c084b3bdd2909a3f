//! An ID token's and a logout token's claims, once the signature is checked: an ID token
//! passes only with a subject and this login's nonce, a logout token only with the
//! back-channel event and without a nonce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{id_token_ok, logout_token_ok};
use serde_json::Value;

const NONCE: &str = "n-0S6_WzA2Mj";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fuzz_target!(|body: &[u8]| {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if id_token_ok(&claims, NONCE) {
        assert!(claims["sub"].is_string());
        assert_eq!(claims["nonce"], NONCE);
    }
    if logout_token_ok(&claims) {
        assert!(claims.get("nonce").is_none(), "a logout token with a nonce");
        assert!(claims["events"].get(EVENT).is_some());
        assert!(claims.get("sub").is_some() || claims.get("sid").is_some());
    }
});
