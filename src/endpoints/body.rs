//! Request bodies of the built-in endpoints: JSON or form-encoded, at most 64 KiB (the proxy
//! reads them, refusing longer ones), every field a string.

use std::collections::HashMap;

use http::header::CONTENT_TYPE;

use crate::error::GatewayError;

/// Bodies over this are refused with 413.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The fields of a body, by name.
#[derive(Debug, Default)]
pub(crate) struct Fields(HashMap<String, String>);

impl Fields {
    /// Parses `body` by its `Content-Type`. An empty body is no fields, whatever its type.
    pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Fields, GatewayError> {
        if body.is_empty() {
            return Ok(Fields::default());
        }
        let mime = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        match mime.as_deref() {
            Some("application/json") => Self::json(body),
            Some("application/x-www-form-urlencoded") => Self::form(body),
            _ => Err(GatewayError::InvalidRequest(
                "the body must be application/json or application/x-www-form-urlencoded",
            )),
        }
    }

    fn json(body: &[u8]) -> Result<Fields, GatewayError> {
        refuse_repeated_keys(body)?;
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| GatewayError::InvalidRequest("malformed JSON body"))?;
        let serde_json::Value::Object(map) = value else {
            return Err(GatewayError::InvalidRequest(
                "the JSON body must be an object",
            ));
        };
        let mut fields = HashMap::new();
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) => {
                    fields.insert(k, s);
                }
                serde_json::Value::Null => {}
                _ => return Err(GatewayError::InvalidRequest("every field must be a string")),
            }
        }
        Ok(Fields(fields))
    }

    fn form(body: &[u8]) -> Result<Fields, GatewayError> {
        let mut fields = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            // RFC 6749 section 3.2: parameters must not be included more than once.
            if fields.insert(k.into_owned(), v.into_owned()).is_some() {
                return Err(GatewayError::InvalidRequest("a field is repeated"));
            }
        }
        Ok(Fields(fields))
    }

    /// A field that is present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required field, or the 400 naming it.
    pub(crate) fn required(&self, name: &'static str) -> Result<&str, GatewayError> {
        self.get(name)
            .ok_or(GatewayError::InvalidRequest(missing(name)))
    }

    /// Every field, in no order.
    pub(crate) fn into_pairs(self) -> Vec<(String, String)> {
        self.0.into_iter().collect()
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }
}

fn refuse_repeated_keys(body: &[u8]) -> Result<(), GatewayError> {
    match crate::strict_json::keys_unique(body) {
        true => Ok(()),
        false => Err(GatewayError::InvalidRequest("a field is repeated")),
    }
}

/// Descriptions are fixed strings (nothing a client sent is echoed back), one per field.
fn missing(name: &'static str) -> &'static str {
    match name {
        "username" => "missing field: username",
        "password" => "missing field: password",
        "mfa_token" => "missing field: mfa_token",
        "code" => "missing field: code",
        "refresh_token" => "missing field: refresh_token",
        "grant_type" => "missing field: grant_type",
        "current_password" => "missing field: current_password",
        "new_password" => "missing field: new_password",
        _ => "a required field is missing",
    }
}

/// A JSON body read as `T` (unknown fields ignored); an empty body reads as `{}`.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, GatewayError> {
    let json_type = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !body.is_empty() && !json_type {
        return Err(GatewayError::InvalidRequest(
            "the body must be application/json",
        ));
    }
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    refuse_repeated_keys(body)?;
    serde_json::from_slice(body).map_err(|_| {
        GatewayError::InvalidRequest("malformed JSON body, or a field of the wrong type")
    })
}

/// The request's `Content-Type`, if it is readable.
pub(crate) fn content_type(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_bodies() {
        let f = Fields::parse(
            Some("application/json; charset=utf-8"),
            br#"{"username":"alice","password":"p w","totp":null}"#,
        )
        .unwrap();
        assert_eq!(
            (f.get("username"), f.get("password")),
            (Some("alice"), Some("p w"))
        );
        assert_eq!(f.get("totp"), None);
        let f = Fields::parse(
            Some("application/x-www-form-urlencoded"),
            b"grant_type=password&username=al%69ce&password=a+b",
        )
        .unwrap();
        assert_eq!(f.get("username"), Some("alice"));
        assert_eq!(f.get("password"), Some("a b"));
        assert_eq!(
            f.required("refresh_token"),
            Err(GatewayError::InvalidRequest("missing field: refresh_token"))
        );
        assert!(Fields::parse(None, b"").unwrap().get("x").is_none());
    }

    #[test]
    fn malformed_bodies_are_400() {
        for (ct, body) in [
            (Some("application/json"), &b"{not json"[..]),
            (Some("application/json"), b"[1,2]"),
            (Some("application/json"), br#"{"username": 7}"#),
            (Some("application/x-www-form-urlencoded"), b"a=1&a=2"),
            (
                Some("application/json"),
                br#"{"username":"a","username":"b"}"#,
            ),
            (Some("text/plain"), b"username=alice"),
            (None, b"username=alice"),
        ] {
            let e = Fields::parse(ct, body).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{ct:?} {body:?}");
        }
    }
}
