//! tollgate as it runs in a minimal image: without a CA bundle (a clear error when an https
//! URL needs one, a normal start when nothing does), and, ignored unless
//! `deploy/image-test.sh` runs it, inside the built image itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ::tollgate::devissuer::{SigningKey, app_claims};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::upstream::{Upstream, seen};
use crate::support::{Running, free_port, tollgate, wait_ready};

const ISS: &str = "http://issuer.local/v2.0";
const AUD: &str = "api://orders";

/// An inbound tollgate's files on loopback: keys from `jwks_file`, the upstream at
/// `upstream`; with `tls`, the listener terminates TLS with a certificate from a test CA.
struct Loopback {
    dir: tempfile::TempDir,
    key: SigningKey,
    admin: SocketAddr,
    inbound: SocketAddr,
    /// The test CA's certificate (PEM) when the listener speaks TLS.
    ca: Option<Vec<u8>>,
}

impl Loopback {
    fn new(upstream: &str, dir: tempfile::TempDir, tls: bool) -> Loopback {
        let key = SigningKey::generate_rsa("k1", Algorithm::RS256).expect("key");
        let (admin, inbound) = (free_port(), free_port());
        let tls_line = if tls {
            "  tls: { cert_file: server.pem, key_file: server.key }\n"
        } else {
            ""
        };
        let yaml = format!(
            r#"admin:
  listen: {admin}
shutdown:
  drain_timeout_seconds: 2
issuers:
  local:
    issuer: {ISS}
    jwks_file: keys.json
    audiences: ["{AUD}"]
inbound:
  listen: {inbound}
{tls_line}  upstream: {upstream}
  forward_claims: {{ X-Client-Id: azp }}
  routes:
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
"#
        );
        std::fs::write(dir.path().join("tollgate.yaml"), yaml).expect("write config");
        let keys = json!({ "keys": [key.jwk()] }).to_string();
        std::fs::write(dir.path().join("keys.json"), keys).expect("write keys");
        let ca = tls.then(|| std::fs::read(dir.path().join("ca.pem")).expect("ca.pem"));
        Loopback {
            dir,
            key,
            admin,
            inbound,
            ca,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("tollgate.yaml")
    }

    fn token(&self, roles: &[&str]) -> String {
        let mut claims = app_claims(AUD, "client-1", "2", roles, "tenant-1");
        claims["iss"] = json!(ISS);
        self.key.sign(&claims)
    }

    /// Ready, a valid token 200 (the upstream sees the client id), no token 401, another
    /// role 403.
    async fn assert_serves(&self) {
        wait_ready(self.admin).await;
        let (http, scheme) = match &self.ca {
            Some(pem) => {
                let ca = reqwest::Certificate::from_pem(pem).unwrap();
                (
                    reqwest::Client::builder().tls_certs_only([ca]).build().unwrap(),
                    "https",
                )
            }
            None => (reqwest::Client::new(), "http"),
        };
        let url = format!("{scheme}://{}/orders/7", self.inbound);
        let res = http
            .get(&url)
            .bearer_auth(self.token(&["Orders.Read"]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let echo: Value = res.json().await.unwrap();
        assert_eq!(echo["path"], "/orders/7");
        assert_eq!(seen(&echo, "x-client-id"), ["client-1"]);
        assert_eq!(seen(&echo, "x-forwarded-proto"), [scheme]);
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let res = http
            .get(&url)
            .bearer_auth(self.token(&["Other"]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
}

/// `SSL_CERT_FILE` (an empty file) and `SSL_CERT_DIR` (an empty folder) under `dir`: with
/// either set, rustls-native-certs searches nothing else, so no root is found.
fn without_ca_bundle(cmd: &mut Command, dir: &Path) {
    let file = dir.join("empty-bundle.pem");
    let folder = dir.join("empty-certs");
    std::fs::write(&file, "").expect("empty bundle");
    std::fs::create_dir_all(&folder).expect("empty folder");
    cmd.env("SSL_CERT_FILE", file).env("SSL_CERT_DIR", folder);
}

#[tokio::test]
async fn without_a_ca_bundle_an_https_issuer_stops_start_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  listen: {}\nissuers:\n  entra:\n    issuer: https://login.example/v2.0\n    \
             discovery_url: https://127.0.0.1:9/v2.0/.well-known/openid-configuration\n    audiences: [{AUD}]\n",
            free_port()
        ),
    )
    .unwrap();
    let mut cmd = tollgate();
    cmd.args(["--log-format", "text", "run", "-c"]).arg(&config);
    without_ca_bundle(&mut cmd, dir.path());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "tollgate: no trust roots found for outbound TLS (needed by issuers.entra.discovery_url)"
        ),
        "{stderr}"
    );
    let bundle = dir.path().join("empty-bundle.pem");
    assert!(
        stderr.contains(&format!("SSL_CERT_FILE={}", bundle.display())),
        "{stderr}"
    );
    assert!(stderr.contains("SSL_CERT_DIR="), "{stderr}");
    assert!(!stderr.contains("builder error"), "{stderr}");
}

#[tokio::test]
async fn without_a_ca_bundle_admin_only_starts_and_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let config = dir.path().join("tollgate.yaml");
    std::fs::write(&config, format!("admin:\n  listen: {admin}\n")).unwrap();
    let mut cmd = tollgate();
    cmd.args(["run", "-c"]).arg(&config).stderr(Stdio::null());
    without_ca_bundle(&mut cmd, dir.path());
    let mut running = Running {
        child: cmd.spawn().unwrap(),
    };
    wait_ready(admin).await;
    running.signal("TERM");
    assert_eq!(running.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test]
async fn without_a_ca_bundle_inbound_with_jwks_file_and_http_upstream_serves() {
    let upstream = Upstream::start().await;
    let setup = Loopback::new(
        &format!("http://{}", upstream.addr),
        tempfile::tempdir().unwrap(),
        false,
    );
    let mut cmd = tollgate();
    cmd.args(["run", "-c"]).arg(setup.config()).stderr(Stdio::null());
    without_ca_bundle(&mut cmd, setup.dir.path());
    let _running = Running {
        child: cmd.spawn().unwrap(),
    };
    setup.assert_serves().await;
}

/// Run by `deploy/image-test.sh`: `TOLLGATE_IMAGE_RUN` is a program that runs tollgate inside
/// the built image as `PROGRAM CONFIG-DIR ARGS…` (the folder mounted at `/config`, read-only,
/// the host's loopback shared, `TOLLGATE_IMAGE_ENV`'s `NAME=value` words set) and passes
/// SIGTERM on to it. The static binary, in the image, terminates TLS, verifies the
/// upstream's certificate, resolves `localhost` from /etc/hosts and checks RS256 tokens.
#[tokio::test]
#[ignore = "needs the built image: deploy/image-test.sh runs it"]
async fn image_serves_inbound_over_loopback_and_drains_on_sigterm() {
    let run = std::env::var_os("TOLLGATE_IMAGE_RUN").expect("TOLLGATE_IMAGE_RUN names the image runner");
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::generate(dir.path());
    let upstream = Upstream::start_tls(&pki.server_cert, &pki.server_key).await;
    let upstream_url = format!("https://localhost:{}", upstream.addr.port());
    let setup = Loopback::new(&upstream_url, dir, true);
    // The image runs tollgate as uid 65532: the files must be readable by others.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(setup.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(setup.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let child = Command::new(run)
        .arg(setup.dir.path())
        .args(["run", "-c", "/config/tollgate.yaml"])
        // The upstream's certificate comes from the test CA, not from the image's bundle.
        .env("TOLLGATE_IMAGE_ENV", "SSL_CERT_FILE=/config/ca.pem")
        .spawn()
        .expect("start the image runner");
    let mut running = Running { child };
    setup.assert_serves().await;
    assert_eq!(upstream.requests(), 1);
    let metrics = reqwest::get(format!("http://{}/metrics", setup.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tollgate_inbound_requests_total"), "{metrics}");
    running.signal("TERM");
    assert_eq!(running.wait_exit(Duration::from_secs(15)).await, Some(0));
}
