//! `identity`: identity headers. Three sections, split by lines holding only `--`:
//!
//! ```text
//! X-Client-Id: azp          forward_claims, `Header: claim` one a line
//! --
//! X_Client_Id: evil         the client's request headers
//! --
//! {"azp": "c1"}             verified claims (a JSON object)
//! ```
//!
//! After `remove_spoofed`, no request header reads as a `forward_claims` header once both
//! are lower-cased and `_` is taken for `-` (how CGI-style servers read names), and every
//! other header is still there. `identity_headers` sets only `forward_claims` headers, with
//! no control character in a value, and refuses exactly when a forwarded claim has one.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::config::ForwardClaim;
use tollgate::inbound::identity::{identity_headers, remove_spoofed};
use tollgate::inbound::jwt::Claims;

fuzz_target!(|data: &[u8]| {
    let mut sections = data.split(|b| *b == b'\n').collect::<Vec<_>>().into_iter();
    let forward = forward_claims(sections.by_ref().take_while(|l| *l != b"--"));
    let mut headers = request_headers(sections.by_ref().take_while(|l| *l != b"--"));
    let rest: Vec<&[u8]> = sections.collect();
    let claims: Option<Claims> = serde_json::from_slice(&rest.join(&b'\n')).ok();

    // Sorted: removing headers may reorder the map.
    let unrelated = |h: &HeaderMap| -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = h
            .iter()
            .filter(|(n, _)| !forward.iter().any(|f| cgi(n.as_str()) == cgi(f.header.as_str())))
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        out.sort();
        out
    };
    let kept = unrelated(&headers);
    remove_spoofed(&mut headers, &forward);
    for name in headers.keys() {
        let spoof = forward
            .iter()
            .find(|f| cgi(name.as_str()) == cgi(f.header.as_str()));
        assert!(
            spoof.is_none(),
            "`{name}` reads as `{}` and was kept",
            spoof.unwrap().header
        );
    }
    assert_eq!(
        unrelated(&headers),
        kept,
        "a header unrelated to identity was removed"
    );

    let Some(claims) = claims else {
        return;
    };
    let unsafe_claim = forward
        .iter()
        .any(|f| claims.get(&f.claim).is_some_and(has_control));
    match identity_headers(&forward, &claims) {
        Ok(set) => {
            assert!(!unsafe_claim, "a claim with a control character was rendered");
            for (name, value) in &set {
                assert!(forward.iter().any(|f| f.header == name));
                let text = std::str::from_utf8(value.as_bytes()).expect("UTF-8 from a JSON string");
                assert!(!text.chars().any(char::is_control), "{name}: {value:?}");
            }
        }
        Err(_) => assert!(unsafe_claim, "refused claims without a control character"),
    }
});

/// As `inbound.forward_claims` validates them: valid names, each once, non-empty claims.
fn forward_claims<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<ForwardClaim> {
    let mut out: Vec<ForwardClaim> = Vec::new();
    for line in lines {
        let Some((name, claim)) = split_once(line) else {
            continue;
        };
        let (Ok(header), Ok(claim)) = (HeaderName::from_bytes(name), std::str::from_utf8(claim)) else {
            continue;
        };
        let claim = claim.trim();
        if claim.is_empty() || out.iter().any(|f| f.header == header) {
            continue;
        }
        out.push(ForwardClaim {
            header,
            claim: claim.to_string(),
        });
    }
    out
}

/// As hyper hands them over: valid names (lower-cased) and values only.
fn request_headers<'a>(lines: impl Iterator<Item = &'a [u8]>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = split_once(line) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value.trim_ascii()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn split_once(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = line.iter().position(|b| *b == b':')?;
    Some((&line[..i], &line[i + 1..]))
}

/// A header name as a CGI-style server reads it.
fn cgi(name: &str) -> String {
    name.chars()
        .map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() })
        .collect()
}

/// Would the claim's header value (strings, and arrays of them, rendered) hold a
/// control character?
fn has_control(value: &Value) -> bool {
    match value {
        Value::String(s) => s.chars().any(char::is_control),
        Value::Array(items) => items.iter().any(has_control),
        _ => false,
    }
}
