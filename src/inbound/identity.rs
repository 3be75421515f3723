//! Identity headers: the verified claims named in `forward_claims`, and the removal of
//! same-named headers a client sent, and of their look-alikes (`X_Client_Id` reads as
//! `X-Client-Id` to CGI-style servers), on every route, so identity can never be spoofed.

use std::fmt::Write as _;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::header_names;
use super::jwt::{Claims, TokenError};
use crate::config::ForwardClaim;

/// Remove every header tollgate sets from verified claims, and every header whose name
/// reads the same once `_` is taken for `-` (in the request's name or in the configured one).
pub fn remove_spoofed(headers: &mut HeaderMap, forward: &[ForwardClaim]) {
    for f in forward {
        headers.remove(&f.header);
    }
    // What is left can only be a look-alike if one of the two names holds `_`.
    let underscored = |n: &HeaderName| n.as_str().contains('_');
    if forward.is_empty()
        || !(forward.iter().any(|f| underscored(&f.header)) || headers.keys().any(underscored))
    {
        return;
    }
    let lookalikes: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            forward
                .iter()
                .any(|f| header_names::same_to_cgi(n.as_str(), f.header.as_str()))
        })
        .cloned()
        .collect();
    for name in lookalikes {
        headers.remove(name);
    }
}

/// The headers to set from verified claims. A missing claim sets no header; arrays are
/// joined with `,`; a value with a control character refuses the whole request.
pub fn identity_headers(
    forward: &[ForwardClaim],
    claims: &Claims,
) -> Result<Vec<(HeaderName, HeaderValue)>, TokenError> {
    let mut out = Vec::with_capacity(forward.len());
    let mut text = String::new();
    for f in forward {
        text.clear();
        if !claims.get(&f.claim).is_some_and(|v| render_into(&mut text, v)) {
            continue;
        }
        if text.chars().any(char::is_control) {
            return Err(TokenError::UnsafeClaim(f.claim.clone()));
        }
        let value = HeaderValue::from_str(&text).map_err(|_| TokenError::UnsafeClaim(f.claim.clone()))?;
        out.push((f.header.clone(), value));
    }
    Ok(out)
}

/// Append a claim's header text to `out`: a string as it is, a number or boolean as JSON
/// writes it, an array's items that have a text joined with `,`. `false` (and nothing
/// appended) for a value that sets no header: `null` or an object.
fn render_into(out: &mut String, value: &Value) -> bool {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Array(items) => {
            let mut first = true;
            for item in items {
                let start = out.len();
                if !first {
                    out.push(',');
                }
                if render_into(out, item) {
                    first = false;
                } else {
                    out.truncate(start);
                }
            }
        }
        Value::Null | Value::Object(_) => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn forward() -> Vec<ForwardClaim> {
        vec![
            ForwardClaim {
                header: HeaderName::from_static("x-client-id"),
                claim: "azp".into(),
            },
            ForwardClaim {
                header: HeaderName::from_static("x-client-roles"),
                claim: "roles".into(),
            },
        ]
    }

    #[test]
    fn claims_become_headers_and_arrays_are_joined() {
        let claims: Claims = json!({"azp": "c1", "roles": ["A", "B"]})
            .as_object()
            .cloned()
            .unwrap()
            .into();
        let headers = identity_headers(&forward(), &claims).unwrap();
        assert_eq!(headers[0].1, "c1");
        assert_eq!(headers[1].1, "A,B");
    }

    #[test]
    fn every_kind_of_claim_value_renders_as_before() {
        let cases = [
            (json!("c1"), Some("c1")),
            (json!(42), Some("42")),
            (json!(-1.5), Some("-1.5")),
            (json!(true), Some("true")),
            (json!(false), Some("false")),
            (json!(null), None),
            (json!({"a": 1}), None),
            (json!([]), Some("")),
            (json!([null]), Some("")),
            (json!(["A", null, "B"]), Some("A,B")),
            (json!([null, "A", {"x": 1}, 2]), Some("A,2")),
            (json!(["A", [], "B"]), Some("A,,B")),
            (json!(["A", ["B", "C"], true]), Some("A,B,C,true")),
        ];
        for (value, want) in cases {
            let mut text = String::from("kept:");
            let set = render_into(&mut text, &value);
            assert_eq!(set, want.is_some(), "{value}");
            match want {
                Some(w) => assert_eq!(text, format!("kept:{w}"), "{value}"),
                None => assert_eq!(text, "kept:", "{value}: nothing appended"),
            }
        }
    }

    #[test]
    fn control_characters_refuse_the_request() {
        let claims: Claims = json!({"azp": "c1\r\nX-Admin: true"})
            .as_object()
            .cloned()
            .unwrap()
            .into();
        assert_eq!(
            identity_headers(&forward(), &claims),
            Err(TokenError::UnsafeClaim("azp".into()))
        );
    }

    #[test]
    fn spoofed_headers_are_removed_case_insensitively() {
        let mut h = HeaderMap::new();
        h.append("X-Client-Id", HeaderValue::from_static("evil"));
        h.append("x-client-id", HeaderValue::from_static("evil2"));
        h.append("x-other", HeaderValue::from_static("kept"));
        remove_spoofed(&mut h, &forward());
        assert!(h.get("x-client-id").is_none());
        assert_eq!(h["x-other"], "kept");
    }

    #[test]
    fn lookalike_headers_are_removed() {
        let mut h = HeaderMap::new();
        for name in [
            "X_Client_Id",
            "X-Client_Id",
            "x_client_id",
            "X_CLIENT_ROLES",
            "x_other",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("evil"),
            );
        }
        remove_spoofed(&mut h, &forward());
        let left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["x_other"], "only the unrelated name is left");
    }

    /// Found by the `identity` fuzz target: with `forward_claims: { X_Client_Id: azp }` a
    /// client's `X-Client-Id` was forwarded, and CGI-style servers read both as
    /// `HTTP_X_CLIENT_ID`.
    #[test]
    fn lookalikes_of_an_underscored_forward_name_are_removed() {
        let forward = vec![ForwardClaim {
            header: HeaderName::from_static("x_client_id"),
            claim: "azp".into(),
        }];
        let mut h = HeaderMap::new();
        for name in [
            "X-Client-Id",
            "x-client_id",
            "X_CLIENT-ID",
            "x-client-idx",
            "x-other",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("evil"),
            );
        }
        remove_spoofed(&mut h, &forward);
        let mut left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        left.sort();
        assert_eq!(left, ["x-client-idx", "x-other"]);
    }
}
