//! The proxy snippets in `deploy/proxies/` parse, and their ports, paths and header names
//! match the example decision config (`deploy/proxies/tollgate-decision.yaml`).

use serde::Deserialize;
use serde_yaml::Value;
use tollgate::config::Config;

fn docs(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(crate::support::repo_path(&format!("deploy/proxies/{name}"))).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

fn at<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[*k],
    })
}

/// The example decision listener's port and identity header names (lower case).
fn example() -> (u16, Vec<String>) {
    let path = crate::support::repo_path("deploy/proxies/tollgate-decision.yaml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let decision = config.decision.expect("a decision section");
    let headers = decision
        .policy
        .forward_claims
        .iter()
        .map(|f| f.header.as_str().to_string())
        .collect();
    (decision.listen.port(), headers)
}

fn lower(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_ascii_lowercase())
        .collect()
}

#[test]
fn envoy_grpc_and_http_fragments_point_at_the_decision_listener() {
    let (port, headers) = example();
    let grpc = &docs("envoy-grpc.yaml")[0];
    let clusters = at(grpc, &["static_resources", "clusters"]).as_sequence().unwrap();
    let tollgate = clusters
        .iter()
        .find(|c| c["name"] == "tollgate_decision")
        .unwrap();
    let addr = at(
        tollgate,
        &[
            "load_assignment",
            "endpoints",
            "0",
            "lb_endpoints",
            "0",
            "endpoint",
            "address",
            "socket_address",
        ],
    );
    assert_eq!(addr["port_value"].as_u64(), Some(u64::from(port)));
    assert!(
        !at(tollgate, &["typed_extension_protocol_options"]).is_null(),
        "gRPC needs HTTP/2 to tollgate"
    );
    let filters = at(
        grpc,
        &[
            "static_resources",
            "listeners",
            "0",
            "filter_chains",
            "0",
            "filters",
            "0",
            "typed_config",
            "http_filters",
        ],
    );
    let ext = &filters[0]["typed_config"];
    assert_eq!(
        at(ext, &["grpc_service", "envoy_grpc", "cluster_name"]),
        "tollgate_decision"
    );
    assert_eq!(ext["failure_mode_allow"], false);

    let http = &docs("envoy-http.yaml")[0]["typed_config"]["http_service"];
    assert_eq!(http["path_prefix"], "/ext_authz");
    assert!(
        http["server_uri"]["uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
    let upstream: Vec<String> = at(
        http,
        &["authorization_response", "allowed_upstream_headers", "patterns"],
    )
    .as_sequence()
    .unwrap()
    .iter()
    .map(|p| p["exact"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(upstream, headers);
}

#[test]
fn istio_provider_and_policy_match() {
    let (port, _) = example();
    let d = docs("istio.yaml");
    let mesh: Value = serde_yaml::from_str(d[0]["data"]["mesh"].as_str().unwrap()).unwrap();
    let provider = &mesh["extensionProviders"][0];
    assert_eq!(
        provider["envoyExtAuthzGrpc"]["port"].as_u64(),
        Some(u64::from(port))
    );
    assert_eq!(provider["envoyExtAuthzGrpc"]["failOpen"], false);
    assert_eq!(d[1]["kind"], "AuthorizationPolicy");
    assert_eq!(d[1]["spec"]["action"], "CUSTOM");
    assert_eq!(d[1]["spec"]["provider"]["name"], provider["name"]);
}

#[test]
fn ingress_nginx_traefik_and_nginx_send_the_original_request_to_auth() {
    let (port, headers) = example();
    let auth = format!(":{port}/auth");
    let ingress = &docs("ingress-nginx.yaml")[0]["metadata"]["annotations"];
    assert!(
        ingress["nginx.ingress.kubernetes.io/auth-url"]
            .as_str()
            .unwrap()
            .ends_with(&auth)
    );
    let names: Vec<String> = ingress["nginx.ingress.kubernetes.io/auth-response-headers"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_ascii_lowercase)
        .collect();
    assert_eq!(names, headers);
    let traefik = &docs("traefik.yaml")[0]["spec"]["forwardAuth"];
    assert!(traefik["address"].as_str().unwrap().ends_with(&auth));
    assert_eq!(traefik["trustForwardHeader"], false);
    assert_eq!(lower(&traefik["authResponseHeaders"]), headers);
    let policy = &docs("networkpolicy.yaml")[0];
    assert_eq!(
        at(policy, &["spec", "ingress", "0", "ports", "0", "port"]).as_u64(),
        Some(u64::from(port))
    );
    let nginx = std::fs::read_to_string(crate::support::repo_path("deploy/proxies/nginx.conf")).unwrap();
    assert!(nginx.contains(&format!("proxy_pass http://127.0.0.1:{port}/auth;")));
    for needed in ["X-Original-URI $request_uri", "X-Original-Method $request_method"] {
        assert!(nginx.contains(needed), "{needed}");
    }
}
