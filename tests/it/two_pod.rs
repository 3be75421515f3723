//! Two pods end to end, run by `deploy/two-pod-test.sh` inside the issuer's network
//! namespace (ignored otherwise): the legacy service reachable only through the server's
//! tollgate, the client's plain http call arriving with a token and identity headers, a
//! bypass refused, a ConfigMap-style `..data` swap, and SIGTERM drained, none failing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ::tollgate::devissuer::{ClientAuth, DevIssuer};
use serde_json::Value;

use crate::support::tollgate::Tollgate;
use crate::support::{Running, wait_ready};

const SERVER_IP: &str = "10.231.0.1";
const CLIENT_IP: &str = "10.231.0.2";
const ISSUER_IP: &str = "10.231.0.3";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";
const SECRET: &str = "two-pod-secret";
const SCOPE: &str = "api://b178f3a5-7588-492a-924f-72d7887b7e48/.default";
/// The development issuer's `aud` for `SCOPE`: the scope without `/.default`.
const AUD: &str = "api://b178f3a5-7588-492a-924f-72d7887b7e48";
const PROXY: &str = "http://127.0.0.1:15001";

/// The legacy service: echoes path and headers as JSON; `/slow…` answers after 2 s.
const LEGACY: &str = r#"
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(2)
        body = json.dumps({"path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", 8080), Echo).serve_forever()
"#;

/// A command run in network namespace `ns`.
fn in_ns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// `curl` in `ns`: (status, body); status 0 when no HTTP answer came.
fn curl(ns: &str, args: &[&str]) -> (u16, String) {
    let out: Output = in_ns(ns, "curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let body = format!("{body}{}", String::from_utf8_lossy(&out.stderr));
    (code.trim().parse().unwrap_or(0), body)
}

/// Through the client pod's sidecar, as the app does with HTTP_PROXY.
fn via_sidecar(ns: &str, path: &str) -> (u16, String) {
    curl(ns, &["-x", PROXY, &format!("http://orders.internal{path}")])
}

/// A folder laid out as the kubelet lays out a ConfigMap volume: `..<version>/` with the
/// files, `..data` pointing at it, and each file a link through `..data`.
struct ConfigMapFolder {
    root: PathBuf,
    version: usize,
}

impl ConfigMapFolder {
    fn new(root: PathBuf, files: &[(&str, &str)]) -> ConfigMapFolder {
        std::fs::create_dir_all(&root).unwrap();
        let mut folder = ConfigMapFolder { root, version: 0 };
        folder.swap(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), folder.root.join(name)).unwrap();
        }
        folder
    }

    /// Write a new version and swap `..data` to it in one rename, as the kubelet does.
    fn swap(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.root.join(&version)).unwrap();
        for (name, text) in files {
            std::fs::write(self.root.join(&version).join(name), text).unwrap();
        }
        let tmp = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.root.join("..data")).unwrap();
    }
}

fn server_config(issuer: &DevIssuer, with_reports: bool) -> String {
    let reports = if with_reports {
        "    - name: reports\n      match: { path_prefix: /reports, methods: [GET] }\n      \
         require: { roles_any: [Orders.Read] }\n"
    } else {
        ""
    };
    format!(
        r#"admin:
  listen: {SERVER_IP}:9901
shutdown:
  drain_timeout_seconds: 5
issuers:
  dev:
    issuer: {iss}
    jwks_uri: https://{ISSUER_IP}:8443/keys
    audiences: ["{aud}"]
inbound:
  listen: {SERVER_IP}:8443
  tls: {{ cert_file: tls.crt, key_file: tls.key }}
  upstream: http://127.0.0.1:8080
  upstream_protocol: http1        # the legacy service speaks HTTP/1.1 only (no h2c)
  forward_claims: {{ X-Client-Id: azp, X-Client-Roles: roles }}
  routes:
    - name: orders
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
    - name: slow
      match: {{ path_prefix: /slow, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
{reports}"#,
        iss = issuer.issuer(),
        aud = AUD,
    )
}

fn client_config(dir: &Path) -> String {
    format!(
        r#"admin:
  listen: {CLIENT_IP}:9901
outbound:
  listen: 127.0.0.1:15001
  credentials:
    orders-api:
      token_url: https://{ISSUER_IP}:8443/token
      client_id: {CLIENT}
      scopes: ["{SCOPE}"]
      auth:
        client_secret: {{ file: {secret}, method: post }}
  routes:
    - name: orders
      match: {{ host: orders.internal }}
      upstream: https://{SERVER_IP}:8443
      credential: orders-api
"#,
        secret = dir.join("secret").display(),
    )
}

/// Start `tollgate run -c config` in `ns`, trusting the test CA.
fn sidecar(ns: &str, config: &Path, ca: &Path) -> Running {
    let child = in_ns(ns, env!("CARGO_BIN_EXE_tollgate"))
        .args(["--log-format", "json", "run", "-c"])
        .arg(config)
        .env("SSL_CERT_FILE", ca)
        .stdout(Stdio::null())
        .spawn()
        .expect("start tollgate");
    Running { child }
}

#[tokio::test]
#[ignore = "needs network namespaces: deploy/two-pod-test.sh runs it"]
async fn two_pods_end_to_end() {
    let pods = std::env::var("TOLLGATE_TWO_POD").expect("TOLLGATE_TWO_POD=\"SERVER-NS CLIENT-NS\"");
    let (server_ns, client_ns) = pods.split_once(' ').expect("two namespaces");
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::generate_for(dir.path(), &[SERVER_IP, ISSUER_IP]);
    let ca = dir.path().join("ca.pem");
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();

    // issuer-pod (this process): the development issuer on loopback, behind TLS.
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &["Orders.Read"]);
    let front = format!(
        "admin:\n  listen: 127.0.0.1:0\ninbound:\n  listen: {ISSUER_IP}:8443\n  tls: {{ cert_file: {}, key_file: {} }}\n  \
         upstream: http://{}\n  routes:\n    - match: {{ path_prefix: / }}\n      allow_anonymous: true\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        issuer.addr()
    );
    let _front = Tollgate::start(&front).await;

    // server-pod: the legacy service on its own loopback, tollgate on the pod address.
    let cert = std::fs::read_to_string(&pki.server_cert).unwrap();
    let key = std::fs::read_to_string(&pki.server_key).unwrap();
    let v1 = server_config(&issuer, false);
    let mut server_files = ConfigMapFolder::new(
        dir.path().join("server"),
        &[("tollgate.yaml", &v1), ("tls.crt", &cert), ("tls.key", &key)],
    );
    let _legacy = Running {
        child: in_ns(server_ns, "python3").args(["-c", LEGACY]).spawn().unwrap(),
    };
    let mut server = sidecar(server_ns, &server_files.root.join("tollgate.yaml"), &ca);
    wait_ready(format!("{SERVER_IP}:9901").parse().unwrap()).await;

    // client-pod: the outbound sidecar; curl is the app.
    std::fs::create_dir(dir.path().join("client")).unwrap();
    let client_yaml = dir.path().join("client/tollgate.yaml");
    std::fs::write(&client_yaml, client_config(dir.path())).unwrap();
    let _client = sidecar(client_ns, &client_yaml, &ca);
    wait_ready(format!("{CLIENT_IP}:9901").parse().unwrap()).await;

    // The app's plain http call arrives with a valid token and the identity headers.
    let (status, body) = via_sidecar(client_ns, "/orders/7");
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["path"], "/orders/7");
    assert_eq!(echo["headers"]["x-client-id"], CLIENT);
    assert_eq!(echo["headers"]["x-client-roles"], "Orders.Read");
    assert!(
        echo["headers"]["authorization"]
            .as_str()
            .unwrap_or("")
            .starts_with("Bearer ey")
    );
    println!("two-pod: client -> sidecar -> server's tollgate -> legacy: 200 with x-client-id {CLIENT}");

    // The legacy service cannot be reached except through the server's tollgate.
    let around = [
        format!("http://{SERVER_IP}:8080/orders/7"),
        "http://127.0.0.1:8080/orders/7".to_string(),
    ];
    for url in &around {
        let (status, _) = curl(client_ns, &["--noproxy", "*", url]);
        assert_eq!(status, 0, "{url} answered from the client pod");
    }
    assert!(std::net::TcpStream::connect((SERVER_IP, 8080)).is_err());
    // Bypassing the client's sidecar: no token, refused by the server's tollgate.
    let ca_arg = ca.display().to_string();
    let direct = format!("https://{SERVER_IP}:8443/orders/7");
    let (status, body) = curl(client_ns, &["--noproxy", "*", "--cacert", &ca_arg, &direct]);
    assert_eq!(status, 401, "{body}");
    println!("two-pod: legacy unreachable around tollgate; a call bypassing the client's sidecar: 401");

    // A ConfigMap-style ..data swap changes the policy within seconds, under load.
    let load = in_ns(client_ns, "bash")
        .args(["-c", &format!(
            "end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do \
             curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 -x {PROXY} http://orders.internal/orders/7; done"
        )])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(via_sidecar(client_ns, "/reports/1").0, 403);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v2 = server_config(&issuer, true);
    server_files.swap(&[("tollgate.yaml", &v2), ("tls.crt", &cert), ("tls.key", &key)]);
    let swapped = Instant::now();
    loop {
        if via_sidecar(client_ns, "/reports/1").0 == 200 {
            break;
        }
        assert!(
            swapped.elapsed() < Duration::from_secs(10),
            "the new policy never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = swapped.elapsed();
    let codes = String::from_utf8(load.wait_with_output().unwrap().stdout).unwrap();
    let codes: Vec<&str> = codes.lines().collect();
    assert!(codes.len() > 10, "too little load: {codes:?}");
    assert!(
        codes.iter().all(|c| *c == "200"),
        "a request failed during the swap: {codes:?}"
    );
    println!(
        "two-pod: ..data swap applied in {:.1} s; {} requests under load, all 200",
        took.as_secs_f64(),
        codes.len()
    );

    // SIGTERM while slow requests are in flight: every one completes, exit 0.
    let slow: Vec<_> = (0..6)
        .map(|i| {
            in_ns(client_ns, "curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "10",
                    "-x",
                    PROXY,
                ])
                .arg(format!("http://orders.internal/slow/{i}"))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal("TERM");
    let codes: Vec<String> = slow
        .into_iter()
        .map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap())
        .collect();
    assert!(
        codes.iter().all(|c| c == "200"),
        "a request failed during the drain: {codes:?}"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)).await, Some(0));
    println!(
        "two-pod: SIGTERM with {} slow requests in flight: all 200, exit 0",
        codes.len()
    );
}
