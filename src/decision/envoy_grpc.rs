//! Envoy's gRPC external authorization (`envoy.service.auth.v3.Authorization/Check`), what
//! Envoy's `ext_authz` filter and Istio's `envoyExtAuthzGrpc` provider call, with the real
//! Envoy API types. The original method, path and headers come from the request
//! attributes. Allow: `OK`, each identity header set with `OVERWRITE_IF_EXISTS_OR_ADD`
//! (which replaces a client's copies); `headers_to_remove` lists the identity headers the
//! token has no claim for, the client's look-alikes of them, and (with `underscore_headers:
//! drop`) every header holding `_` — never a name that is also set, since Envoy removes
//! after adding. Deny: inbound's status, `WWW-Authenticate` and JSON body.

use std::sync::Arc;
use std::time::Instant;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, Method};

use super::{Answer, DecisionService, Original};
use crate::config::{Policy, UnderscoreHeaders};
use crate::inbound::Refusal;

pub const PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// gRPC codes (google.rpc.Code).
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const UNAUTHENTICATED: i32 = 16;

/// The `Authorization` service, deciding through the listener's [`DecisionService`].
pub struct Checker(pub Arc<DecisionService>);

#[tonic::async_trait]
impl Authorization for Checker {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let started = Instant::now();
        let snap = self.0.snapshot();
        let http = request
            .get_ref()
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let Some(http) = http else {
            let refusal = Refusal::Original("the check request carries no HTTP request attributes");
            self.0
                .count("envoy_grpc", "none", "deny", refusal.reason(), started);
            return Ok(tonic::Response::new(denied(&refusal)));
        };
        let headers = header_map(http);
        let Ok(method) = Method::from_bytes(http.method.as_bytes()) else {
            let refusal = Refusal::Original("the original method is not an HTTP method");
            self.0
                .count("envoy_grpc", "none", "deny", refusal.reason(), started);
            return Ok(tonic::Response::new(denied(&refusal)));
        };
        let original = Original {
            method,
            target: http.path.clone(),
            headers: &headers,
        };
        let answer = self.0.judge(&snap, &original, "envoy_grpc", started).await;
        let response = match answer {
            Answer::Allow(set) => allowed(set, &headers, &snap.decision.policy),
            Answer::Deny(refusal) => denied(&refusal),
        };
        Ok(tonic::Response::new(response))
    }
}

/// The original headers: `header_map` when Envoy sends raw headers, else the map (in
/// which Envoy joined repeated headers with `,`). Pseudo-headers are left out.
fn header_map(http: &HttpRequest) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut add = |key: &str, value: &[u8]| {
        if key.starts_with(':') {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            out.append(name, value);
        }
    };
    match &http.header_map {
        Some(map) if !map.headers.is_empty() => {
            for h in &map.headers {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    &h.raw_value
                };
                add(&h.key, value);
            }
        }
        _ => {
            for (key, value) in &http.headers {
                add(key, value.as_bytes());
            }
        }
    }
    out
}

fn allowed(
    set: Vec<(HeaderName, http::HeaderValue)>,
    original: &HeaderMap,
    policy: &Policy,
) -> CheckResponse {
    let mut ok = OkHttpResponse::default();
    let mut setting = Vec::new();
    for (name, value) in set {
        if value.is_empty() {
            ok.headers_to_remove.push(name.as_str().to_string());
        } else {
            setting.push(name.as_str().to_string());
            ok.headers
                .push(overwrite(name.as_str(), value.to_str().unwrap_or_default()));
        }
    }
    for name in original
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| n.contains('_'))
    {
        let lookalike = policy
            .forward_claims
            .iter()
            .any(|f| crate::inbound::header_names::same_to_cgi(name, f.header.as_str()));
        let dropped = policy.underscore_headers == UnderscoreHeaders::Drop;
        if (lookalike || dropped)
            && !setting.iter().any(|s| s == name)
            && !ok.headers_to_remove.iter().any(|r| r == name)
        {
            ok.headers_to_remove.push(name.to_string());
        }
    }
    CheckResponse {
        status: Some(rpc::Status {
            code: OK,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
}

fn overwrite(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)]
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

fn denied(refusal: &Refusal) -> CheckResponse {
    let reply = refusal.reply();
    let status = reply.status.as_u16();
    let mut headers = vec![overwrite("content-type", "application/json")];
    if let Some(www) = &reply.www_authenticate {
        headers.push(overwrite("www-authenticate", www));
    }
    let body =
        serde_json::json!({ "error": reply.error, "error_description": reply.description }).to_string();
    CheckResponse {
        status: Some(rpc::Status {
            code: if status == 401 {
                UNAUTHENTICATED
            } else {
                PERMISSION_DENIED
            },
            message: reply.description.clone(),
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body,
        })),
        ..Default::default()
    }
}
