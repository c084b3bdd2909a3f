//! Claims of a verified credential: dotted paths (`org.id`) into them, and their forms as a
//! header value and as a path segment.

use serde_json::{Map, Value};

/// Walks a dotted claim path through nested objects.
pub(crate) fn claim_at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first)?;
    for key in rest {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

/// A claim as a header value: strings as they are, arrays comma-joined, objects as compact JSON.
pub(crate) fn claim_header_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// A claim compared with a path segment (ownership): strings and numbers only.
pub(crate) fn claim_as_segment(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Claims Portcullis sets itself: a user's `claims` may not replace them.
pub(crate) const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sid",
    "typ",
    "roles",
    "permissions",
    "auth_time",
    "amr",
    "idp",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values() {
        assert_eq!(claim_header_value(&json!("a")).unwrap(), "a");
        assert_eq!(claim_header_value(&json!(["a", "b", 3])).unwrap(), "a,b,3");
        assert_eq!(
            claim_header_value(&json!({"k": [1]})).unwrap(),
            r#"{"k":[1]}"#
        );
        assert_eq!(claim_header_value(&json!(null)), None);
    }

    #[test]
    fn dotted_paths() {
        let c = json!({"org": {"id": "o1"}, "sub": "u"});
        let m = c.as_object().unwrap();
        assert_eq!(
            claim_at(m, &["org".into(), "id".into()]),
            Some(&json!("o1"))
        );
        assert_eq!(claim_at(m, &["sub".into(), "x".into()]), None);
    }
}
