//! A certified OpenID provider (the npm package `oidc-provider`, run by
//! `tests/interop/provider.js`) as a child process on 127.0.0.1: started with `node`,
//! installed first with `npm ci` when `tests/interop/node_modules` lacks the pinned
//! version, killed by its pid when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::repo_path;

/// How long `npm ci` may take on a fresh machine (the registry is remote).
const INSTALL_LIMIT: Duration = Duration::from_secs(300);
/// How long node may take to print its issuer line.
const START_LIMIT: Duration = Duration::from_secs(20);

static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

pub struct OidcProvider {
    child: Child,
    /// `http://127.0.0.1:PORT`, the `iss` of its tokens.
    pub issuer: String,
    /// From its discovery document.
    pub token_endpoint: String,
    logs: tempfile::TempDir,
    http: reqwest::Client,
}

/// Which keys the provider publishes after a rotation.
pub enum Publish {
    /// The new key and the previous one (Entra ID's usual overlap).
    Both,
    /// The new key only.
    New,
}

impl OidcProvider {
    /// Start `provider.js` with the `private_key_jwt` clients' certificate (PEM file).
    pub async fn start(client_certificate: &Path) -> OidcProvider {
        INSTALLED.get_or_init(install).await;
        let logs = tempfile::tempdir().expect("tempdir");
        let file = |name: &str| std::fs::File::create(logs.path().join(name)).expect("log file");
        let child = Command::new("node")
            .arg("provider.js")
            .args(["--port", "0", "--client-certificate"])
            .arg(client_certificate)
            .current_dir(interop_dir())
            .env_remove("NODE_OPTIONS")
            .env_remove("DEBUG")
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 18 or later is needed): {e}"));
        let mut provider = OidcProvider {
            child,
            issuer: String::new(),
            token_endpoint: String::new(),
            logs,
            http: reqwest::Client::new(),
        };
        provider.issuer = provider.wait_for_issuer().await;
        let discovery: Value = provider.get_json(&provider.discovery_url()).await;
        provider.token_endpoint = discovery["token_endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("no token_endpoint in discovery: {discovery}"))
            .to_string();
        provider
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Sign with a new key (a new `kid`) from now on; returns that kid.
    pub async fn rotate(&self, publish: Publish) -> String {
        let publish = match publish {
            Publish::Both => "both",
            Publish::New => "new",
        };
        let url = format!("{}/_interop/rotate?publish={publish}", self.issuer);
        let res = self.http.post(url).send().await.expect("rotate");
        let body: Value = res.json().await.expect("rotate answer");
        body["kid"].as_str().expect("new kid").to_string()
    }

    /// `signing_kid`, `discovery_requests`, `jwks_requests` and `token_requests` (each
    /// with `client_id`, `method`, `status`, `scope`, `resource`, and for assertions
    /// `assertion.header` and `assertion.claims`).
    pub async fn stats(&self) -> Value {
        self.get_json(&format!("{}/_interop/stats", self.issuer)).await
    }

    pub async fn jwks_requests(&self) -> u64 {
        self.stats().await["jwks_requests"]
            .as_u64()
            .expect("jwks_requests")
    }

    /// Token requests from `client_id`, in order.
    pub async fn token_requests(&self, client_id: &str) -> Vec<Value> {
        let stats = self.stats().await;
        let all = stats["token_requests"].as_array().cloned().unwrap_or_default();
        all.into_iter().filter(|r| r["client_id"] == client_id).collect()
    }

    /// Everything node wrote, for failure messages.
    pub fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        format!("--- stdout\n{}--- stderr\n{}", read("stdout"), read("stderr"))
    }

    async fn wait_for_issuer(&mut self) -> String {
        let started = Instant::now();
        loop {
            let stdout = std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default();
            if let Some(issuer) = stdout.lines().find_map(|l| l.strip_prefix("issuer ")) {
                assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
                return issuer.trim().to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("provider.js exited ({status}) before serving\n{}", self.output());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "provider.js printed no issuer within {START_LIMIT:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get_json(&self, url: &str) -> Value {
        let res = self.http.get(url).send().await;
        let res = res.unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.output()));
        res.json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    repo_path("tests/interop")
}

/// The version `package.json` pins, and the one installed (if any).
fn pinned_and_installed() -> (String, Option<String>) {
    let read = |path: PathBuf| -> Option<Value> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    };
    let manifest = read(interop_dir().join("package.json")).expect("tests/interop/package.json");
    let pinned = manifest["dependencies"]["oidc-provider"]
        .as_str()
        .expect("oidc-provider pinned in package.json")
        .to_string();
    let installed = read(interop_dir().join("node_modules/oidc-provider/package.json"))
        .and_then(|p| p["version"].as_str().map(String::from));
    (pinned, installed)
}

/// `npm ci --prefix tests/interop` unless the pinned oidc-provider is already installed.
async fn install() {
    let (pinned, installed) = pinned_and_installed();
    if installed.as_deref() == Some(pinned.as_str()) {
        return;
    }
    let mut child = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `npm ci` for tests/interop (install Node.js 18 or later): {e}")
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for npm ci") {
            break status;
        }
        if started.elapsed() > INSTALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("npm ci for tests/interop took longer than {INSTALL_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "npm ci --prefix tests/interop failed: {status}");
    let (pinned, installed) = pinned_and_installed();
    assert_eq!(
        installed,
        Some(pinned),
        "npm ci did not install the pinned oidc-provider"
    );
}
