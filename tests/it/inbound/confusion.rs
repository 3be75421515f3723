//! Request confusion: a path, method or header name that tollgate could read differently
//! from the service behind it. Each request is sent byte for byte (no client library
//! normalising it), and each test checks the status and what reached the upstream.

use serde_json::Value;
use tollgate::devissuer::{DevIssuer, app_claims};

use super::{AUD, CERT_CLIENT, TENANT};
use crate::support::tollgate::Tollgate;
use crate::support::upstream::{Upstream, seen};

/// The routes of the reports: an anonymous `/healthz`, `/admin` for `Admin.Write`, reads
/// and writes of `/orders`, and a catch-all for `Orders.Read`.
fn config(issuer: &DevIssuer, upstream: &Upstream, inbound_extra: &str) -> String {
    format!(
        r#"admin:
  listen: 127.0.0.1:0
issuers:
  dev:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{AUD}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{up}
  forward_claims: {{ X-Client-Id: azp, X-Client-Roles: roles }}
{inbound_extra}
  routes:
    - match: {{ path_prefix: /healthz }}
      allow_anonymous: true
    - name: admin
      match: {{ path_prefix: /admin }}
      require: {{ roles_any: [Admin.Write] }}
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [POST, PUT, PATCH, DELETE] }}
      require: {{ roles_any: [Orders.Write] }}
    - name: catch-all
      match: {{ path_prefix: / }}
      require: {{ roles_any: [Orders.Read] }}
"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
        up = upstream.addr,
    )
}

struct Setup {
    issuer: DevIssuer,
    upstream: Upstream,
    tollgate: Tollgate,
}

impl Setup {
    async fn new(inbound_extra: &str) -> Setup {
        let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let upstream = Upstream::start().await;
        let tollgate = Tollgate::start(&config(&issuer, &upstream, inbound_extra)).await;
        Setup {
            issuer,
            upstream,
            tollgate,
        }
    }

    fn token(&self, roles: &[&str]) -> String {
        self.issuer
            .token(app_claims(AUD, CERT_CLIENT, "2", roles, TENANT))
    }

    /// One request, written by hand: status and body (the echo's JSON when forwarded).
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\nContent-Length: 0\r\n");
        if let Some(t) = token {
            request.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let (status, body) = crate::support::tollgate::raw_request(self.tollgate.inbound, &request).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }
}

/// The header values the upstream saw, every name.
fn all_values(echo: &Value) -> Vec<String> {
    echo["headers"]
        .as_object()
        .map(|h| {
            h.values()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// --- The served path (issue 15) -------------------------------------------------------

#[tokio::test]
async fn servlet_dot_segments_behind_an_anonymous_route_are_400_and_never_forwarded() {
    let s = Setup::new("").await;
    for path in [
        "/healthz/..;/admin/users",
        "/healthz/..;x=1/admin/users",
        "/healthz/%2e%2e;/admin/users",
        "/healthz/.%2e;/admin/users",
        "/healthz/..%3b/admin/users",
        "/healthz/..%3B/admin/users",
        "/healthz/.;/..;/admin/users",
        "/healthz/%252e%252e/admin/users",
        "/healthz/%u002e%u002e/admin/users",
        "/healthz/..%20/admin/users",
    ] {
        let (status, body) = s.send("GET", path, None, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
    }
    assert_eq!(s.upstream.requests(), 0, "no spelling reached the service");
    let metrics = s.tollgate.metrics().await;
    assert!(
        metrics.contains(
            r#"tollgate_inbound_requests_total{decision="deny",reason="bad_path",route="none"} 10"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn segment_parameters_are_judged_by_the_route_of_the_segment_name() {
    let s = Setup::new("").await;
    let weak = s.token(&["Orders.Read"]);
    let (status, body) = s
        .send("GET", "/admin;jsessionid=0A1B/users", Some(&weak), &[])
        .await;
    assert_eq!(status, 403, "judged by /admin, not the catch-all: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Admin.Write"),
        "{body}"
    );
    assert_eq!(s.upstream.requests(), 0);

    let admin = s.token(&["Admin.Write"]);
    let (status, echo) = s
        .send("GET", "/admin;jsessionid=0A1B/users", Some(&admin), &[])
        .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(
        echo["path"], "/admin;jsessionid=0A1B/users",
        "forwarded exactly as received"
    );
    assert_eq!(s.upstream.requests(), 1);
}

#[tokio::test]
async fn case_variants_are_judged_by_the_route_they_spell_unless_sensitive() {
    let s = Setup::new("").await;
    let weak = s.token(&["Orders.Read"]);
    for path in [
        "/ADMIN/users",
        "/Admin/users",
        "/aDmIn",
        "/adm%49n/users",
        "/adm\u{131}n/users",
    ] {
        let path = path.replace('\u{131}', "%C4%B1");
        let (status, body) = s.send("GET", &path, Some(&weak), &[]).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    assert_eq!(s.upstream.requests(), 0);

    // A service known to be case-sensitive: `/ADMIN` is another path, the catch-all's.
    let s = Setup::new("  path_case: sensitive").await;
    let weak = s.token(&["Orders.Read"]);
    let (status, echo) = s.send("GET", "/ADMIN/users", Some(&weak), &[]).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["path"], "/ADMIN/users");
    let (status, _) = s.send("GET", "/admin/users", Some(&weak), &[]).await;
    assert_eq!(status, 403);
}

// --- Method override (issue 16) -------------------------------------------------------

const OVERRIDES: [&str; 9] = [
    "X-HTTP-Method-Override",
    "x-http-method-override",
    "X-HTTP-METHOD-OVERRIDE",
    "X-HTTP-Method",
    "x-http-method",
    "X-HTTP-METHOD",
    "X-Method-Override",
    "x-method-override",
    "X-METHOD-OVERRIDE",
];

#[tokio::test]
async fn method_override_headers_are_refused_by_default_and_nothing_is_forwarded() {
    let s = Setup::new("").await;
    let writer = s.token(&["Orders.Read", "Orders.Write"]);
    for header in OVERRIDES.iter().chain(&["X_HTTP_Method_Override"]) {
        for method in ["GET", "POST"] {
            let (status, body) = s
                .send(method, "/orders/7", Some(&writer), &[(header, "DELETE")])
                .await;
            assert_eq!(status, 400, "{method} + {header}: {body}");
            assert_eq!(body["error"], "invalid_request");
            let description = body["error_description"].as_str().unwrap();
            assert!(
                description.contains("method override header `x-"),
                "{description}"
            );
        }
    }
    // Repeated, or with a value that is no method: refused all the same.
    let (status, _) = s
        .send(
            "GET",
            "/orders/7",
            Some(&writer),
            &[("X-HTTP-Method", "GET"), ("X-HTTP-Method", "DELETE")],
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .send("GET", "/healthz", None, &[("X-Method-Override", "anything")])
        .await;
    assert_eq!(status, 400, "anonymous routes too");
    assert_eq!(s.upstream.requests(), 0);
    let metrics = s.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"decision="deny",reason="method_override",route="none"} 22"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn judge_chooses_the_route_with_the_overriding_method() {
    let s = Setup::new("  method_override: judge").await;
    let reader = s.token(&["Orders.Read"]);
    let writer = s.token(&["Orders.Write"]);
    for header in OVERRIDES {
        for method in ["GET", "POST"] {
            let (status, body) = s
                .send(method, "/orders/7", Some(&reader), &[(header, "DELETE")])
                .await;
            assert_eq!(
                status, 403,
                "a reader may not delete ({method} + {header}): {body}"
            );
        }
    }
    assert_eq!(s.upstream.requests(), 0);
    let (status, echo) = s
        .send(
            "GET",
            "/orders/7",
            Some(&writer),
            &[("X-HTTP-Method-Override", "delete")],
        )
        .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["method"], "GET", "the request line is forwarded as sent");
    assert_eq!(
        seen(&echo, "x-http-method-override"),
        ["delete"],
        "and the header with it"
    );
    // One known method, else 400.
    for value in ["DELETE, GET", "FROB", ""] {
        let (status, body) = s
            .send("GET", "/orders/7", Some(&writer), &[("X-HTTP-Method", value)])
            .await;
        assert_eq!(status, 400, "{value:?}: {body}");
    }
    let (status, _) = s
        .send(
            "GET",
            "/orders/7",
            Some(&writer),
            &[("X-HTTP-Method", "PUT"), ("X-Method-Override", "DELETE")],
        )
        .await;
    assert_eq!(status, 400, "two different methods");
}

#[tokio::test]
async fn a_reload_switches_the_method_override_mode() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.yaml");
    let text = |extra: &str| {
        format!(
            "reload:\n  poll_interval_seconds: 1\n{}",
            config(&issuer, &upstream, extra)
        )
    };
    std::fs::write(&path, text("")).unwrap();
    let t = Tollgate::start_file(&path).await;
    let writer = issuer.token(app_claims(AUD, CERT_CLIENT, "2", &["Orders.Write"], TENANT));
    let client = reqwest::Client::new();
    let status = || async {
        client
            .get(t.url("/orders/7"))
            .bearer_auth(&writer)
            .header("X-HTTP-Method-Override", "DELETE")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 400);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text("  method_override: judge")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let start = std::time::Instant::now();
    while status().await != 200 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the reload never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(upstream.requests(), 1);
}

// --- Identity look-alikes and underscores (issue 17) ----------------------------------

const LOOKALIKES: [&str; 4] = ["X_Client_Id", "X-Client_Id", "x_client_id", "X_CLIENT_ID"];

#[tokio::test]
async fn identity_lookalikes_never_reach_the_service_in_any_mode() {
    for mode in ["drop", "keep"] {
        let s = Setup::new(&format!("  underscore_headers: {mode}")).await;
        let token = s.token(&["Orders.Read"]);
        for name in LOOKALIKES {
            for (path, token) in [("/healthz", None), ("/orders/1", Some(token.as_str()))] {
                let (status, echo) = s.send("GET", path, token, &[(name, "admin-app")]).await;
                assert_eq!(status, 200, "{mode} {name} {path}: {echo}");
                assert!(
                    !all_values(&echo).contains(&"admin-app".to_string()),
                    "{mode}: {name} reached the service on {path}: {echo}"
                );
            }
        }
        let (status, echo) = s
            .send("GET", "/orders/1", Some(&token), &[("X_Client_Roles", "Admin")])
            .await;
        assert_eq!(status, 200);
        assert_eq!(seen(&echo, "x-client-roles"), ["Orders.Read"], "{mode}");
        assert!(
            !all_values(&echo).contains(&"Admin".to_string()),
            "{mode}: {echo}"
        );
    }
}

#[tokio::test]
async fn underscore_headers_are_dropped_by_default_and_counted() {
    let s = Setup::new("").await;
    let (status, echo) = s
        .send(
            "GET",
            "/healthz",
            None,
            &[("X_Custom", "a"), ("X-Custom", "b"), ("X-Plain", "c")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(seen(&echo, "x_custom").is_empty(), "{echo}");
    assert_eq!(
        seen(&echo, "x-custom"),
        ["b"],
        "headers without `_` are untouched"
    );
    assert_eq!(seen(&echo, "x-plain"), ["c"]);
    let metrics = s.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_inbound_headers_dropped_total{reason="underscore"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn underscore_headers_keep_forwards_and_refuse_answers_400() {
    let s = Setup::new("  underscore_headers: keep").await;
    let (status, echo) = s.send("GET", "/healthz", None, &[("X_Custom", "a")]).await;
    assert_eq!(status, 200);
    assert_eq!(seen(&echo, "x_custom"), ["a"]);

    let s = Setup::new("  underscore_headers: refuse").await;
    let (status, body) = s.send("GET", "/healthz", None, &[("X_Custom", "a")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"].as_str().unwrap().contains("x_custom"),
        "{body}"
    );
    let (status, _) = s.send("GET", "/healthz", None, &[("X-Custom", "a")]).await;
    assert_eq!(status, 200, "names without `_` pass");
    assert_eq!(s.upstream.requests(), 1);
}
