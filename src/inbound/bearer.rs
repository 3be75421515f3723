//! RFC 6750 §2.1: exactly one `Authorization` header, scheme `Bearer` (any case), one token.

use http::{HeaderMap, header};

use super::jwt::TokenError;
use super::refusal::Refusal;

/// The token of the request's single `Authorization: Bearer` header.
pub fn extract(headers: &HeaderMap, max_token_bytes: usize) -> Result<&str, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(Refusal::MissingToken),
        (Some(_), Some(_)) => {
            return Err(Refusal::MalformedAuthorization(
                "more than one Authorization header",
            ));
        }
        (Some(v), None) => v,
    };
    // Checked before any parsing: a huge header costs nothing more than its length.
    if value.len() > max_token_bytes + "Bearer ".len() {
        return Err(Refusal::Token(TokenError::TooLarge));
    }
    // One pass over the token's bytes does what `to_str` and a search for separators
    // would do in two: this runs on every request, over a token of a kilobyte or more.
    let bytes = value.as_bytes();
    let lead = bytes.len() - bytes.trim_ascii_start().len();
    let trimmed = bytes.trim_ascii();
    let (scheme, start) = match trimmed.iter().position(|&b| b == b' ') {
        Some(space) => {
            let after = &trimmed[space + 1..];
            let gap = after.len() - after.trim_ascii_start().len();
            (&trimmed[..space], lead + space + 1 + gap)
        }
        None => (trimmed, lead + trimmed.len()),
    };
    let token = bytes[start..].trim_ascii_end();
    // Branch-free, so the compiler can compare many bytes at once.
    let (mut separators, mut invisible) = (false, false);
    for &b in token {
        separators |= b == b' ' || b == b'\t' || b == b',';
        invisible |= !is_visible(b);
    }
    // The rest of the value (scheme and whitespace), short as it is.
    let outside = bytes[..start].iter().chain(&bytes[start + token.len()..]);
    if invisible || outside.into_iter().any(|&b| !is_visible(b)) {
        return Err(not_ascii());
    }
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Refusal::MalformedAuthorization(
            "the Authorization scheme must be Bearer",
        ));
    }
    if token.is_empty() {
        return Err(Refusal::MalformedAuthorization("the Bearer token is empty"));
    }
    if separators {
        return Err(Refusal::MalformedAuthorization(
            "exactly one Bearer token is allowed",
        ));
    }
    // Visible ASCII only (checked above), so this cannot fail.
    let token = std::str::from_utf8(token).map_err(|_| not_ascii())?;
    Ok(token)
}

fn not_ascii() -> Refusal {
    Refusal::MalformedAuthorization("the Authorization header is not ASCII")
}

/// What `HeaderValue::to_str` accepts: visible ASCII, space and tab.
fn is_visible(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc "] {
            assert_eq!(extract(&headers(&[v]), 100).ok(), Some("abc"), "{v}");
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(extract(&headers(&[]), 100), Err(Refusal::MissingToken)));
        assert!(matches!(
            extract(&headers(&["Bearer a", "Bearer b"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Basic dXNlcjpwYXNz"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Bearer"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        assert!(matches!(
            extract(&headers(&["Bearer a b"]), 100),
            Err(Refusal::MalformedAuthorization(_))
        ));
        let big = format!("Bearer {}", "a".repeat(101));
        assert!(matches!(
            extract(&headers(&[&big]), 100),
            Err(Refusal::Token(TokenError::TooLarge))
        ));
    }

    /// The two-pass reading this module used before: `to_str`, trim, split, search.
    fn reference(value: &HeaderValue) -> Result<&str, &'static str> {
        let text = value
            .to_str()
            .map_err(|_| "the Authorization header is not ASCII")?;
        let (scheme, token) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err("the Authorization scheme must be Bearer");
        }
        let token = token.trim();
        if token.is_empty() {
            return Err("the Bearer token is empty");
        }
        if token.contains([' ', '\t', ',']) {
            return Err("exactly one Bearer token is allowed");
        }
        Ok(token)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn the_one_pass_reading_agrees_with_the_two_pass_one(
            value in proptest::collection::vec(proptest::sample::select(
                b" \t\r\n\x0b\x0c\x7f\x80\xffBbEeAaRr,.x-_=".to_vec()), 0..24),
            bearer in proptest::bool::ANY,
        ) {
            let mut bytes = if bearer { b"Bearer ".to_vec() } else { Vec::new() };
            bytes.extend(value);
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.clone());
            let ours = match extract(&h, 1000) {
                Ok(t) => Ok(t),
                Err(Refusal::MalformedAuthorization(why)) => Err(why),
                Err(_) => Err("other"),
            };
            proptest::prop_assert_eq!(ours, reference(&value), "{:?}", bytes);
        }
    }
}
