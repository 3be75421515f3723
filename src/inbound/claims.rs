//! A token's claims in a compact form: one sorted slice of (name, value), the usual claim
//! names pointing at static text instead of a copy each.
//!
//! Verified tokens are remembered with their claims (see [`super::verified`]), thousands
//! of them per issuer, and a token seen once is decoded, stored and dropped again. For an
//! Entra app token a JSON map (a B-tree of owned strings) held ~3.3 KiB of heap, with one
//! allocation per name; this form ~1.5 KiB, with none for a known name. The answers are
//! the same: names compare exactly as JSON decoded them, and of a name given twice the
//! last value counts (RFC 7519 §4 allows rejecting such a token or keeping the last; a
//! JSON map keeps the last, and so does this).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Claim names Entra ID and OAuth2 access and ID tokens use, sorted, so a token's names
/// need no copy of their own.
const KNOWN: &[&str] = &[
    "acct",
    "acr",
    "act",
    "aio",
    "amr",
    "app_displayname",
    "appid",
    "appidacr",
    "aud",
    "auth_time",
    "azp",
    "azpacr",
    "client_id",
    "cnf",
    "ctry",
    "email",
    "exp",
    "family_name",
    "given_name",
    "groups",
    "hasgroups",
    "iat",
    "idp",
    "idtyp",
    "in_corp",
    "ipaddr",
    "iss",
    "jti",
    "login_hint",
    "may_act",
    "name",
    "nbf",
    "nonce",
    "oid",
    "onprem_sid",
    "preferred_username",
    "puid",
    "pwd_exp",
    "rh",
    "roles",
    "scope",
    "scp",
    "sid",
    "sub",
    "tenant_ctry",
    "tenant_region_scope",
    "tid",
    "unique_name",
    "upn",
    "uti",
    "ver",
    "verified_primary_email",
    "wids",
    "xms_cc",
    "xms_idrel",
    "xms_pdl",
    "xms_tcdt",
    "xms_tpl",
];

/// A claim's name: one of [`KNOWN`], or its own copy.
#[derive(Clone)]
enum Name {
    Known(&'static str),
    Other(Box<str>),
}

impl Name {
    fn new(name: &str) -> Self {
        match KNOWN.binary_search(&name) {
            Ok(i) => Name::Known(KNOWN[i]),
            Err(_) => Name::Other(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Name::Known(s) => s,
            Name::Other(s) => s,
        }
    }
}

/// A token's claims (its payload, a JSON object), read-only once decoded.
#[derive(Clone, Default)]
pub struct Claims {
    /// Sorted by name, names unique.
    entries: Box<[(Name, Value)]>,
}

impl Claims {
    /// No claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claim `name`'s value, when the token has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every claim, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// From entries in the order a token gave them: sorted, and of a name given twice
    /// the last value kept.
    fn from_entries(mut entries: Vec<(Name, Value)>) -> Self {
        // Stable: entries of one name stay in the token's order.
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        // `dedup_by` keeps the first of a run; swapping in the later value keeps the last.
        entries.dedup_by(|later, kept| {
            let same = later.0.as_str() == kept.0.as_str();
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Claims {
            entries: entries.into_boxed_slice(),
        }
    }
}

impl From<Map<String, Value>> for Claims {
    fn from(map: Map<String, Value>) -> Self {
        map.into_iter().collect()
    }
}

impl FromIterator<(String, Value)> for Claims {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from_entries(iter.into_iter().map(|(k, v)| (Name::new(&k), v)).collect())
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        // An Entra token has 15-25 claims; bounded by the token's size limit anyway.
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(name) = map.next_key::<DecodedName>()? {
            let value: Value = map.next_value()?;
            entries.push((name.0, value));
        }
        Ok(Claims::from_entries(entries))
    }
}

/// A claim name decoded straight into a [`Name`], without an owned copy when it is a
/// known one.
struct DecodedName(Name);

impl<'de> Deserialize<'de> for DecodedName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = DecodedName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<DecodedName, E> {
                Ok(DecodedName(Name::new(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn known_names_are_sorted_and_unique_so_the_search_finds_each() {
        assert!(
            KNOWN.windows(2).all(|w| w[0] < w[1]),
            "KNOWN must be sorted and unique"
        );
        for name in KNOWN {
            assert!(matches!(Name::new(name), Name::Known(k) if k == *name));
        }
        assert!(
            matches!(Name::new("Roles"), Name::Other(_)),
            "names are case-sensitive"
        );
    }

    #[test]
    fn decodes_what_a_json_map_decodes() {
        let text =
            r#"{"roles":["A","B"],"aud":"api://x","exp":12,"x-custom":{"a":[1]},"":null,"a\u0075d2":"esc"}"#;
        let claims: Claims = serde_json::from_str(text).unwrap();
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(claims.len(), map.len());
        for (k, v) in &map {
            assert_eq!(claims.get(k), Some(v), "{k}");
        }
        assert_eq!(
            claims.get("aud2"),
            Some(&json!("esc")),
            "escapes decoded in names"
        );
        assert_eq!(claims.get("missing"), None);
        assert!(claims.contains_key(""));
        assert_eq!(claims, Claims::from(map));
    }

    #[test]
    fn a_name_given_twice_keeps_its_last_value_as_a_json_map_does() {
        let text = r#"{"roles":["Reader"],"aud":"a","roles":["Admin"],"aud":"b","roles":["Last"]}"#;
        let claims: Claims = serde_json::from_str(text).unwrap();
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(claims.get("roles"), Some(&json!(["Last"])));
        assert_eq!(claims.get("aud"), Some(&json!("b")));
        assert_eq!(claims.len(), 2);
        assert_eq!(claims, Claims::from(map));
    }

    #[test]
    fn only_an_object_is_claims() {
        for text in [
            r#"["aud"]"#,
            r#""aud""#,
            "1",
            "null",
            "{",
            r#"{"aud":}"#,
            r#"{1:2}"#,
        ] {
            assert!(serde_json::from_str::<Claims>(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn every_lookup_agrees_with_a_json_map(
            entries in prop::collection::vec(
                (prop::sample::select(&["aud", "roles", "azp", "x", "Aud", "zz", "a_b"][..]), any::<i32>()),
                0..12,
            ),
        ) {
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            let claims: Claims = serde_json::from_str(&text).unwrap();
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(claims.len(), map.len());
            for name in ["aud", "roles", "azp", "x", "Aud", "zz", "a_b", "none"] {
                prop_assert_eq!(claims.get(name), map.get(name));
            }
        }
    }
}
