//! The claims of a verified token that revocation and the session flows read.

use serde_json::{Map, Value};

use crate::store::Presented;

#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenFacts<'a> {
    pub jti: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub iat: Option<u64>,
    pub exp: Option<u64>,
}

impl<'a> TokenFacts<'a> {
    /// Read from a verified token's claims (a number of seconds may be fractional or
    /// negative: taken whole, at least 0).
    pub(crate) fn of(claims: &'a Map<String, Value>) -> Self {
        let str_claim = |k: &str| claims.get(k).and_then(|v| v.as_str());
        let secs = |k: &str| {
            claims
                .get(k)
                .and_then(|v| v.as_f64())
                .map(|f| f.max(0.0) as u64)
        };
        TokenFacts {
            jti: str_claim("jti"),
            sid: str_claim("sid"),
            iat: secs("iat"),
            exp: secs("exp"),
        }
    }

    /// What the revocation check asks about the token of `subject`.
    pub(crate) fn presented(&self, subject: &'a str) -> Presented<'a> {
        Presented {
            jti: self.jti,
            sid: self.sid,
            subject,
            iat: self.iat,
            api_key: None,
            user_key: false,
        }
    }
}
