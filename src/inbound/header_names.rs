//! Header names as CGI-style servers read them: PHP, WSGI, Rack, Perl and many Java and
//! .NET helpers turn `X-Client-Id` and `X_Client_Id` into the same `HTTP_X_CLIENT_ID`, so
//! a header with `_` can impersonate one with `-`. `underscore_headers` decides what
//! happens to such names (nginx drops them by default for this reason).

use http::HeaderMap;

use crate::config::UnderscoreHeaders;

/// Do two header names read as the same `HTTP_*` variable, once ASCII case is folded and
/// `_` is taken for `-` on both sides? A configured name may hold `_` too (`X_User`), and
/// then a client's `X-User` is its look-alike.
pub fn same_to_cgi(a: &str, b: &str) -> bool {
    let cgi = |c: u8| if c == b'_' { b'-' } else { c.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| cgi(x) == cgi(y))
}

/// The first header name holding `_`, when the mode refuses them.
pub fn refused(headers: &HeaderMap, mode: UnderscoreHeaders) -> Option<&str> {
    if mode != UnderscoreHeaders::Refuse {
        return None;
    }
    headers.keys().map(|n| n.as_str()).find(|n| n.contains('_'))
}

/// Remove every header whose name holds `_`; how many names were removed.
pub fn drop_underscored(headers: &mut HeaderMap) -> usize {
    let names: Vec<_> = headers
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .cloned()
        .collect();
    for name in &names {
        headers.remove(name);
    }
    names.len()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn underscores_read_as_dashes() {
        assert!(same_to_cgi("x_client_id", "x-client-id"));
        assert!(same_to_cgi("x-client_id", "x-client-id"));
        assert!(same_to_cgi("x-client-id", "x-client-id"));
        assert!(!same_to_cgi("x-client-idx", "x-client-id"));
        assert!(!same_to_cgi("x-client-ie", "x-client-id"));
        assert!(
            same_to_cgi("x-client-id", "x_client_id"),
            "a configured name with `_` has look-alikes with `-`"
        );
        assert!(same_to_cgi("X-Client_Id", "x_client-ID"));
    }

    #[test]
    fn underscored_names_are_dropped_and_others_kept() {
        let mut h = HeaderMap::new();
        h.append("x_a", HeaderValue::from_static("1"));
        h.append("x_a", HeaderValue::from_static("2"));
        h.append("x_b", HeaderValue::from_static("3"));
        h.append("x-c", HeaderValue::from_static("kept"));
        assert_eq!(refused(&h, UnderscoreHeaders::Refuse), Some("x_a"));
        assert_eq!(refused(&h, UnderscoreHeaders::Drop), None);
        assert_eq!(drop_underscored(&mut h), 2);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-c"], "kept");
    }
}
