//! tollgate started in-process from a YAML string, listeners on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tollgate::config::{Config, ProcessEnv};
use tollgate::readiness::Readiness;
use tollgate::server::{self, ShutdownTrigger};
use tollgate::sidecar;

pub struct Tollgate {
    pub inbound: SocketAddr,
    pub decision: Option<SocketAddr>,
    pub outbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub readiness: Readiness,
    stop: ShutdownTrigger,
}

impl Tollgate {
    /// Start from `yaml` (relative paths resolve against `base`), without waiting for readiness.
    pub async fn start_in(yaml: &str, base: &Path) -> Tollgate {
        Tollgate::start_with_env(yaml, base, &ProcessEnv).await
    }

    /// Start from the file at `path` and reload it on change, as `tollgate run` does.
    pub async fn start_file(path: &Path) -> Tollgate {
        let config = Config::load(path).unwrap_or_else(|e| panic!("test config invalid: {e}"));
        let t = Tollgate::launch(config, Some(path)).await;
        t.wait_ready().await;
        t
    }

    /// Start with `env` standing in for the process environment (defaults resolved at load).
    pub async fn start_with_env(yaml: &str, base: &Path, env: &dyn tollgate::config::Env) -> Tollgate {
        let config = Config::from_yaml(yaml, base, env)
            .unwrap_or_else(|e| panic!("test config invalid: {e:?}\n{yaml}"));
        Tollgate::launch(config, None).await
    }

    /// Start the sidecar in-process (reloading `watch` when given); does not wait.
    async fn launch(config: Config, watch: Option<&Path>) -> Tollgate {
        let (stop, shutdown) = server::shutdown_channel();
        let mut started = sidecar::start(config, shutdown).await.expect("tollgate starts");
        if let Some(path) = watch {
            started.reload_on_change(path.to_path_buf());
        }
        let t = Tollgate {
            // Outbound-only configs have no inbound listener: an address nothing listens on.
            inbound: started.inbound.unwrap_or_else(|| "127.0.0.1:9".parse().unwrap()),
            decision: started.decision,
            outbound: started.outbound,
            admin: started.admin.expect("admin listener"),
            readiness: started.readiness.clone(),
            stop,
        };
        tokio::spawn(started.wait());
        t
    }

    /// Start and wait (bounded) until ready.
    pub async fn start(yaml: &str) -> Tollgate {
        let t = Tollgate::start_in(yaml, Path::new("/")).await;
        t.wait_ready().await;
        t
    }

    pub async fn wait_ready(&self) {
        if let Err(missing) = self.readiness.wait(Duration::from_secs(15)).await {
            panic!("not ready: {missing:?}");
        }
    }

    /// GET `path` through the outbound listener with `Host: host`.
    pub async fn outbound_get(&self, path: &str, host: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.outbound_url(path))
            .header("host", host)
            .send()
            .await
            .expect("outbound request")
    }

    pub fn outbound_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.outbound.expect("outbound listener"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.inbound)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

/// Send raw bytes as one HTTP/1.1 request and return the status code and the body text.
/// For paths that an HTTP client library would normalize before sending.
pub async fn raw_request(addr: SocketAddr, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
