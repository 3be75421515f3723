//! Refuses request paths that could mean one thing to tollgate's policy and another to
//! the upstream: dot-segments (also percent-encoded), encoded `/` or `\`, a raw `\`, NUL,
//! and empty segments. Returns the decoded path that routes are matched against.

/// Why a path was refused (400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path contains a dot-segment")]
    DotSegment,
    #[error("the request path contains an encoded slash or backslash")]
    EncodedSeparator,
    #[error("the request path contains a backslash")]
    Backslash,
    #[error("the request path contains a NUL or control character")]
    Control,
    #[error("the request path contains an empty segment")]
    EmptySegment,
    #[error("the request path is not valid percent-encoded UTF-8")]
    BadEncoding,
    #[error("the request path must start with /")]
    NotAbsolute,
}

/// Check `raw` (the path as received, without query) and return it percent-decoded.
pub fn check(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.contains('\\') {
        return Err(PathError::Backslash);
    }
    let mut decoded = String::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate().skip(1) {
        let text = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| PathError::BadEncoding)?;
        if text.contains(['/', '\\']) {
            return Err(PathError::EncodedSeparator);
        }
        if text.chars().any(char::is_control) {
            return Err(PathError::Control);
        }
        if text == "." || text == ".." {
            return Err(PathError::DotSegment);
        }
        // A trailing slash is fine ("/orders/"); an empty segment inside is not ("//").
        let last = i == raw.split('/').count() - 1;
        if text.is_empty() && !last {
            return Err(PathError::EmptySegment);
        }
        decoded.push('/');
        decoded.push_str(&text);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass_decoded() {
        assert_eq!(check("/orders/7").unwrap(), "/orders/7");
        assert_eq!(check("/").unwrap(), "/");
        assert_eq!(check("/orders/").unwrap(), "/orders/");
        assert_eq!(
            check("/%6Frders").unwrap(),
            "/orders",
            "matched as the upstream will see it"
        );
        assert_eq!(check("/a%20b").unwrap(), "/a b");
    }

    #[test]
    fn path_tricks_are_refused() {
        for (path, why) in [
            ("/orders/../admin", PathError::DotSegment),
            ("/orders/./x", PathError::DotSegment),
            ("/orders/%2e%2e/admin", PathError::DotSegment),
            ("/orders/%2E/x", PathError::DotSegment),
            ("/orders/.%2e/admin", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/orders%2fadmin", PathError::EncodedSeparator),
            ("/orders%2Fadmin", PathError::EncodedSeparator),
            ("/orders%5cadmin", PathError::EncodedSeparator),
            ("/orders\\admin", PathError::Backslash),
            ("/orders%00", PathError::Control),
            ("/orders%0d%0aX: y", PathError::Control),
            ("//orders", PathError::EmptySegment),
            ("/a//b", PathError::EmptySegment),
            ("/%ff", PathError::BadEncoding),
            ("orders", PathError::NotAbsolute),
        ] {
            assert_eq!(check(path), Err(why), "{path}");
        }
    }
}
