//! The request as the protected service will execute it, read before any policy: the path
//! it will serve ([`crate::served_path`]), the method it will run (request line or
//! method-override header), and the header names it could misread. Inbound, `explain` and
//! every listener that decides with inbound's routes read a request through here.

use http::{HeaderMap, Method};

use super::Refusal;
use super::{header_names, method_override};
use crate::config::Policy;
use crate::served_path::ServedPath;

/// What the route is chosen with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    pub method: Method,
    pub path: ServedPath,
}

/// Read `method raw_path` with `headers` under `policy`'s rules; a refusal (400) when the
/// service could read the request differently from tollgate.
pub fn read(
    policy: &Policy,
    headers: &HeaderMap,
    method: &Method,
    raw_path: &str,
) -> Result<ServedRequest, Refusal> {
    let path = ServedPath::parse(raw_path, policy.path_case).map_err(Refusal::Path)?;
    if let Some(name) = header_names::refused(headers, policy.underscore_headers) {
        return Err(Refusal::UnderscoreHeader(name.chars().take(64).collect()));
    }
    let method = method_override::effective_method(headers, method, policy.method_override)
        .map_err(Refusal::MethodOverride)?;
    Ok(ServedRequest { method, path })
}
