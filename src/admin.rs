//! The admin listener: `/healthz` (the process runs), `/readyz` (every component is
//! ready), `/metrics` (Prometheus text format).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// What the admin endpoints report on.
pub struct Admin {
    pub metrics: Metrics,
    pub readiness: Readiness,
}

impl Admin {
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
        Ok(self.respond(req.method(), req.uri().path()))
    }

    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({
                    "error": "method_not_allowed",
                    "error_description": "the admin listener answers GET and HEAD only",
                }),
            );
        }
        match path {
            "/healthz" => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
            "/readyz" => match self.readiness.check() {
                Ok(()) => json(StatusCode::OK, serde_json::json!({ "status": "ready" })),
                Err(missing) => {
                    let names: Vec<&str> = missing.keys().map(String::as_str).collect();
                    let description = format!("waiting for {}", names.join(", "));
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({
                            "status": "not ready",
                            "waiting_for": missing,
                            "error": "not_ready",
                            "error_description": description,
                        }),
                    )
                }
            },
            "/metrics" => text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            _ => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({
                    "error": "not_found",
                    "error_description": "the admin listener serves /healthz, /readyz and /metrics",
                }),
            ),
        }
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    text(status, "application/json", body.to_string())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Admin {
        Admin {
            metrics: Metrics::new().unwrap(),
            readiness: Readiness::new(),
        }
    }

    #[test]
    fn readyz_lists_what_is_missing_until_ready() {
        let a = admin();
        let h = a.readiness.register("issuer/entra", "first JWKS fetch");
        let res = a.respond(&Method::GET, "/readyz");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        h.ready();
        assert_eq!(a.respond(&Method::GET, "/readyz").status(), StatusCode::OK);
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        let a = admin();
        assert_eq!(a.respond(&Method::GET, "/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            a.respond(&Method::POST, "/healthz").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
