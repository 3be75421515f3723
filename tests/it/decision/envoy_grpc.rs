//! Envoy's gRPC ext_authz, spoken with a client built from the real Envoy API types, the
//! way Envoy's `ext_authz` filter (and Istio's `envoyExtAuthzGrpc`) sends it.

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HeaderAppendAction, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

use super::{Judged, Setup};

/// Ask Check for `method path` with these headers (lower-case keys, as Envoy sends them).
pub async fn check(
    s: &Setup,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> CheckResponse {
    let mut map: std::collections::HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    map.insert(":authority".into(), "orders.internal".into());
    map.insert(":path".into(), path.into());
    map.insert(":method".into(), method.into());
    if let Some(t) = token {
        map.insert("authorization".into(), format!("Bearer {t}"));
    }
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "orders.internal".into(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers: map,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let url = format!("http://{}", s.tollgate.decision.unwrap());
    let mut client = AuthorizationClient::connect(url).await.expect("connect");
    client.check(request).await.expect("check").into_inner()
}

pub async fn judged(
    s: &Setup,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Judged {
    let res = check(s, method, path, token, headers).await;
    match res.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let get = |name: &str| {
                ok.headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .find(|h| h.key == name)
                    .map(|h| h.value.clone())
            };
            Judged {
                status: 200,
                client_id: get("x-client-id"),
                roles: get("x-client-roles"),
            }
        }
        Some(HttpResponse::DeniedResponse(denied)) => Judged {
            status: denied.status.map(|s| s.code as u16).unwrap_or(0),
            client_id: None,
            roles: None,
        },
        other => panic!("unexpected http_response: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_overwrites_identity_headers_and_removes_the_rest() {
    let s = Setup::new("").await;
    let reader = s.token("2", &["Orders.Read"]);
    let res = check(
        &s,
        "GET",
        "/orders/7?x=1",
        Some(&reader),
        &[("x_client_roles", "Admin"), ("x-other_thing", "1")],
    )
    .await;
    assert_eq!(res.status.as_ref().map(|s| s.code), Some(0), "{res:?}");
    let Some(HttpResponse::OkResponse(ok)) = res.http_response else {
        panic!("{res:?}")
    };
    let id = ok
        .headers
        .iter()
        .find(|h| h.header.as_ref().is_some_and(|h| h.key == "x-client-id"))
        .unwrap();
    assert_eq!(id.header.as_ref().unwrap().value, crate::inbound::CERT_CLIENT);
    assert_eq!(
        id.append_action,
        i32::from(HeaderAppendAction::OverwriteIfExistsOrAdd)
    );
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    assert_eq!(
        removed,
        ["x-other_thing", "x_client_roles"],
        "look-alikes and underscore names; nothing that is set"
    );

    // An anonymous route: no identity to set, so every identity header is removed.
    let res = check(&s, "GET", "/healthz", None, &[("x-client-id", "forged")]).await;
    let Some(HttpResponse::OkResponse(ok)) = res.http_response else {
        panic!("{res:?}")
    };
    assert!(ok.headers.is_empty());
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    assert_eq!(removed, ["x-client-id", "x-client-roles"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_carries_inbounds_status_challenge_and_body() {
    let s = Setup::new("").await;
    let res = check(&s, "GET", "/orders/7", None, &[]).await;
    assert_eq!(res.status.as_ref().map(|s| s.code), Some(16));
    let Some(HttpResponse::DeniedResponse(denied)) = res.http_response else {
        panic!("{res:?}")
    };
    assert_eq!(denied.status.unwrap().code, 401);
    let www = denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "www-authenticate")
        .unwrap();
    assert_eq!(www.value, r#"Bearer realm="tollgate""#);
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["error"], "missing_token");

    let nobody = s.token("2", &[]);
    let res = check(&s, "GET", "/orders/7", Some(&nobody), &[]).await;
    assert_eq!(res.status.as_ref().map(|s| s.code), Some(7));
    let Some(HttpResponse::DeniedResponse(denied)) = res.http_response else {
        panic!("{res:?}")
    };
    assert_eq!(denied.status.unwrap().code, 403);
    assert!(
        !denied.body.contains(&nobody[..20]),
        "the token never reaches the body"
    );
    let res = check(&s, "GET", "/orders/..;/admin", Some(&nobody), &[]).await;
    let Some(HttpResponse::DeniedResponse(denied)) = res.http_response else {
        panic!("{res:?}")
    };
    assert_eq!(
        denied.status.unwrap().code,
        400,
        "a path with a query or trick is read like inbound"
    );
}
