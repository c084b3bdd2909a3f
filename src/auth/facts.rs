//! The claims of a verified token that revocation and the session flows read.

use serde_json::{Map, Value};

use crate::error::TokenError;
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

/// What a token is bound to (`cnf`): a DPoP key (`jkt`, RFC 9449) and/or a client
/// certificate (`x5t#S256`, RFC 8705). An unbound token is a bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub jkt: Option<String>,
    pub x5t: Option<String>,
}

impl Binding {
    /// The token's `cnf`. One this gateway cannot check (another confirmation method, a
    /// member that is not a string) is refused: the issuer meant the token to be bound, and
    /// taking it as a bearer token would let a thief use it.
    pub(crate) fn of(claims: &Map<String, Value>) -> Result<Self, TokenError> {
        let Some(cnf) = claims.get("cnf") else {
            return Ok(Binding::default());
        };
        let cnf = cnf.as_object().ok_or(TokenError::UnsupportedBinding)?;
        let mut b = Binding::default();
        for (k, v) in cnf {
            let v = v
                .as_str()
                .ok_or(TokenError::UnsupportedBinding)?
                .to_string();
            match k.as_str() {
                "jkt" => b.jkt = Some(v),
                "x5t#S256" => b.x5t = Some(v),
                _ => return Err(TokenError::UnsupportedBinding),
            }
        }
        Ok(b)
    }

    pub(crate) fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t.is_some()
    }

    /// The `cnf` claim of a token bound as `self` says; `None` for a bearer token.
    pub(crate) fn claim(&self) -> Option<Value> {
        let mut cnf = Map::new();
        if let Some(jkt) = &self.jkt {
            cnf.insert("jkt".into(), jkt.clone().into());
        }
        if let Some(x5t) = &self.x5t {
            cnf.insert("x5t#S256".into(), x5t.clone().into());
        }
        self.is_bound().then_some(Value::Object(cnf))
    }
}
