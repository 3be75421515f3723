//! Method-override headers: frameworks (ASP.NET Web API, Express `method-override`,
//! Laravel, Symfony, OData) execute `GET` + `X-HTTP-Method-Override: DELETE` as a DELETE,
//! so a route chosen by the request line alone would let a reader delete. By default such
//! a request is refused; `method_override: judge` chooses the route with the overriding
//! method instead.

use http::{HeaderMap, Method};

use super::header_names;
use crate::config::MethodOverride;

/// The header names frameworks read an overriding method from.
pub const HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// Methods an override may name (`CONNECT` never: it is not a method a handler runs).
const KNOWN: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
];

/// Why a request with an override header was refused (400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("method override header `{0}` is refused (this route's policy is chosen by the request method)")]
    Refused(&'static str),
    #[error("method override header `{0}` must carry exactly one value")]
    NotOne(&'static str),
    #[error("method override header `{0}` does not name a known method")]
    Unknown(&'static str),
}

/// The method the service will execute: the request's, or the one an override header names.
/// Header names are compared after ASCII case folding and reading `_` as `-` (CGI-style
/// servers see `X_HTTP_METHOD_OVERRIDE` as the same header).
pub fn effective_method(
    headers: &HeaderMap,
    method: &Method,
    mode: MethodOverride,
) -> Result<Method, OverrideError> {
    let mut found: Option<(&'static str, Method)> = None;
    for (name, value) in headers {
        let Some(canonical) = HEADERS
            .iter()
            .find(|h| header_names::same_to_cgi(name.as_str(), h))
        else {
            continue;
        };
        if mode == MethodOverride::Refuse {
            return Err(OverrideError::Refused(canonical));
        }
        let text = value
            .to_str()
            .map_err(|_| OverrideError::Unknown(canonical))?
            .trim();
        if text.contains(',') {
            return Err(OverrideError::NotOne(canonical));
        }
        let wanted = KNOWN
            .iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text))
            .ok_or(OverrideError::Unknown(canonical))?;
        match &found {
            Some((_, earlier)) if earlier != wanted => return Err(OverrideError::NotOne(canonical)),
            _ => found = Some((canonical, wanted.clone())),
        }
    }
    Ok(found.map_or_else(|| method.clone(), |(_, m)| m))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn no_override_keeps_the_request_method() {
        let h = headers(&[("x-other", "DELETE")]);
        assert_eq!(
            effective_method(&h, &Method::GET, MethodOverride::Refuse),
            Ok(Method::GET)
        );
    }

    #[test]
    fn every_override_header_is_refused_by_default_in_any_spelling() {
        for name in [
            "X-HTTP-Method-Override",
            "x-http-method",
            "X-METHOD-OVERRIDE",
            "X_HTTP_Method_Override",
        ] {
            let h = headers(&[(name, "DELETE")]);
            assert!(
                matches!(
                    effective_method(&h, &Method::GET, MethodOverride::Refuse),
                    Err(OverrideError::Refused(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn judge_reads_one_known_method() {
        let judge =
            |pairs: &[(&str, &str)]| effective_method(&headers(pairs), &Method::GET, MethodOverride::Judge);
        assert_eq!(judge(&[("x-http-method-override", "delete")]), Ok(Method::DELETE));
        assert_eq!(
            judge(&[("x-http-method", "PUT"), ("x-method-override", "put")]),
            Ok(Method::PUT),
            "the same method twice is one value"
        );
        assert!(matches!(
            judge(&[("x-http-method", "PUT, DELETE")]),
            Err(OverrideError::NotOne(_))
        ));
        assert!(matches!(
            judge(&[("x-http-method", "PUT"), ("x-http-method", "DELETE")]),
            Err(OverrideError::NotOne(_))
        ));
        assert!(matches!(
            judge(&[("x-http-method", "FROB")]),
            Err(OverrideError::Unknown(_))
        ));
        assert!(matches!(
            judge(&[("x-http-method", "CONNECT")]),
            Err(OverrideError::Unknown(_))
        ));
        assert!(matches!(
            judge(&[("x-http-method", "")]),
            Err(OverrideError::Unknown(_))
        ));
    }
}
