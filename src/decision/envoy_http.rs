//! Envoy's HTTP external authorization (`envoyExtAuthzHttp` in Istio): Envoy sends the
//! original request's method and headers to `path_prefix` + the original path. Allow is
//! 200 with the identity headers (list them in `allowed_upstream_headers`); deny is the
//! inbound refusal itself, which Envoy passes to the client.

use http::{Response, StatusCode};

use super::Answer;
use crate::proxy::Body;

/// Configure Envoy's `path_prefix: /ext_authz`.
pub const PREFIX: &str = "/ext_authz";

/// The original path and query: what follows the prefix (`/` when nothing does).
pub fn original_target(rest: &str, query: Option<&str>) -> String {
    let path = if rest.is_empty() { "/" } else { rest };
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

pub fn reply(answer: Answer, grpc: bool) -> Response<Body> {
    match answer {
        Answer::Allow(headers) => {
            let mut res = Response::new(crate::reply::full(bytes::Bytes::new()));
            *res.status_mut() = StatusCode::OK;
            res.headers_mut().extend(headers);
            res
        }
        Answer::Deny(refusal) => refusal.reply().render(grpc),
    }
}
