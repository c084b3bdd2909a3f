//! JSON bodies as the built-in and admin endpoints read them: a key given twice in one
//! object is refused. serde_json keeps the last copy, while another reader of the same body
//! (a front proxy's filter, a WAF, an audit tap) may keep the first: the two would judge
//! different usernames.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Whether every object in `body` (nested ones too) names each key once. `true` for a body
/// that is no JSON at all: its own parse refuses it.
pub(crate) fn keys_unique(body: &[u8]) -> bool {
    match serde_json::from_slice::<Checked>(body) {
        Ok(_) => true,
        Err(e) => !e.to_string().starts_with(REPEATED),
    }
}

const REPEATED: &str = "a key is repeated";

/// A value walked only to find repeated keys.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Walk)
    }
}

struct Walk;

impl<'de> Visitor<'de> for Walk {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(A::Error::custom(REPEATED));
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::keys_unique;

    #[test]
    fn a_key_given_twice_anywhere_is_found() {
        assert!(keys_unique(br#"{"a":1,"b":{"a":2},"c":[{"a":3}]}"#));
        assert!(keys_unique(b"not json"));
        for twice in [
            &br#"{"username":"alice","username":"admin"}"#[..],
            br#"{"claims":{"x":1,"x":2}}"#,
            br#"[{"a":1,"a":1}]"#,
            br#"{"u\u0073er":1,"user":2}"#,
        ] {
            assert!(!keys_unique(twice), "{}", String::from_utf8_lossy(twice));
        }
    }
}
