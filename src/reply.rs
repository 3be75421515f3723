//! Replies tollgate makes itself (refusals, 404, 502, 503, 504): a short JSON body, or a
//! trailers-only gRPC status for gRPC clients. Never an echo of a token or secret.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::proxy::Body;

/// gRPC status codes tollgate answers with (grpc/doc/statuscodes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    Unavailable = 14,
    Unauthenticated = 16,
}

/// One local reply, before it is rendered for the client's protocol.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `error` of the JSON body (RFC 6750 §3.1 codes for auth refusals).
    pub error: &'static str,
    pub description: String,
    /// `WWW-Authenticate` value, for 401 and 403.
    pub www_authenticate: Option<String>,
    /// Extra JSON fields (e.g. the host and path of an unrouted outbound request).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// True for `content-type: application/grpc` (and `application/grpc+proto` etc.).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

// === impl Reply ===

impl Reply {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Reply {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
            extra: None,
        }
    }

    pub fn with_www_authenticate(mut self, value: String) -> Self {
        self.www_authenticate = Some(value);
        self
    }

    pub fn with_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    /// Render for the client: gRPC trailers-only, or JSON.
    pub fn render(self, grpc: bool) -> Response<Body> {
        if grpc { self.grpc() } else { self.json() }
    }

    /// The JSON body: `error`, `error_description` and any extra fields.
    pub fn json_body(&self) -> String {
        let mut body = serde_json::Map::new();
        if !self.error.is_empty() {
            body.insert("error".into(), self.error.into());
        }
        body.insert("error_description".into(), self.description.clone().into());
        if let Some(extra) = &self.extra {
            body.extend(extra.clone());
        }
        serde_json::Value::Object(body).to_string()
    }

    fn json(self) -> Response<Body> {
        let bytes = self.json_body();
        let mut res = Response::new(full(Bytes::from(bytes)));
        *res.status_mut() = self.status;
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        res
    }

    /// A trailers-only response: HTTP 200 with `grpc-status` and `grpc-message` in the headers.
    fn grpc(self) -> Response<Body> {
        let code = match self.status {
            StatusCode::UNAUTHORIZED => GrpcCode::Unauthenticated,
            StatusCode::FORBIDDEN => GrpcCode::PermissionDenied,
            StatusCode::BAD_REQUEST => GrpcCode::InvalidArgument,
            StatusCode::NOT_FOUND => GrpcCode::NotFound,
            StatusCode::GATEWAY_TIMEOUT => GrpcCode::DeadlineExceeded,
            _ => GrpcCode::Unavailable,
        };
        let mut res = Response::new(full(Bytes::new()));
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(code as u16));
        let message = percent_encoding::utf8_percent_encode(&self.description, GRPC_MESSAGE).to_string();
        if let Ok(v) = HeaderValue::from_str(&message) {
            headers.insert("grpc-message", v);
        }
        if let Some(v) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        res
    }
}

/// grpc-message is percent-encoded: everything outside printable ASCII, and `%` itself.
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reply_carries_error_and_description() {
        let res = Reply::new(StatusCode::FORBIDDEN, "insufficient_scope", "needs role X").render(false);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn grpc_reply_is_trailers_only_with_status() {
        let res = Reply::new(StatusCode::UNAUTHORIZED, "invalid_token", "token expired").render(true);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(
            res.headers()["grpc-message"],
            "token%20expired".replace("%20", " ")
        );
        let res = Reply::new(StatusCode::FORBIDDEN, "insufficient_scope", "no").render(true);
        assert_eq!(res.headers()["grpc-status"], "7");
    }
}
