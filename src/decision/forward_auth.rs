//! nginx `auth_request` (and ingress-nginx `auth-url`) and Traefik `ForwardAuth`: the
//! proxy sends a subrequest to `/auth` with the client's headers and the original method
//! and URI in `X-Original-Method`/`X-Original-URI` (nginx; ingress-nginx adds
//! `X-Original-URL`) or `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik). nginx turns any
//! status but 2xx, 401 and 403 into a 500, so every refusal here is 401 or 403.

use http::{HeaderMap, Method, Response, StatusCode};

use super::{Answer, Original};
use crate::inbound::Refusal;
use crate::proxy::Body;

pub const PATH: &str = "/auth";

const URI_HEADERS: [&str; 3] = ["x-original-uri", "x-original-url", "x-forwarded-uri"];
const METHOD_HEADERS: [&str; 2] = ["x-original-method", "x-forwarded-method"];

/// The original request. Every header of each family that is present must say the same
/// thing: a client's own `X-Original-URI` beside the `X-Forwarded-Uri` Traefik set (or
/// the other way round) is refused, never believed.
pub fn original(headers: &HeaderMap) -> Result<Original<'_>, Refusal> {
    let target = agreed(headers, &URI_HEADERS, uri_of)?.ok_or(Refusal::Original(
        "no original request: the proxy must send X-Original-URI (nginx) or X-Forwarded-Uri (Traefik)",
    ))?;
    let method = agreed(headers, &METHOD_HEADERS, |v| Some(v.to_ascii_uppercase()))?.ok_or(Refusal::Original(
        "no original method: the proxy must send X-Original-Method (nginx) or X-Forwarded-Method (Traefik)",
    ))?;
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| Refusal::Original("the original method is not an HTTP method"))?;
    Ok(Original {
        method,
        target,
        headers,
    })
}

/// The one value the present `names` agree on, read through `read`.
fn agreed(
    headers: &HeaderMap,
    names: &[&str],
    read: fn(&str) -> Option<String>,
) -> Result<Option<String>, Refusal> {
    let mut found: Option<String> = None;
    for name in names {
        let mut values = headers.get_all(*name).iter();
        let Some(value) = values.next() else { continue };
        if values.next().is_some() {
            return Err(Refusal::Original("an original-request header is repeated"));
        }
        let text = value
            .to_str()
            .ok()
            .and_then(read)
            .ok_or(Refusal::Original("an original-request header is not readable"))?;
        match &found {
            Some(earlier) if *earlier != text => {
                return Err(Refusal::Original("the original-request headers disagree"));
            }
            _ => found = Some(text),
        }
    }
    Ok(found)
}

/// Path and query of a URI header: `/p?q` as is, or of an absolute `https://h/p?q`.
fn uri_of(value: &str) -> Option<String> {
    if value.starts_with('/') {
        return Some(value.to_string());
    }
    let uri: http::Uri = value.parse().ok()?;
    uri.scheme()?;
    Some(
        uri.path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
    )
}

pub fn reply(answer: Answer) -> Response<Body> {
    match answer {
        Answer::Allow(headers) => {
            let mut res = Response::new(crate::reply::full(bytes::Bytes::new()));
            res.headers_mut().extend(headers);
            res
        }
        Answer::Deny(refusal) => {
            let mut reply = refusal.reply();
            if reply.status != StatusCode::UNAUTHORIZED {
                reply.status = StatusCode::FORBIDDEN;
            }
            reply.render(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn nginx_and_traefik_spellings_are_read() {
        let h = headers(&[("x-original-uri", "/orders/7?x=1"), ("x-original-method", "get")]);
        let o = original(&h).unwrap();
        assert_eq!((o.method, o.target.as_str()), (Method::GET, "/orders/7?x=1"));
        let h = headers(&[("x-forwarded-uri", "/a"), ("x-forwarded-method", "DELETE")]);
        assert_eq!(original(&h).unwrap().method, Method::DELETE);
        let h = headers(&[
            ("x-original-url", "https://orders.example.com/a?b"),
            ("x-original-uri", "/a?b"),
            ("x-original-method", "PUT"),
        ]);
        assert_eq!(original(&h).unwrap().target, "/a?b");
    }

    #[test]
    fn missing_repeated_or_disagreeing_originals_are_refused() {
        for pairs in [
            &[("x-original-method", "GET")][..],
            &[("x-original-uri", "/a")][..],
            &[
                ("x-original-uri", "/a"),
                ("x-forwarded-uri", "/public"),
                ("x-original-method", "GET"),
            ][..],
            &[
                ("x-original-uri", "/a"),
                ("x-original-method", "GET"),
                ("x-forwarded-method", "DELETE"),
            ][..],
            &[
                ("x-original-uri", "/a"),
                ("x-original-uri", "/b"),
                ("x-original-method", "GET"),
            ][..],
            &[("x-original-url", "not a url"), ("x-original-method", "GET")][..],
        ] {
            assert!(
                matches!(original(&headers(pairs)), Err(Refusal::Original(_))),
                "{pairs:?}"
            );
        }
    }
}
